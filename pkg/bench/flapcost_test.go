package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// flapRounds is how many times TestFlapCost flaps each build's underlay.
const flapRounds = 3

// TestFlapCost runs `tunneld run` with 5 tunnels following eth0 (the
// filter on), flaps eth0 for 20 s (see flap), and reads the daemon's CPU
// time and converges meanwhile: what a cable that keeps flapping costs a
// router. With TUNNELD_BENCH_BASELINE_BIN, that build is flapped too, in
// the same rounds, every other round first.
func TestFlapCost(t *testing.T) {
	s := setup(t)
	builds := []string{s.bin}
	impls := []string{"tunneld run"}
	if bin := os.Getenv("TUNNELD_BENCH_BASELINE_BIN"); bin != "" {
		builds = append(builds, bin)
		impls = append(impls, "tunneld run, baseline "+os.Getenv("TUNNELD_BENCH_BASELINE"))
	}
	const d = 20 * time.Second
	cpu := make([][]float64, len(builds))
	converges := make([][]float64, len(builds))
	for round := range flapRounds {
		order := []int{0, 1}[:len(builds)]
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			ms, n := flapOnce(t, builds[i], d)
			cpu[i] = append(cpu[i], ms)
			converges[i] = append(converges[i], float64(n))
		}
	}
	for i := range builds {
		note := fmt.Sprintf("daemon CPU over %s of flapping, %.0f %% of one CPU; %.0f converges (medians of %d rounds)",
			d, median(cpu[i])/float64(d.Milliseconds())*100, median(converges[i]), flapRounds)
		if i > 0 {
			note += fmt.Sprintf("; tunneld's is %.2f× this", median(cpu[0])/median(cpu[i]))
		}
		report(t, result{Arch: s.arch, Bench: "flapping underlay, 5 tunnels", Impl: impls[i], Runs: cpu[i], Median: median(cpu[i]), Value: median(cpu[i]), Unit: "ms CPU", Note: note})
	}
}

// flapOnce starts bin's daemon in a fresh namespace, waits until it is
// converged and quiet, flaps eth0 for d, and returns the CPU time (ms)
// the daemon used meanwhile and its converges.
func flapOnce(t *testing.T, bin string, d time.Duration) (float64, int) {
	ns := underlay(t)
	defer ns.Close()
	cfg := flapConfig(t, true)
	state := t.TempDir()
	var cmd *exec.Cmd
	var rt *netlink.Conn
	if err := ns.Do(func() (err error) {
		if rt, err = netlink.Dial(unix.NETLINK_ROUTE, nil); err != nil {
			return err
		}
		cmd = exec.Command(bin, "run", "-c", cfg, "-log-level", "warn")
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+state)
		cmd.Stderr = os.Stderr
		return cmd.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	defer stopper(cmd)()
	pid := cmd.Process.Pid
	count := func() int {
		_, out := run(t, ns, bin, "status", "--json", "-c", cfg, "-socket", filepath.Join(state, "tunneld.sock"))
		var st struct{ Daemon *struct{ Converges int } }
		if json.Unmarshal([]byte(out), &st) != nil || st.Daemon == nil {
			return -1
		}
		return st.Daemon.Converges
	}
	// Converged: t4 is up, status answers, and the daemon used no CPU
	// for a second.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if linkUp(t, rt, "t4") && count() > 0 {
			c := cpuTicks(pid)
			time.Sleep(time.Second)
			if cpuTicks(pid) == c {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not converge within 2 minutes")
		}
	}
	n0, c0 := count(), cpuTicks(pid)
	flap(t, rt, ifindex(t, rt, "eth0"), d, false)
	c1 := cpuTicks(pid)
	return float64(c1-c0) * 10, count() - n0
}
