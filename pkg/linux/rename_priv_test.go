package linux

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedRenamedDeviceSysctl: proxy_arp set on a LAN device that
// is renamed afterwards is put back on it under its new name, by the
// next converge (the configuration names the old one, which is gone), and
// the record is empty after (a tester's renamed device kept proxy_arp 1
// after the daemon stopped: the record went with the old name). A device
// of the old name made since is not touched.
func TestPrivilegedRenamedDeviceSysctl(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("eth1", "eth1peer", nil); err != nil {
		t.Fatal(err)
	}
	c := parse(t, "[global]\nfirewall = false\nproxy_arp = [\"eth1\"]\n")
	converge(t, k, c)
	const old, renamed = "net/ipv4/conf/eth1/proxy_arp", "net/ipv4/conf/lan0/proxy_arp"
	if diff := cmp.Diff(map[string]string{old: "1"}, readSysctls(t, []string{old})); diff != "" {
		t.Fatalf("proxy_arp after the first converge (-want +got):\n%s", diff)
	}
	ipCmd(t, "link", "set", "eth1", "name", "lan0")
	if err := netnstest.Veth("eth1", "eth1peer2", nil); err != nil {
		t.Fatal(err)
	}
	rep := converge(t, k, c)
	var ops []string
	for _, op := range rep.Applied {
		ops = append(ops, op.Command(rep.Last.Plan.Tables))
	}
	want := []string{"sysctl -w net.ipv4.conf.eth1.proxy_arp=1", "sysctl -w net.ipv4.conf.lan0.proxy_arp=0  # original value"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("the converge after the rename (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{renamed: "0", old: "1"}, readSysctls(t, []string{renamed, old})); diff != "" {
		t.Errorf("proxy_arp after the rename's converge (-want +got):\n%s", diff)
	}
	if _, err := engine.Down(ctx, k, c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{renamed: "0", old: "0"}, readSysctls(t, []string{renamed, old})); diff != "" {
		t.Errorf("proxy_arp after down (-want +got):\n%s", diff)
	}
	if rec, _, err := k.readOriginals(); err != nil || len(rec) != 0 {
		t.Errorf("the record after down: %v, %v; want it empty", rec, err)
	}
}
