package desired

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestPinnedAbsent: an up tunnel whose local address is given as an
// address says so when no device of the box can send from it (deleted
// from the WAN, or IPv6 in duplicate address detection or failed it),
// and not while one can, nor for a tunnel that follows a device, a
// link-local local address or addresses that were not read. A tester
// deleted the WAN's address: status said up, drift none, and the
// tunnel's carrier errors climbed.
func TestPinnedAbsent(t *testing.T) {
	const v4 = "[tunnel.t1]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"198.51.100.1\"\n"
	const v6 = "[tunnel.t6]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8:1::1\"\n"
	const follows = "[tunnel.t1]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"198.51.100.1\"\n"
	const linkLocal = "[tunnel.t6]\nmode = \"ip6ip6\"\ndev = \"wan\"\nlocal = \"fe80::1\"\nremote = \"fe80::2\"\n"
	wan := func(addrs ...string) model.Device {
		d := model.Device{Name: "wan", MTU: 1500, Up: true, Running: true}
		for _, a := range addrs {
			d.Addrs = append(d.Addrs, pfx(a))
		}
		return d
	}
	tentative := wan()
	tentative.Unusable = []model.UnusableAddr{{Prefix: pfx("2001:db8::1/64")}}
	failed := wan()
	failed.Unusable = []model.UnusableAddr{{Prefix: pfx("2001:db8::1/64"), Failed: true}}
	lo := model.Device{Name: "lo", MTU: 65536, Up: true, Running: true, Addrs: []netip.Prefix{pfx("192.0.2.1/32")}}
	for _, tt := range []struct {
		name, conf string
		devices    map[string]model.Device
		unread     bool
		want       string
	}{
		{"on the wan", v4, map[string]model.Device{"wan": wan("192.0.2.1/24")}, false, ""},
		{"on lo", v4, map[string]model.Device{"wan": wan(), "lo": lo}, false, ""},
		{"gone", v4, map[string]model.Device{"wan": wan("192.0.2.9/24")}, false,
			"its local address 192.0.2.1 is on no device of this box: the kernel sends nothing from it"},
		{"only its subnet's", v4, map[string]model.Device{"wan": wan("192.0.2.2/24")}, false,
			"its local address 192.0.2.1 is on no device of this box: the kernel sends nothing from it"},
		{"IPv6 there", v6, map[string]model.Device{"wan": wan("2001:db8::1/64")}, false, ""},
		{"IPv6 in detection", v6, map[string]model.Device{"wan": tentative}, false,
			"its local address 2001:db8::1 on wan is in duplicate address detection: the kernel sends nothing from it"},
		{"IPv6 failed detection", v6, map[string]model.Device{"wan": failed}, false,
			"its local address 2001:db8::1 on wan failed duplicate address detection: the kernel sends nothing from it"},
		{"addresses not read", v4, map[string]model.Device{"wan": wan()}, true, ""},
		{"follows the wan", follows, map[string]model.Device{"wan": wan("192.0.2.1/24")}, false, ""},
		{"link-local", linkLocal, map[string]model.Device{"wan": wan()}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(parse(t, "[global]\nfirewall = false\n"+tt.conf), model.Inputs{Devices: tt.devices, AddrsUnread: tt.unread}, model.State{})
			if len(r.Tunnels) != 1 || !r.Tunnels[0].Up {
				t.Fatalf("tunnels %+v: want one, up", r.Tunnels)
			}
			if diff := cmp.Diff(tt.want, r.Tunnels[0].LocalAbsent); diff != "" {
				t.Errorf("LocalAbsent (-want +got):\n%s", diff)
			}
		})
	}
}
