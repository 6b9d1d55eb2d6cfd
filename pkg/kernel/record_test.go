package kernel

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestSysctlRecordSet: before a write, the original is recorded once and
// the value written as ours, each time; before a write of ip_forward, each
// interface's copy likewise, with the value the kernel copies onto it.
func TestSysctlRecordSet(t *testing.T) {
	values := map[string]string{
		"net/ipv4/ip_forward": "0", "net/ipv4/conf/lan/forwarding": "1", "net/ipv4/conf/all/accept_redirects": "0",
	}
	read := func(p string) (string, error) {
		if v, ok := values[p]; ok {
			return v, nil
		}
		return "", errors.New("gone")
	}
	copies := []string{"net/ipv4/conf/all/accept_redirects", "net/ipv4/conf/gone/forwarding", "net/ipv4/conf/lan/forwarding"}
	r := SysctlRecord{}
	for _, step := range []struct {
		v       string
		changed bool
		want    SysctlRecord
	}{
		{"1", true, SysctlRecord{
			"net/ipv4/ip_forward":                {Original: "0", Ours: []string{"1"}},
			"net/ipv4/conf/lan/forwarding":       {Original: "1", Ours: []string{"1"}},
			"net/ipv4/conf/all/accept_redirects": {Original: "0", Ours: []string{"0"}},
		}},
		{"1", false, nil},
		{"0", true, SysctlRecord{
			"net/ipv4/ip_forward":                {Original: "0", Ours: []string{"0"}},
			"net/ipv4/conf/lan/forwarding":       {Original: "1", Ours: []string{"0"}},
			"net/ipv4/conf/all/accept_redirects": {Original: "0", Ours: []string{"1"}},
		}},
	} {
		want := step.want
		if want == nil {
			want = SysctlRecord{}
			for p, e := range r {
				want[p] = e
			}
		}
		changed, err := r.Set("net/ipv4/ip_forward", step.v, copies, read)
		if err != nil || changed != step.changed {
			t.Errorf("Set %s: changed %v, %v; want %v", step.v, changed, err, step.changed)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("after Set %s (-want +got):\n%s", step.v, diff)
		}
	}
	if _, err := r.Set("net/ipv4/conf/gone/proxy_arp", "1", nil, read); err == nil {
		t.Error("Set of a sysctl that cannot be read: no error")
	}
}

// TestRekey: the record of a per-device sysctl follows its device's index
// to the device's new name; an entry without an index, one whose index is
// gone, one whose device kept its name, one whose new path is recorded
// already, one of another boot (the indexes are another device's), and a
// global sysctl stay where they are, as does any with the boot not known.
func TestRekey(t *testing.T) {
	names := map[int]string{2: "lan0", 3: "eth2", 4: "wan"}
	nameOf := func(i int) (string, bool) { n, ok := names[i]; return n, ok }
	for _, tt := range []struct {
		name    string
		in      SysctlRecord
		want    SysctlRecord
		changed bool
	}{
		{"renamed", SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0", Ours: []string{"1"}, Index: 2, Boot: "b1"}},
			SysctlRecord{"net/ipv4/conf/lan0/proxy_arp": {Original: "0", Ours: []string{"1"}, Index: 2, Boot: "b1"}}, true},
		{"same name", SysctlRecord{"net/ipv4/conf/eth2/proxy_arp": {Original: "0", Index: 3, Boot: "b1"}},
			SysctlRecord{"net/ipv4/conf/eth2/proxy_arp": {Original: "0", Index: 3, Boot: "b1"}}, false},
		{"index gone", SysctlRecord{"net/ipv4/conf/eth9/proxy_arp": {Original: "0", Index: 9, Boot: "b1"}},
			SysctlRecord{"net/ipv4/conf/eth9/proxy_arp": {Original: "0", Index: 9, Boot: "b1"}}, false},
		{"no index (an older record)", SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0"}},
			SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0"}}, false},
		{"new path recorded already", SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0", Index: 4, Boot: "b1"}, "net/ipv4/conf/wan/proxy_arp": {Original: "1", Index: 4, Boot: "b1"}},
			SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0", Index: 4, Boot: "b1"}, "net/ipv4/conf/wan/proxy_arp": {Original: "1", Index: 4, Boot: "b1"}}, false},
		{"another boot's index", SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0", Index: 2, Boot: "b0"}},
			SysctlRecord{"net/ipv4/conf/eth1/proxy_arp": {Original: "0", Index: 2, Boot: "b0"}}, false},
		{"global", SysctlRecord{model.IPForward: {Original: "0", Index: 2, Boot: "b1"}},
			SysctlRecord{model.IPForward: {Original: "0", Index: 2, Boot: "b1"}}, false},
		{"IPv6 forwarding copy", SysctlRecord{"net/ipv6/conf/eth1/forwarding": {Original: "0", Ours: []string{"1"}, Index: 2, Boot: "b1"}},
			SysctlRecord{"net/ipv6/conf/lan0/forwarding": {Original: "0", Ours: []string{"1"}, Index: 2, Boot: "b1"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Rekey("b1", nameOf); got != tt.changed {
				t.Errorf("Rekey = %v, want %v", got, tt.changed)
			}
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			if tt.in.Rekey("", nameOf) {
				t.Errorf("Rekey with the boot not known changed the record")
			}
		})
	}
}
