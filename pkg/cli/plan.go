package cli

import (
	"fmt"
	"io"

	"github.com/tunneld/tunneld/pkg/engine"
)

func runPlan(env *Env, args []string) int {
	fs, path := flags(env, "plan")
	fromEmpty := fs.Bool("from-empty", false, "plan against an empty kernel that has only the devices the configuration names (needs no privileges)")
	if !parse(env, fs, args) {
		return 2
	}
	c, ok := load(env, *path)
	if !ok {
		return 1
	}
	var s engine.Snapshot
	if *fromEmpty {
		have, in := emptyObservation(c)
		s = engine.Plan(have, in, c, resolveAll(env, c))
	} else {
		k, ok := openKernel(env, "try --from-empty")
		if !ok {
			return 1
		}
		defer closeKernel(k)
		var err error
		if s, err = engine.Look(env.Context, k, c, resolveAll(env, c)); err != nil {
			fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
			return 1
		}
	}
	PrintPlan(env.Stdout, s)
	return 0
}

// PrintPlan writes a snapshot's notes and waiting tunnels as comments,
// then its plan.
func PrintPlan(w io.Writer, s engine.Snapshot) {
	for _, t := range s.Want.Tunnels {
		if !t.Up {
			fmt.Fprintf(w, "# tunnel %q is down: %s\n", t.Name, t.Reason)
		}
	}
	for _, n := range s.Want.Notes {
		fmt.Fprintf(w, "# %s\n", n)
	}
	if s.Plan.Empty() {
		fmt.Fprintln(w, "# nothing to do: the kernel matches the configuration")
		return
	}
	fmt.Fprint(w, s.Plan)
}
