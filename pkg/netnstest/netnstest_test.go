package netnstest

import (
	"net"
	"os"
	"strings"
	"testing"
)

// TestEnterIsolates checks that Enter gives an empty namespace (only lo)
// and that a veth peer can be moved into a second one.
func TestEnterIsolates(t *testing.T) {
	Enter(t)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	// Besides lo, a new namespace holds only the fallback devices of the
	// tunnel modules loaded (tunl0, gre0, …), all down.
	for _, ifc := range ifs {
		if ifc.Name != "lo" && ifc.Flags&net.FlagUp != 0 {
			t.Errorf("device %s is up in a new namespace", ifc.Name)
		}
	}
	if _, err := net.InterfaceByName("v0"); err == nil {
		t.Fatal("v0 exists before it is made")
	}
	other := NewNS(t)
	if err := Veth("v0", "v1", other); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName("v1"); err == nil {
		t.Fatal("peer v1 is in our namespace")
	}
	var found bool
	if err := other.Do(func() error {
		_, err := net.InterfaceByName("v1")
		found = err == nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("peer v1 not in the other namespace")
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || string(b) != "0\n" {
		t.Fatalf("ip_forward in a new namespace = %q, %v", b, err)
	}
}

func TestSnapshotSeesChanges(t *testing.T) {
	Enter(t)
	a, err := Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := Veth("v0", "v1", nil); err != nil {
		t.Fatal(err)
	}
	b, err := Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || !strings.Contains(b, " v1 kind \"veth\"") {
		t.Fatalf("snapshot did not change with a new veth pair:\n%s", b)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	c, _ := Snapshot()
	if c == b {
		t.Fatal("snapshot did not change with ip_forward")
	}
}
