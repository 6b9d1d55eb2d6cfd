package e2e

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedPastedNames runs the link commands a plan prints for
// devices named like ip's words through the real ip, in a fresh
// namespace: each is read as meant. A tester's pasted plan for a tunnel
// named t failed, ip reading t as txqueuelen. The tunnel's creation and
// change run where the kernel has ipip and TUNNELD_IPROUTE2 names
// iproute2's ip (the amd64 VM suite); the others on any veth, with
// busybox's ip only those it has (set up, set down, del).
func TestPrivilegedPastedNames(t *testing.T) {
	netnstest.Enter(t)
	ip, err := exec.LookPath("ip")
	if dir := os.Getenv(envIPRoute2); dir != "" {
		ip, err = filepath.Join(dir, "ip"), nil
	}
	if err != nil {
		t.Skip("no ip on this machine")
	}
	// Busybox's ip (the mipsel guest's) has no alias and no mtu in
	// ip link add: plans are written for iproute2's. It still reads
	// the name after dev in ip link set and del, which it is given.
	v, _ := exec.Command(ip, "-V").CombinedOutput()
	busybox := !strings.Contains(string(v), "iproute2")
	run := func(cmd string) error {
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Logf("%s: %v: %s", cmd, err, out)
		}
		return err
	}
	for _, name := range []string{"t", "a", "d", "moe"} {
		l := model.Link{Name: name, Mode: model.ModeIPIP, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("192.0.2.2"), TTL: 64, PMTUDisc: true, MTU: 1480, Up: true}
		ops := []plan.Op{{Kind: plan.LinkMark, Link: &l}, {Kind: plan.LinkDown, Name: name}, {Kind: plan.LinkUp, Name: name}, {Kind: plan.LinkDel, Link: &l}}
		if busybox {
			ops = ops[1:]
		}
		if !busybox && exec.Command(ip, "link", "add", "name", name, "type", "ipip", "local", "192.0.2.1", "remote", "192.0.2.2").Run() == nil {
			if err := run(ip + " link del " + model.LinkArg(name)); err != nil {
				t.Fatal(err)
			}
			changed := l
			changed.MTU = 1400
			ops = append([]plan.Op{{Kind: plan.LinkAdd, Link: &l}, {Kind: plan.LinkChange, Link: &changed, Old: &l}}, ops[:3]...)
			ops = append(ops, plan.Op{Kind: plan.LinkDel, Link: &l})
		} else if err := netnstest.VethUp(name, "peer-"+name); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if err := run(strings.ReplaceAll(op.Command(nil), "ip link", ip+" link")); err != nil {
				t.Errorf("%q: %s failed", name, op.Command(nil))
			}
		}
	}
}
