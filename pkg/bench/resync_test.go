package bench

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// TestResync measures the daemon's periodic full re-read of the largest
// state (the no-op resync): `tunneld run` with resync_interval = "2s",
// the daemon's own timing of each resync (debug log) and every change
// notification in the namespace while it resyncs (writes by anyone).
func TestResync(t *testing.T) {
	s := setup(t)
	n := slices.Max(s.ns)
	ns := underlay(t)
	defer ns.Close()
	cfg := writeConfig(t, n, false, `resync_interval = "2s"`)
	var mon *netlink.Conn
	var logs syncBuffer
	cmd := exec.Command(s.bin, "run", "-c", cfg, "-log-level", "debug")
	cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+t.TempDir())
	cmd.Stderr = &logs
	if err := ns.Do(func() (err error) {
		if mon, err = changeMonitor(); err != nil {
			return err
		}
		return cmd.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	stop := stopper(cmd)
	defer stop()
	for deadline := time.Now().Add(5 * time.Minute); !strings.Contains(logs.String(), "msg=converged reason=start"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("tunneld run did not converge within 5 minutes:\n%s", tail(logs.String()))
		}
	}
	if drain(mon, time.Second) == 0 {
		t.Fatalf("the change monitor heard nothing of the converge of %d tunnels", n)
	}
	writes := 0
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		mon.SetReadDeadline(end)
		msgs, err := mon.Receive()
		if err != nil {
			break
		}
		writes += len(msgs)
	}
	stop()
	var took []float64
	for _, c := range converges(logs.String()) {
		if c.reason == "resync" {
			if c.ops != 0 {
				t.Errorf("a resync changed %d objects", c.ops)
			}
			took = append(took, c.took)
		}
	}
	if len(took) == 0 {
		t.Fatalf("no resync in the daemon's log:\n%s", tail(logs.String()))
	}
	report(result{Arch: s.arch, Bench: "resync (daemon, periodic)", Impl: "tunneld run", N: n, Runs: took,
		Note: fmt.Sprintf("%d change notifications during %d resyncs", writes, len(took))})
}
