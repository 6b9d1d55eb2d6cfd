package engine

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/plan"
)

var errCrashed = errors.New("crashed")

// crashAfter makes k carry out n more operations and then none: the
// process that was applying them is gone. With torn, the operation it
// stopped in is left half-done where the real kernel seam sends it in two
// datagrams (a tunnel created without its alias). It returns a pointer to
// the kind of the operation the crash stopped.
func crashAfter(k *fakekernel.Kernel, n int, torn bool) *plan.Kind {
	stopped := new(plan.Kind)
	k.Fail = func(op plan.Op) error {
		if n == 0 {
			if *stopped == 0 {
				*stopped = op.Kind
			}
			if torn {
				return fmt.Errorf("%w: %w", errCrashed, fakekernel.ErrTorn)
			}
			return errCrashed
		}
		n--
		return nil
	}
	return stopped
}

// step is one of the engine's jobs, as a restarted process does it again.
type step struct {
	name string
	run  func(k *fakekernel.Kernel) error
}

func applyStep(c *config.Config) step {
	return step{"apply", func(k *fakekernel.Kernel) error { _, err := Converge(ctx, k, c, nil); return err }}
}

func downStep(c *config.Config) step {
	return step{"down", func(k *fakekernel.Kernel) error { _, err := Down(ctx, k, c); return err }}
}

// TestCrashAtEveryOperation: a process stopped after any operation of an
// apply, of a switch to another configuration, or of a teardown, and
// started again, ends where an uninterrupted run ends, without a
// duplicate; a teardown after it leaves the box as it was.
func TestCrashAtEveryOperation(t *testing.T) {
	all := seeds(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range all {
			if !yield(n) {
				return
			}
		}
	})
	type job struct {
		name   string
		before []step // done before the interrupted step
		step   step   // interrupted, then done again
		after  step   // the teardown that follows
	}
	var jobs []job
	for i, n := range names {
		c := all[n]
		jobs = append(jobs,
			job{"apply " + n, nil, applyStep(c), downStep(c)},
			job{"down " + n, []step{applyStep(c)}, downStep(c), downStep(c)})
		// A switch to the next configuration (and from the last to the
		// first).
		next := all[names[(i+1)%len(names)]]
		jobs = append(jobs, job{fmt.Sprintf("switch %s to %s", n, names[(i+1)%len(names)]), []step{applyStep(c)}, applyStep(next), downStep(next)})
	}
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			prepare := func() *fakekernel.Kernel {
				k := world()
				for _, s := range j.before {
					if err := s.run(k); err != nil {
						t.Fatalf("%s: %v", s.name, err)
					}
				}
				return k
			}
			ref := prepare()
			if err := j.step.run(ref); err != nil {
				t.Fatalf("uninterrupted %s: %v", j.step.name, err)
			}
			want := dumpOf(ref)
			// crashed runs the step interrupted after n operations, then
			// again; it reports whether there was anything to interrupt,
			// and whether the stopped operation is one a crash can tear.
			crashed := func(n int, torn bool) (interrupted, tearable bool) {
				k := prepare()
				stopped := crashAfter(k, n, torn)
				err := j.step.run(k)
				if err == nil {
					return false, false
				}
				if !errors.Is(err, errCrashed) {
					t.Fatalf("crash after %d operations: %s: %v", n, j.step.name, err)
				}
				how := "crash"
				if torn {
					how = "torn crash"
				}
				k.Fail = nil
				writes := k.Writes
				if err := j.step.run(k); err != nil {
					t.Fatalf("%s after %d operations: %s again: %v", how, n, j.step.name, err)
				}
				if diff := cmp.Diff(want, dumpOf(k), dumpOpts); diff != "" {
					t.Fatalf("%s after %d operations, %s again (-uninterrupted +restarted):\n%s", how, n, j.step.name, diff)
				}
				redone := k.Writes - writes
				if err := j.after.run(k); err != nil {
					t.Fatalf("%s after %d operations: %s: %v", how, n, j.after.name, err)
				}
				if diff := cmp.Diff(dumpOf(world()), dumpOf(k), dumpOpts); diff != "" {
					t.Fatalf("%s after %d operations and %d redone, then %s (-box before +after):\n%s", how, n, redone, j.after.name, diff)
				}
				return true, *stopped == plan.LinkAdd
			}
			for n := 0; ; n++ {
				interrupted, tearable := crashed(n, false)
				if !interrupted {
					// The step needs no more than n operations: it has
					// been interrupted after each one before its last.
					if n == 0 {
						t.Fatal("nothing to interrupt")
					}
					break
				}
				if tearable {
					crashed(n, true)
				}
			}
		})
	}
}
