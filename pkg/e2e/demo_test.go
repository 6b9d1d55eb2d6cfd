package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemo is `make demo`: seed 000 shown step by step on the terminal.
// It runs only with TUNNELD_DEMO=1.
func TestDemo(t *testing.T) {
	if os.Getenv("TUNNELD_DEMO") != "1" {
		t.Skip("the demo runs with TUNNELD_DEMO=1 (make demo)")
	}
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	step := func(s string) { say("\n\033[1m== %s\033[0m", s) }
	const seed = "000_c4416a8950d425f4"
	l := newLab(t)
	step("seed 000: host1 (veth0 172.16.10.2) — router — host2 (veth3 152.16.10.2), each a network namespace")
	l.hostRouterHost(false) // the router's tunneld configuration turns forwarding on
	before := l.snapshot("host1")

	cfg, _ := os.ReadFile(seedFile(seed, "host1"))
	step("host1's configuration (" + seedFile(seed, "host1") + ")")
	fmt.Print(string(cfg))
	step("host1$ tunneld plan")
	out, _ := l.tunneld("host1", "plan", "-c", seedFile(seed, "host1"))
	fmt.Print(out)

	step("router$ tunneld apply; host1$ tunneld apply; host2$ tunneld apply")
	for _, n := range []string{"router", "host1", "host2"} {
		out, err := l.tunneld(n, "apply", "-c", seedFile(seed, n))
		skipWithoutDriver(t, err)
		fmt.Printf("[%s]\n%s", n, out)
	}
	step("host1$ tunneld apply   (again: idempotent)")
	out, _ = l.tunneld("host1", "apply", "-c", seedFile(seed, "host1"))
	fmt.Print(out)

	step("host1$ ping -c 3 192.168.50.2   (across the tunnel), capturing on the router")
	var fd int
	l.in("router", func() (err error) { fd, err = capture("veth1"); return err })
	l.in("host1", func() error {
		out, err := exec.Command("ping", "-c", "3", "192.168.50.2").CombinedOutput()
		fmt.Print(string(out))
		return err
	})
	pkts := readPackets(fd, 300*time.Millisecond)
	step("what the router saw on veth1: the outer header carries the underlay endpoints, the inner one the tunnel's")
	for i, p := range pkts {
		if i < 4 {
			say("  %s", p)
		}
	}
	step("host1$ tunneld status")
	out, _ = l.tunneld("host1", "status", "-c", seedFile(seed, "host1"))
	fmt.Print(out)

	step("tunneld down everywhere")
	for _, n := range []string{"host1", "host2", "router"} {
		out, _ := l.tunneld(n, "down", "-c", seedFile(seed, n))
		fmt.Printf("[%s]\n%s", n, out)
	}
	if l.snapshot("host1") == before {
		say("\nhost1 is exactly as it was before apply.")
	} else {
		t.Error("host1 differs after down")
	}
	if len(pkts) == 0 || !strings.Contains(pkts[0].String(), "172.16.10.2 > 152.16.10.2") {
		t.Error("no tunnel traffic captured")
	}
}
