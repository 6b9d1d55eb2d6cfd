package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// resyncRounds is how often TestResync converges and resyncs.
const resyncRounds = 3

// TestResync measures the daemon's periodic full re-read of the largest
// state (the no-op resync) side by side with the converge it is a share
// of. Each round converges a fresh namespace from empty with `tunneld
// apply` (timed as TestConverge does), then runs `tunneld run` there with
// resync_interval = "2s" for 10 s: the daemon's own timing of each resync
// (debug log), and every change notification in the namespace while it
// resyncs (writes by anyone). A resync's share is taken against the
// converge of its own round, seconds apart. Beside it, where Debian's
// iproute2 is in the guest, the time `ip` takes to read the same state.
// With TUNNELD_BENCH_BASELINE_BIN (another build of tunneld), each round
// also runs that build's daemon on the same converged state, the two
// taking turns at going first, and reports its resyncs and the ratio.
func TestResync(t *testing.T) {
	s := setup(t)
	n := slices.Max(s.ns)
	base := os.Getenv("TUNNELD_BENCH_BASELINE_BIN")
	global := []string{`resync_interval = "2s"`}
	if base != "" {
		// Both daemons resync the same converged state: the first
		// leaves it for the second, and `tunneld down` ends the round.
		global = append(global, "keep_on_exit = true")
	}
	cfg := writeConfig(t, n, false, global...)
	var took, baseTook, ratios, applied, shares, ipRead []float64
	writes := 0
	reads, none := readBatch(t, readReps), readBatch(t, 0)
	for round := range resyncRounds {
		ns := underlay(t)
		var mon *netlink.Conn
		if err := ns.Do(func() (err error) { mon, err = changeMonitor(); return err }); err != nil {
			t.Fatal(err)
		}
		d, _ := run(t, ns, s.bin, "apply", "-c", cfg)
		applied = append(applied, ms(d))
		// The monitor that counts the resyncs' writes must be seen to
		// hear writes: the converge's.
		if drain(mon, time.Second) == 0 {
			t.Fatalf("the change monitor heard nothing of the converge of %d tunnels", n)
		}
		if s.ip != "" {
			// The yardstick: iproute2 reading the same state, as a
			// script would look at it, readReps times in one process,
			// less the same process reading nothing (its start).
			for range 3 {
				many, _ := run(t, ns, "sh", "-c", `"$0" -d -batch "$1" >/dev/null`, s.ip, reads)
				start, _ := run(t, ns, "sh", "-c", `"$0" -d -batch "$1" >/dev/null`, s.ip, none)
				ipRead = append(ipRead, ms(many-start)/readReps)
			}
		}
		var ours, theirs []float64
		bins := []string{s.bin, base}
		if round%2 == 1 {
			bins = []string{base, s.bin}
		}
		for _, bin := range bins {
			if bin == "" {
				continue
			}
			// Without a baseline the daemon removes the tunnels when it
			// stops.
			got, w := daemonResyncs(t, ns, mon, bin, cfg, n)
			writes += w
			if bin == s.bin {
				ours = got
			} else {
				theirs = got
			}
		}
		mon.Close()
		if base != "" {
			release(t, ns, s.bin, cfg)
			baseTook = append(baseTook, theirs...)
			ratios = append(ratios, median(ours)/median(theirs))
		} else {
			ns.Close()
		}
		took = append(took, ours...)
		shares = append(shares, 100*median(ours)/ms(d))
	}
	report(t, result{Arch: s.arch, Bench: "resync (daemon, periodic)", Impl: "tunneld run", N: n, Runs: took,
		Note: fmt.Sprintf("%d change notifications during %d resyncs", writes, len(took)+len(baseTook))})
	if base != "" {
		rev := os.Getenv("TUNNELD_BENCH_BASELINE")
		report(t, result{Arch: s.arch, Bench: "resync (daemon, periodic)", Impl: "tunneld run, baseline " + rev, N: n, Runs: baseTook,
			Note: "tunneld built from that revision (TUNNELD_BENCH_BASELINE), on the same state in the same rounds"})
		report(t, result{Arch: s.arch, Bench: "resync, this build's time over the baseline's, side by side", Impl: "tunneld run", N: n,
			Value: 100 * median(ratios), Unit: "%", Note: fmt.Sprintf("median of the rounds' %s; the two take turns at going first", times(ratios))})
	}
	report(t, result{Arch: s.arch, Bench: "converge, beside the resyncs", Impl: "tunneld apply", N: n, Runs: applied,
		Note: fmt.Sprintf("one before each of %d rounds of resyncs", resyncRounds)})
	report(t, result{Arch: s.arch, Bench: "resync share of the converge, side by side", Impl: "tunneld run", N: n,
		Value: median(shares), Unit: "%", Note: fmt.Sprintf("median of the rounds' %s", percents(shares))})
	if len(ipRead) > 0 {
		report(t, result{Arch: s.arch, Bench: "read the same state, beside the resyncs", Impl: "ip -d -batch", N: n, Runs: ipRead,
			Note: fmt.Sprintf("%s; one read of %d in one process, its start left out; tunneld's resync is %.2f× this",
				strings.Join(readCommands, ", "), readReps, median(took)/median(ipRead))})
	}
}

// readCommands are what a script runs (with -d: the links' tunnel
// parameters too) to see the state a resync reads: links, addresses, the
// routes of every table and the rules.
var readCommands = []string{"link show", "address show", "route show table all", "rule show"}

// readReps is how often one `ip -batch` process reads the state.
const readReps = 10

// readBatch writes an `ip -batch` file of readCommands, reps times.
func readBatch(t *testing.T, reps int) string {
	p := filepath.Join(t.TempDir(), fmt.Sprintf("read%d.batch", reps))
	b := strings.Repeat(strings.Join(readCommands, "\n")+"\n", reps)
	if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemonResyncs runs `tunneld run` in ns (converged to cfg already) for
// 10 s and returns its resyncs' times and the change notifications mon
// heard meanwhile.
func daemonResyncs(t *testing.T, ns *netnstest.NS, mon *netlink.Conn, bin, cfg string, n int) ([]float64, int) {
	var logs syncbuf.Buffer
	cmd := exec.Command(bin, "run", "-c", cfg, "-log-level", "debug")
	cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+t.TempDir())
	cmd.Stderr = &logs
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	stop := stopper(cmd)
	defer stop()
	for deadline := time.Now().Add(5 * time.Minute); !strings.Contains(logs.String(), "msg=converged reason=start"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("tunneld run did not converge within 5 minutes:\n%s", tail(logs.String()))
		}
	}
	drain(mon, time.Second)
	writes := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
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
		switch {
		case c.reason == "start" && c.ops != 0:
			t.Errorf("the daemon's start changed %d objects of the %d tunnels tunneld apply converged", c.ops, n)
		case c.reason == "resync" && c.ops != 0:
			t.Errorf("a resync changed %d objects", c.ops)
		case c.reason == "resync":
			took = append(took, c.took)
		}
	}
	if len(took) == 0 {
		t.Fatalf("no resync in the daemon's log:\n%s", tail(logs.String()))
	}
	return took, writes
}

// times prints ratios as "0.81×, 0.77×, …".
func times(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f×", x)
	}
	return strings.Join(s, ", ")
}

// percents prints shares as "6.1 %, 5.2 %, …".
func percents(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f %%", x)
	}
	return strings.Join(s, ", ")
}
