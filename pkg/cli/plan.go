package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
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
		in.AddrsUnread = true
		s = engine.Plan(have, in, c, resolveAll(env, c))
	} else {
		k, ok := openKernel(env, c.Global.Firewall, "try --from-empty")
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
	if before := unrecorded(s); len(before) > 0 {
		fmt.Fprintf(env.Stdout, "# pasted, the sysctl writes above are not recorded, and `tunneld down` does not put them back (it puts back what apply and the daemon write): before them, %s\n", strings.Join(before, ", "))
	}
	return 0
}

// unrecorded are the sysctls s's plan writes that the kernel seam has no
// record of, as "name=value" with their values now: pasted into a shell
// the plan writes them without the record apply keeps, and down leaves
// them as the plan set them (a tester's box forwarded on after down).
func unrecorded(s engine.Snapshot) []string {
	var out []string
	for _, op := range s.Plan.Ops {
		if op.Kind != plan.SysctlSet || op.Sysctl.Original != "" {
			continue
		}
		i := slices.IndexFunc(s.Have.Sysctls, func(h model.Sysctl) bool { return h.Path == op.Sysctl.Path })
		if i < 0 || s.Have.Sysctls[i].Value == "" {
			continue
		}
		out = append(out, model.SysctlName(op.Sysctl.Path)+"="+s.Have.Sysctls[i].Value)
	}
	return out
}

// PrintPlan writes a snapshot's waiting tunnels, notes and warnings as
// comments, then its plan.
//
// A tunnel to create or set up whose routes stand as unreachable routes
// in the kernel meanwhile (desired.TunnelStatus.Standing: the kernel
// refused its creation, or it waited) is listed too: until the plan
// has brought it up, or when the kernel refuses it again, its routes
// are refused.
func PrintPlan(w io.Writer, s engine.Snapshot) {
	for _, t := range s.Want.Tunnels {
		switch {
		case !t.Up:
			fmt.Fprintf(w, "# tunnel %q is down: %s\n", t.Name, t.Reason)
		case len(t.Standing) > 0:
			what := "is not in the kernel: the plan creates it"
			if _, ok := model.LinkNamed(s.Have.Links, t.Name); ok {
				what = "is down in the kernel: the plan sets it up"
			}
			fmt.Fprintf(w, "# tunnel %q %s\n", t.Name, what)
		default:
			continue
		}
		for _, l := range heldLines(t, s.Plan.Tables) {
			fmt.Fprintf(w, "#   %s\n", l)
		}
	}
	for _, n := range s.Want.Notes {
		fmt.Fprintf(w, "# %s\n", n)
	}
	for _, n := range s.Want.Warnings {
		fmt.Fprintf(w, "# warning: %s\n", n)
	}
	if s.Plan.Empty() {
		fmt.Fprintln(w, nothingToDo(s))
		return
	}
	fmt.Fprint(w, s.Plan)
}

// nothingToDo is the line an empty plan prints: the kernel matches the
// configuration, or, when tunnels are down or routes wait (listed before
// it), matches what can be done until they can be brought up.
func nothingToDo(s engine.Snapshot) string {
	down := 0
	for _, t := range s.Want.Tunnels {
		if !t.Up {
			down++
		}
	}
	if down == 0 && len(s.Want.Notes) == 0 {
		return "# nothing to do: the kernel matches the configuration"
	}
	var waits []string
	if down > 0 {
		waits = append(waits, count(down, "tunnel down", "tunnels down"))
	}
	if n := len(s.Want.Notes); n > 0 {
		waits = append(waits, count(n, "note", "notes"))
	}
	return "# nothing to do now: the kernel matches the configuration but for what waits (" + strings.Join(waits, ", ") + ")"
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
