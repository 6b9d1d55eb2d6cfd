package linux

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

var errCrashed = errors.New("crashed")

// crashing is the kernel as a process killed in the middle of a plan
// leaves it: Apply carries out the next left operations, then no more.
type crashing struct {
	*Kernel
	left int
}

func (c *crashing) Apply(ctx context.Context, p plan.Plan) error {
	crashed := len(p.Ops) > c.left
	if crashed {
		p.Ops = p.Ops[:c.left]
	}
	c.left -= len(p.Ops)
	err := c.Kernel.Apply(ctx, p)
	if crashed {
		return errors.Join(err, errCrashed)
	}
	return err
}

// withTunnel adds an ipip tunnel, its address and a route through it to
// withoutTunnels.
const withTunnel = withoutTunnels + `
[tunnel.moe]
mode = "ipip"
local = "eth0"
remote = "203.0.113.7"
address = "10.70.0.1 peer 10.70.0.2"

[[route]]
to = "10.71.0.0/16"
dev = "moe"
table = "near"
`

// TestPrivilegedCrashAtEveryOperation stops tunneld after each operation
// of an apply, and of a teardown, in turn, each time in a fresh namespace
// with foreign state, and starts a new one with the same state directory
// to do the job again: the apply must reach exactly the namespace an
// uninterrupted apply gives, and the teardown the namespace as it was.
// The configuration with a tunnel skips without the ipip driver (this
// host); the VMs run it.
func TestPrivilegedCrashAtEveryOperation(t *testing.T) {
	for _, tc := range []struct{ name, config string }{{"without tunnels", withoutTunnels}, {"with a tunnel", withTunnel}} {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.config)
			var before, want string
			t.Run("uninterrupted", func(t *testing.T) {
				k := open(t)
				snap := foreign(t)
				before = snap()
				converge(t, k, c)
				want = snap()
			})
			if want == "" {
				t.SkipNow() // the reference skipped or failed, and said why
			}
			apply := func(k kernel.Kernel) error { _, err := engine.Converge(ctx, k, c, nil); return err }
			down := func(k kernel.Kernel) error { _, err := engine.Down(ctx, k, c); return err }
			for _, job := range []string{"apply", "down"} {
				t.Run(job, func(t *testing.T) {
					for n := 0; ; n++ {
						finished := false
						t.Run(fmt.Sprint("crash after ", n), func(t *testing.T) {
							netnstest.Enter(t)
							snap := foreign(t)
							dir := t.TempDir()
							k1, err := Open(Options{StateDir: dir})
							if err != nil {
								t.Fatal(err)
							}
							run := apply
							if job == "down" {
								if err := apply(k1); err != nil {
									t.Fatal(err)
								}
								run = down
							}
							err = run(&crashing{Kernel: k1, left: n})
							k1.Close()
							if err == nil {
								finished = true // n operations or fewer do it all
								return
							}
							if !errors.Is(err, errCrashed) {
								t.Fatalf("before the crash: %v", err)
							}
							k2, err := Open(Options{StateDir: dir})
							if err != nil {
								t.Fatal(err)
							}
							defer k2.Close()
							if job == "apply" {
								if err := apply(k2); err != nil {
									t.Fatalf("apply after the crash: %v", err)
								}
								if got := snap(); got != want {
									t.Fatalf("after the crash and a new apply (-uninterrupted +restarted):\n%s", cmp.Diff(want, got))
								}
							}
							if err := down(k2); err != nil {
								t.Fatalf("down: %v", err)
							}
							if got := snap(); got != before {
								t.Fatalf("after down (-before +after):\n%s", cmp.Diff(before, got))
							}
						})
						if finished && n == 0 {
							t.Fatal("nothing to interrupt")
						}
						if finished || t.Failed() {
							break
						}
					}
				})
			}
		})
	}
}

// downAfterCrash takes the result of a run stopped by a crash (err, nil
// when it finished first) and runs down with c in a new process's kernel
// on the same state directory, as a restart would. It reports whether the
// run had finished.
func downAfterCrash(t *testing.T, dir string, err error, c *config.Config) bool {
	t.Helper()
	if err != nil && !errors.Is(err, errCrashed) {
		t.Fatalf("before the crash: %v", err)
	}
	k, kerr := Open(Options{StateDir: dir})
	if kerr != nil {
		t.Fatal(kerr)
	}
	defer k.Close()
	if _, derr := engine.Down(ctx, k, c); derr != nil {
		t.Fatalf("down: %v", derr)
	}
	return err == nil
}
