package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedLostStateDirHandsOverSysctls: a daemon that loses its
// wiped state directory to a second `tunneld run` hands its sysctl
// originals over, and the second puts ip_forward back at its stop (a
// tester's stayed 1 after both stopped: the second found it set already
// and recorded nothing). The sysctl tree is a copy in a temporary
// directory; the kernels' netlink sockets are opened in a fresh
// namespace, before the daemons' goroutines start.
func TestPrivilegedLostStateDirHandsOverSysctls(t *testing.T) {
	netnstest.Enter(t)
	procSys, value := fakeForward(t)
	state := t.TempDir()
	open := func() *linux.Kernel {
		k, err := linux.Open(linux.Options{StateDir: state, ProcSys: procSys, FilterOptional: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	k1, k2 := open(), open()
	file, _ := wipeConfig(t, "ip_forward = true\n")
	// wipeConfig's [global] ends the file: ip_forward is in it.
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "[global]\nfirewall = false\nresync_interval = \"1s\"\nip_forward = true\n") {
		t.Fatalf("configuration:\n%s", b)
	}
	first := runWiped(t, k1, state, file)
	if v := value(); v != "1" {
		t.Fatalf("ip_forward %q under the first daemon, want 1", v)
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	second := runWiped(t, k2, state, file)
	first.lost(t)
	if log := first.errb.String(); !strings.Contains(log, "handed this daemon's records") {
		t.Errorf("the first daemon's log does not say it handed its records over:\n%s", log)
	}
	second.stop(t, "the second daemon")
	if v := value(); v != "0" {
		t.Errorf("ip_forward %q after both daemons stopped, want the original 0:\nfirst:\n%s\nsecond:\n%s", v, first.errb.String(), second.errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, "sysctl.json")); err == nil {
		t.Errorf("the sysctl record is left after the second's teardown")
	}
}

// fakeForward makes a sysctl tree in a temporary directory with
// ip_forward 0, for a kernel seam's ProcSys, and returns it with a
// function that reads ip_forward there.
func fakeForward(t *testing.T) (procSys string, value func() string) {
	t.Helper()
	procSys = t.TempDir()
	forward := filepath.Join(procSys, "net/ipv4/ip_forward")
	if err := os.MkdirAll(filepath.Dir(forward), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forward, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return procSys, func() string {
		b, err := os.ReadFile(forward)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
}
