package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOneDaemon: with a daemon running, a second `tunneld run` with the
// same state directory refuses at once, naming it, and leaves its status
// socket and ip_forward alone; so does `down`. A daemon killed with
// SIGKILL leaves no stale lock: the next one starts, and when it stops it
// restores ip_forward and leaves no socket or lock behind. It needs no
// tunnel driver.
func TestOneDaemon(t *testing.T) {
	l := newLab(t)
	const ns = "router"
	cfg := filepath.Join(l.dir, "router.toml")
	if err := os.WriteFile(cfg, []byte("[global]\nip_forward = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(l.dir, ns)
	forward := func() string {
		t.Helper()
		var b []byte
		l.in(ns, func() (err error) { b, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward"); return err })
		return strings.TrimSpace(string(b))
	}
	running := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(l.statusText(ns, cfg), "daemon: running since"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no daemon running after 10s:\n%s", l.statusText(ns, cfg))
			}
		}
	}
	// refused runs tunneld, which must fail within 10s saying want.
	refused := func(want string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		err := l.node(ns).Do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, l.bin, args...)
			cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+state)
			cmd.Stdout, cmd.Stderr = &out, &out
			return cmd.Run()
		})
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("tunneld %s: %v, want exit status 1\n%s", strings.Join(args, " "), err, out.String())
		}
		if out.String() != want {
			t.Errorf("tunneld %s said %q, want %q", strings.Join(args, " "), out.String(), want)
		}
	}

	d1 := l.daemon(ns, cfg)
	running()
	if f := forward(); f != "1" {
		t.Fatalf("ip_forward = %s with the daemon running", f)
	}
	refused(fmt.Sprintf("tunneld: state directory %s: a daemon is already running (pid %d): not starting another\n", state, d1.Process.Pid),
		"run", "-c", cfg)
	refused(fmt.Sprintf("tunneld: state directory %s: a daemon is running (pid %d) and would put back what down removes: "+
		"stop it instead (systemctl stop tunneld or service tunneld stop)\n", state, d1.Process.Pid), "down", "-c", cfg)
	running()
	if f := forward(); f != "1" {
		t.Errorf("ip_forward = %s after the refused commands, want 1", f)
	}

	d1.Process.Signal(syscall.SIGKILL)
	d1.Wait()
	d2 := l.daemon(ns, cfg)
	running()
	d2.Process.Signal(syscall.SIGTERM)
	if err := d2.Wait(); err != nil {
		t.Errorf("the daemon started after a SIGKILL: %v", err)
	}
	if f := forward(); f != "0" {
		t.Errorf("ip_forward = %s after the daemon stopped, want 0", f)
	}
	es, _ := os.ReadDir(state)
	for _, e := range es {
		if !e.Type().IsRegular() || e.Name() == "tunneld.lock" {
			t.Errorf("%s left in the state directory", e.Name())
		}
	}
}
