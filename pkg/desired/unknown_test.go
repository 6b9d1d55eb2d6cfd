package desired

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestUnknownOriginals: when tunneld's objects were found without a
// sysctl record (model.Inputs.SysctlsUnknown: keep_on_exit, then the
// state directory wiped), the sysctls the configuration sets that the
// kernel has as it sets them, with no recorded original, are named in
// one warning: their values before tunneld are unknown, and down leaves
// them. A tester's next stop left ip_forward and proxy_arp on without a
// word.
func TestUnknownOriginals(t *testing.T) {
	const conf = "[global]\nfirewall = false\nip_forward = true\nproxy_arp = [\"lan0\"]\n"
	const warning = "the state directory has no sysctl record, but the kernel has tunneld's tunnels, routes, rules or table " +
		"(kept at a stop with keep_on_exit, or by a crash, and the directory wiped since?): the values before tunneld of " +
		"%s, already as the configuration sets them, are unknown, and `tunneld down` leaves them as they are: " +
		"after it, check them (sysctl NAME) and set by hand those tunneld had set"
	const fwd, arp = "net/ipv4/ip_forward", "net/ipv4/conf/lan0/proxy_arp"
	for _, tc := range []struct {
		name    string
		unknown bool
		cur     []model.Sysctl
		want    []string // the warnings
	}{
		{"record lost, both as set", true, []model.Sysctl{{Path: fwd, Value: "1"}, {Path: arp, Value: "1"}},
			[]string{fmt.Sprintf(warning, "net.ipv4.ip_forward = 1, net.ipv4.conf.lan0.proxy_arp = 1")}},
		{"record lost, one to be set", true, []model.Sysctl{{Path: fwd, Value: "1"}, {Path: arp, Value: "0"}},
			[]string{fmt.Sprintf(warning, "net.ipv4.ip_forward = 1")}},
		{"record lost, one recorded since", true, []model.Sysctl{{Path: fwd, Value: "1", Original: "0", Ours: []string{"1"}}, {Path: arp, Value: "1"}},
			[]string{fmt.Sprintf(warning, "net.ipv4.conf.lan0.proxy_arp = 1")}},
		{"record lost, none as set", true, []model.Sysctl{{Path: fwd, Value: "0"}, {Path: arp, Value: "0"}}, nil},
		{"record there", false, []model.Sysctl{{Path: fwd, Value: "1"}, {Path: arp, Value: "1"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := model.Inputs{Devices: map[string]model.Device{"lan0": {Name: "lan0", Up: true}}, SysctlsUnknown: tc.unknown}
			res := Build(parse(t, conf), in, model.State{Sysctls: tc.cur})
			if diff := cmp.Diff(tc.want, res.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
