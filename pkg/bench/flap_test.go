package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/cli"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestFlapProfile runs the daemon in a child process with 5 tunnels (the
// filter on) over eth0, sets eth0 down and up again, 50–200 ms apart, for
// 20 s, and prints the CPU time the process
// used for it and its CPU profile: where a flapping cable's time goes.
// It does so with the tunnels' local address pinned, then with the
// tunnels following eth0's (local = "eth0"); and, as an admin's shell
// loop would, with an `ip link set` process for each step.
func TestFlapProfile(t *testing.T) {
	if os.Getenv("TUNNELD_BENCH_CHILD") == "1" {
		flapChild(t)
		return
	}
	setup(t)
	if os.Getenv("TUNNELD_BENCH_PROFILE") != "1" {
		t.Skip("set TUNNELD_BENCH_PROFILE=1")
	}
	t.Setenv("TUNNELD_BENCH_CHILD", "1")
	for _, c := range []struct{ local, by string }{{"pinned", "netlink"}, {"follows", "netlink"}, {"follows", "ip"}} {
		ns := underlay(t)
		t.Setenv("TUNNELD_BENCH_FLAP_LOCAL", c.local)
		t.Setenv("TUNNELD_BENCH_FLAP_BY", c.by)
		_, out := run(t, ns, os.Args[0], "-test.run=^TestFlapProfile$", "-test.count=1")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "PROFILE ") || strings.HasPrefix(l, "PPROF ") {
				fmt.Println(l)
			}
		}
		ns.Close()
	}
}

func flapChild(t *testing.T) {
	const secs = 20
	local, by := os.Getenv("TUNNELD_BENCH_FLAP_LOCAL"), os.Getenv("TUNNELD_BENCH_FLAP_BY")
	cfg := flapConfig(t, local == "follows")
	ctx, cancel := context.WithCancel(context.Background())
	var log syncbuf.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cli.Main(&cli.Env{StateDir: t.TempDir(), Stdout: &log, Stderr: &log, Context: ctx,
			Kernel: func(needFilter bool) (kernel.Kernel, error) {
				return linux.Open(linux.Options{StateDir: t.TempDir(), FilterOptional: !needFilter})
			},
			Events: func(ctx context.Context, k kernel.Kernel) (<-chan watch.Event, error) {
				w, err := watch.Open(k.(*linux.Kernel).PortID())
				if err != nil {
					return nil, err
				}
				ch := make(chan watch.Event, watch.Backlog)
				go w.Run(ctx, ch)
				return ch, nil
			}}, []string{"run", "-c", cfg, "-log-level", "debug"})
	}()
	defer func() { cancel(); wg.Wait() }()
	rt, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for deadline := time.Now().Add(2 * time.Minute); !linkUp(t, rt, "t4"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon made no t4:\n%s", tail(log.String()))
		}
	}
	time.Sleep(2 * time.Second)
	eth0 := ifindex(t, rt, "eth0")
	before := lines(&log)
	var prof bytes.Buffer
	cpu0 := selfCPU()
	pprof.StartCPUProfile(&prof)
	flaps := flap(t, rt, eth0, time.Duration(secs)*time.Second, by == "ip")
	pprof.StopCPUProfile()
	cpu := selfCPU() - cpu0
	converges := 0
	for _, l := range lines(&log)[len(before):] {
		if strings.Contains(l, "msg=converged") || strings.Contains(l, `msg="converged`) {
			converges++
		}
	}
	fmt.Printf("PROFILE flap-%s-by-%s: %d flaps in %ds, %s CPU (%.0f %% of one CPU), %d converge lines\n", local, by, flaps, secs, cpu.Round(time.Millisecond),
		100*cpu.Seconds()/float64(secs), converges)
	fmt.Printf("PPROF flap-%s-by-%s %s\n", local, by, base64.StdEncoding.EncodeToString(prof.Bytes()))
}

// selfCPU is the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lines are the log's lines so far.
func lines(b *syncbuf.Buffer) []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }

// flapConfig writes the configuration of 5 tunnels over eth0, the filter
// on, with the tunnels' local address pinned or following eth0's.
func flapConfig(t *testing.T, follows bool) string {
	cfg := writeConfig(t, 5, true)
	if !follows {
		return cfg
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, bytes.ReplaceAll(b, []byte(`local = "192.0.0.1"`), []byte(`local = "eth0"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// flap sets device eth0 (index) down and up again, 50–200 ms apart (the
// same pauses every time), for d; by ip, with an `ip link set` process
// for each step, as an admin's shell loop would. It returns how many
// times.
func flap(t *testing.T, rt *netlink.Conn, eth0 int, d time.Duration, byIP bool) int {
	r := rand.New(rand.NewPCG(1, 2))
	flaps := 0
	for end := time.Now().Add(d); time.Now().Before(end); flaps++ {
		for _, up := range []uint32{0, unix.IFF_UP} {
			if byIP {
				if out, err := exec.Command("ip", "link", "set", "eth0", map[uint32]string{0: "down", unix.IFF_UP: "up"}[up]).CombinedOutput(); err != nil {
					t.Fatalf("ip link set: %v: %s", err, out)
				}
			} else {
				b := make([]byte, 16)
				putLink(b, eth0, up)
				if _, err := rt.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge}, Data: b}); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Duration(50+r.IntN(151)) * time.Millisecond)
		}
	}
	return flaps
}
