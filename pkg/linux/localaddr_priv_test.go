package linux

import (
	"fmt"
	"net/netip"
	"regexp"
	"testing"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// srcWord is the source `ip route get` gives.
var srcWord = regexp.MustCompile(` src (\S+)`)

// TestPrivilegedLocalIsKernelSource: a tunnel that follows a device with
// several addresses (a cable modem's access address beside the lease; a
// ULA beside the ISP's prefix, newer than it) takes, for each remote, the
// source the kernel itself picks (`ip route get REMOTE oif wan0`), with
// the routes of main observed: a tester's tunnels took the first
// address, or the newest, and were dead with status saying up.
func TestPrivilegedLocalIsKernelSource(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("wan0", "wan0peer", nil); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"wan0", "wan0peer"} {
		if err := netnstest.LinkUp(dev); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"192.168.100.2/24", "192.0.2.5/24", "2001:db8:ff::1/64", "fd00:ff::1/64"} {
		if err := netnstest.AddAddr("wan0", netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	ipCmd(t, "route", "add", "default", "via", "192.0.2.1", "dev", "wan0")
	ipCmd(t, "route", "add", "203.0.113.0/24", "via", "192.168.100.1", "dev", "wan0")
	ipCmd(t, "-6", "route", "add", "default", "via", "2001:db8:ff::2", "dev", "wan0")
	_, in, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"192.0.2.2", "198.51.100.9", "203.0.113.7", "192.168.100.1", "2001:db8:aa::2", "fd00:aa::2", "2001:db8:ff::9", "fd00:ff::9"} {
		// Not in subtests: their goroutines are not in the namespace.
		func() {
			r := netip.MustParseAddr(remote)
			family, mode := "-4", "ipip"
			if r.Is6() {
				family, mode = "-6", "ip6ip6"
			}
			m := srcWord.FindStringSubmatch(ipCmd(t, family, "route", "get", remote, "oif", "wan0"))
			if m == nil {
				t.Errorf("ip route get %s: no src", remote)
				return
			}
			c := parse(t, fmt.Sprintf("[tunnel.t0]\nmode = %q\nlocal = \"wan0\"\nremote = %q\n", mode, remote))
			res := desired.Build(c, in, model.State{})
			if got := res.Tunnels[0].Local; got != netip.MustParseAddr(m[1]) {
				t.Errorf("remote %s: local %v, the kernel's source %s (wan0 %v)", remote, got, m[1], in.Devices["wan0"].Addrs)
			}
		}()
	}
}
