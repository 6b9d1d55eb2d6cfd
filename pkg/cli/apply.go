package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/statelock"
)

func runApply(env *Env, args []string) int {
	fs, path := flags(env, "apply")
	c, k, code := live(env, fs, path, args)
	if code != 0 {
		return code
	}
	defer closeKernel(k)
	lock, ok := lockState(env, "apply", k, warnLine(env))
	if !ok {
		return 1
	}
	defer lock.Release()
	resolved := resolveAll(env, c)
	if !keepLock(env, lock.Lock, "apply") {
		return 1
	}
	rep, err := engine.Converge(env.Context, k, c, resolved)
	printOps(env, rep)
	// A tunnel that only the admin can bring up is not done: apply
	// fails (one that waits for an address, a device or a name is done).
	// Nor is a rule left out because rules tunneld does not own hold the
	// band's free priorities (its warning says so): only the admin can
	// make room.
	blocked := len(rep.Last.Want.RulesLeftOut) > 0
	for _, t := range rep.Last.Want.Tunnels {
		if !t.Up {
			reason := t.Reason
			if t.Refused {
				// The refusal is the error, printed last in full.
				what, _, _ := strings.Cut(reason, ": ")
				reason = what + " (see the error below)"
			}
			fmt.Fprintf(env.Stderr, "tunneld: tunnel %q is down: %s\n", t.Name, reason)
			for _, l := range heldLines(t, rep.Last.Plan.Tables) {
				fmt.Fprintf(env.Stderr, "tunneld:   %s\n", l)
			}
			blocked = blocked || t.Blocked
		}
	}
	for _, n := range rep.Last.Want.Notes {
		fmt.Fprintf(env.Stderr, "tunneld: %s\n", n)
	}
	for _, n := range append(slices.Clip(rep.Ended), rep.Last.Want.Warnings...) {
		fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", n)
	}
	if err != nil {
		printErr(env, err, "")
		return 1
	}
	if blocked {
		return 1
	}
	if len(rep.Applied) == 0 {
		fmt.Fprintln(env.Stdout, nothingToDo(rep.Last))
	}
	return 0
}

func runDown(env *Env, args []string) int {
	fs, path := flags(env, "down")
	if !parse(env, fs, args) {
		return 2
	}
	// What down removes is what tunneld's marks show it owns; the
	// configuration adds only its rule band (recorded too, see
	// linux.bandsFile) and its tunnels' names. A missing or broken file
	// must not keep an admin from taking everything down.
	c, err := config.Load(*path)
	if err != nil {
		if !config.IsEmpty(err) {
			// An empty file is no error here: down does what it
			// would refuse to.
			printConfigErr(env, err)
		}
		fmt.Fprintln(env.Stderr, "tunneld: down goes on without the configuration: it removes the links with tunneld's alias, the routes and rules of protocol 116 in tunneld's recorded priority bands, the nftables table inet tunneld and puts back the recorded sysctls")
		if c, err = config.Parse(*path, []byte("[global]\n")); err != nil {
			printConfigErr(env, err)
			return 1
		}
	}
	// Without nf_tables there is no table to remove, whatever the
	// configuration says: down must not fail for want of one.
	k, ok := openKernel(env, false, "")
	if !ok {
		return 1
	}
	defer closeKernel(k)
	lock, ok := lockState(env, "down", k, warnLine(env))
	if !ok {
		return 1
	}
	defer lock.Release()
	rep, err := engine.Down(env.Context, k, c)
	removeStaleSocket(env)
	printOps(env, rep)
	for _, n := range rep.Last.Want.Warnings {
		fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", n)
	}
	if w := rep.LeftWarning(); w != "" {
		fmt.Fprintf(env.Stderr, "tunneld: warning: sysctls %s\n", w)
	}
	if kernel.OnlyRecords(err) {
		// The kernel's state is restored: only the record lags.
		printErr(env, err, "warning: ")
		return 0
	}
	if err != nil {
		printErr(env, err, "")
		return 1
	}
	return 0
}

// keepLock checks, before command changes the kernel, that it still
// holds the state directory's lock: its look-ups of remote names can take
// seconds, and a wipe of the directory meanwhile (by hand, or a clean-up
// of /run) lets a `tunneld run` start there, which would then find
// command changing the kernel beside it (a tester's apply went on). A
// lock file gone with no one else's in its place is taken again, with a
// warning; one another tunneld holds ends command before any change.
func keepLock(env *Env, lock *statelock.Lock, command string) bool {
	kept, err := lock.Keep(command)
	var he *statelock.HeldError
	switch {
	case errors.As(err, &he):
		fmt.Fprintf(env.Stderr, "tunneld: state directory %s: %s took it while %s looked up remote names (the directory wiped?): it keeps the kernel now; %s changed nothing\n", he.Dir, he.Holder(), command, command)
		return false
	case err != nil:
		fmt.Fprintf(env.Stderr, "tunneld: %v: %s changed nothing\n", err, command)
		return false
	case kept:
		fmt.Fprintf(env.Stderr, "tunneld: warning: the state directory's lock was gone (the directory wiped?): taken again\n")
	}
	return true
}

// printOps prints the operations performed, as commands, in one write (a
// thousand tunnels make five thousand lines).
func printOps(env *Env, rep engine.Report) {
	w := bufio.NewWriter(env.Stdout)
	for _, op := range rep.Applied {
		fmt.Fprintln(w, op.Command(rep.Last.Plan.Tables))
	}
	w.Flush()
	for _, op := range rep.Applied {
		if op.Kind == plan.LinkMark {
			fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", op.TakeOver())
		}
	}
}

// warnLine prints a warning as apply and down do.
func warnLine(env *Env) func(string) {
	return func(w string) { fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", w) }
}

// printErr prints an apply error one failed operation per line, each
// after "tunneld: " and level ("warning: ", or "" for an error).
func printErr(env *Env, err error, level string) {
	var ae *kernel.ApplyError
	if errors.As(err, &ae) {
		for _, f := range ae.Failed {
			fmt.Fprintf(env.Stderr, "tunneld: %s%v\n", level, f)
		}
		return
	}
	fmt.Fprintf(env.Stderr, "tunneld: %s%v\n", level, err)
}

func closeKernel(k kernel.Kernel) {
	if c, ok := k.(interface{ Close() error }); ok {
		c.Close()
	}
}

// removeStaleSocket removes the status socket a daemon killed without
// its teardown (kill -9, a power cut) left: down holds the state
// directory's lock, so no daemon is listening on it.
func removeStaleSocket(env *Env) {
	p := filepath.Join(env.StateDir, daemon.SocketName)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
		_ = os.Remove(p)
	}
}
