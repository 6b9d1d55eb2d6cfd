package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// TestConverge measures converging from empty to n tunnels (each with an
// address, a route in its own table and a source rule) with tunneld apply,
// with one ip process per operation, and with ip -batch; then the no-op
// re-apply of the same state.
func TestConverge(t *testing.T) {
	s := setup(t)
	for _, n := range s.ns {
		cfg := writeConfig(t, n, false)
		cfgFW := writeConfig(t, n, true)
		ip, busybox := s.ip, s.ip == ""
		if busybox {
			ip = "ip"
		}
		ops := ipOps(n, busybox)
		script := filepath.Join(t.TempDir(), "ops.sh")
		batch := filepath.Join(t.TempDir(), "ops.batch")
		var sh strings.Builder
		sh.WriteString("set -e\n")
		for _, op := range ops {
			sh.WriteString(ip + " " + op + "\n")
		}
		os.WriteFile(script, []byte(sh.String()), 0o755)
		os.WriteFile(batch, []byte(strings.Join(ops, "\n")+"\n"), 0o644)
		var apply, applyFW, noop, perOp, ipBatch []float64
		noopWrites := 0
		for range s.runs {
			// Each measurement gets a fresh namespace, emptied and let go
			// right after (a thousand tunnels each: the guest's memory is
			// small).
			ns := underlay(t)
			var mon *netlink.Conn
			if err := ns.Do(func() (err error) { mon, err = changeMonitor(); return err }); err != nil {
				t.Fatal(err)
			}
			d, _ := run(t, ns, s.bin, "apply", "-c", cfg)
			apply = append(apply, ms(d))
			if heard := drain(mon, time.Second); heard == 0 {
				t.Fatalf("the change monitor heard %d notifications during the converge of %d tunnels", heard, n)
			}
			d, out := run(t, ns, s.bin, "apply", "-c", cfg)
			if !strings.Contains(out, "nothing to do") {
				t.Fatalf("re-apply changed something:\n%s", tail(out))
			}
			noop = append(noop, ms(d))
			noopWrites += drain(mon, time.Second)
			mon.Close()
			release(t, ns, s.bin, cfg)
			ns = underlay(t)
			d, _ = run(t, ns, s.bin, "apply", "-c", cfgFW)
			applyFW = append(applyFW, ms(d))
			release(t, ns, s.bin, cfgFW)
			ns = underlay(t)
			d, _ = run(t, ns, "sh", script)
			perOp = append(perOp, ms(d))
			release(t, ns, s.bin, cfg)
			if !busybox {
				ns = underlay(t)
				d, _ = run(t, ns, s.ip, "-batch", batch)
				ipBatch = append(ipBatch, ms(d))
				release(t, ns, s.bin, cfg)
			}
		}
		report(t, result{Arch: s.arch, Bench: "converge", Impl: "tunneld apply", N: n, Runs: apply})
		report(t, result{Arch: s.arch, Bench: "converge", Impl: "tunneld apply, with its filter", N: n, Runs: applyFW})
		report(t, result{Arch: s.arch, Bench: "resync (no-op apply)", Impl: "tunneld apply", N: n, Runs: noop,
			Note: fmt.Sprintf("%d change notifications over %d runs", noopWrites, s.runs)})
		if busybox {
			report(t, result{Arch: s.arch, Bench: "converge", Impl: "busybox ip, one process per operation", N: n, Runs: perOp})
		} else {
			report(t, result{Arch: s.arch, Bench: "converge", Impl: "ip, one process per operation", N: n, Runs: perOp})
			report(t, result{Arch: s.arch, Bench: "converge", Impl: "ip -batch", N: n, Runs: ipBatch})
		}
	}
}
