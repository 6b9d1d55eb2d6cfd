// Package cli implements tunneld's subcommands. main only wires it to the
// real kernel; tests run it against the in-memory one.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/statelock"
	"github.com/tunneld/tunneld/pkg/watch"
)

// Env is what the subcommands need from the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	// Kernel opens the live kernel seam (nil: none on this platform).
	// needFilter is false when the command can do without nftables (the
	// configuration has firewall = false; the command is down; or it is
	// apply or run, where the filter's failure keeps the tunnels down):
	// a kernel without nf_tables is then no error.
	Kernel func(needFilter bool) (kernel.Kernel, error)
	// Version is printed by `tunneld version`.
	Version string
	// Context is cancelled on SIGINT/SIGTERM.
	Context context.Context
	// Events opens the netlink watcher for a kernel (nil: none; the
	// daemon then relies on its periodic resync).
	Events func(ctx context.Context, k kernel.Kernel) (<-chan watch.Event, error)
	// Notify sends a systemd notification (nil: none).
	Notify func(state string)
	// Watchdog is the systemd watchdog interval (0: none).
	Watchdog time.Duration
	// StateDir holds the status socket (default model.StateDir).
	StateDir string
	// Lookup resolves a tunnel peer's DNS name for the commands (nil:
	// the system's resolver, /etc/hosts and /etc/resolv.conf).
	Lookup func(ctx context.Context, name string) ([]netip.Addr, error)
	// Journal: Stderr is systemd's journal. The daemon's log lines then
	// start with their syslog priority, and every other line on Stderr
	// is marked as an error, so that `journalctl -p` sorts them.
	Journal bool
	// NamespaceLock: run, apply and down also take the network
	// namespace's lock (statelock.AcquireNamespace), which keeps a
	// tunneld with another state directory out of the namespace. The
	// binary sets it; tests whose in-memory kernels share the test
	// process's namespace do not.
	NamespaceLock bool

	// logTo is where the daemon logs: Stderr as given, before Main marks
	// its lines as errors for the journal.
	logTo io.Writer
}

type command struct {
	name, synopsis, what string
	run                  func(env *Env, args []string) int
}

func commands() []command {
	return []command{
		{"check", "check [-c FILE]", "validate the configuration", runCheck},
		{"plan", "plan [-c FILE] [--from-empty]", "print what apply would do", runPlan},
		{"apply", "apply [-c FILE]", "converge once; exit 0 when the kernel matches", runApply},
		{"down", "down [-c FILE]", "remove everything tunneld owns, restore sysctls", runDown},
		{"run", "run [-c FILE] [-log-level L] [-log-split]", "converge and keep converged (the daemon)", runRun},
		{"status", "status [-c FILE] [--json] [-socket PATH]", "tunnels, counters, drift, daemon facts", runStatus},
		{"version", "version", "print the version", runVersion},
	}
}

// Main runs one subcommand and returns the process exit code.
func Main(env *Env, args []string) int {
	if env.Context == nil {
		env.Context = context.Background()
	}
	if env.StateDir == "" {
		env.StateDir = model.StateDir
	}
	own := *env
	env = &own
	env.logTo = env.Stderr
	if env.Journal {
		env.Stderr = &errLines{w: env.Stderr}
	}
	if len(args) == 0 {
		usage(env.Stderr)
		return 2
	}
	if isHelp(args[0]) || args[0] == "help" {
		usage(env.Stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if helpAsked(args[1:]) {
			// Asked for: the command's flags on stdout, exit 0 (the
			// command stops at its flags, as for any bad flag).
			e := *env
			e.Stderr = env.Stdout
			c.run(&e, []string{"-h"})
			return 0
		}
		return c.run(env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "tunneld: unknown command %q\n", args[0])
	usage(env.Stderr)
	return 2
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// helpAsked reports whether a command's arguments ask for its help (among
// its flags, before any "--").
func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tunneld COMMAND [flags]")
	const width = 29 // the synopsis column
	for _, c := range commands() {
		if len(c.synopsis) > width {
			fmt.Fprintf(w, "  tunneld %s\n  %*s %s\n", c.synopsis, len("tunneld ")+width, "", c.what)
			continue
		}
		fmt.Fprintf(w, "  tunneld %-*s %s\n", width, c.synopsis, c.what)
	}
	fmt.Fprintf(w, "the configuration defaults to %s\n", config.DefaultPath)
}

// flags returns a flag set with the common -c option.
func flags(env *Env, name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tunneld "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	path := fs.String("c", config.DefaultPath, "configuration `file`")
	return fs, path
}

// parse parses a subcommand's flags. No subcommand takes arguments: one
// given (`tunneld check my.toml`) is refused rather than ignored, since
// the flags after it would be ignored too and the default file read.
func parse(env *Env, fs *flag.FlagSet, args []string) bool {
	if fs.Parse(args) != nil {
		return false
	}
	if fs.NArg() > 0 {
		hint := ""
		if fs.Lookup("c") != nil {
			hint = " (the configuration file is given with -c FILE)"
		}
		fmt.Fprintf(env.Stderr, "%s: unexpected argument %q%s\n", fs.Name(), fs.Arg(0), hint)
		return false
	}
	return true
}

// load reads the configuration, printing every error.
func load(env *Env, path string) (*config.Config, bool) {
	c, err := config.Load(path)
	if err != nil {
		printConfigErr(env, err)
		return nil, false
	}
	return c, true
}

// printConfigErr prints a configuration's errors one per line.
func printConfigErr(env *Env, err error) {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(env.Stderr, e)
		}
		return
	}
	fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
}

// live parses the flags, loads the configuration and opens the kernel,
// for the commands that change the live kernel. It is opened without
// nftables where the kernel has no nf_tables: a configuration with the
// filter on then fails closed, the table's failure keeping its tunnels
// down and their routes unreachable (see linux.Kernel.RequireFilter),
// where refusing to start set nothing up and let their traffic out by
// the WAN (a tester's). code is non-zero when the command must stop;
// the caller closes the kernel.
func live(env *Env, fs *flag.FlagSet, path *string, args []string) (c *config.Config, k kernel.Kernel, code int) {
	if !parse(env, fs, args) {
		return nil, nil, 2
	}
	c, ok := load(env, *path)
	if !ok {
		return nil, nil, 1
	}
	if k, ok = openKernel(env, false, ""); !ok {
		return nil, nil, 1
	}
	return c, k, 0
}

func runCheck(env *Env, args []string) int {
	fs, path := flags(env, "check")
	if !parse(env, fs, args) {
		return 2
	}
	c, ok := load(env, *path)
	if !ok {
		return 1
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%s, %s, %s)\n", *path, count(len(c.Tunnels), "tunnel", "tunnels"),
		count(len(c.Routes), "route", "routes"), count(len(c.Rules), "rule", "rules"))
	for _, w := range c.Warnings {
		fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", w)
	}
	// What the filter would let through that the file likely did not
	// mean to (plan, apply and status say it too).
	for _, w := range desired.SourceWarnings(c) {
		fmt.Fprintf(env.Stderr, "tunneld: warning: %s\n", w)
	}
	for _, t := range c.Tunnels {
		if t.Hook == "" {
			continue
		}
		if why := notRunnable(t.Hook); why != "" {
			fmt.Fprintf(env.Stderr, "tunneld: warning: tunnel %q: hook %s: %s (the daemon could not run it)\n", t.Name, t.Hook, why)
		} else if why, fix := daemon.HookExecProblem(t.Hook); why != "" {
			// The kernel, not the file system, refuses these: a
			// script without #!, which a shell would run, or one
			// naming an interpreter the box lacks (bash on OpenWrt).
			fmt.Fprintf(env.Stderr, "tunneld: warning: tunnel %q: hook %s: %s, so the daemon could not run it (%s)\n", t.Name, t.Hook, why, fix)
		}
	}
	return 0
}

// notRunnable says why the file at path, a tunnel's hook, cannot be run
// by this process's user ("" when it can, as far as the file system
// says). The file is read where the check runs, which need not be where
// the daemon does: it is a warning. Under the systemd unit the check
// (ExecStartPre, ExecReload) runs as the daemon's dynamic user, so a
// root-only script is caught there.
func notRunnable(path string) string {
	fi, err := os.Stat(path)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return pe.Err.Error()
	case err != nil:
		return err.Error()
	case fi.IsDir():
		return "is a directory"
	case fi.Mode().Perm()&0o111 == 0:
		return "not executable"
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Sprintf("not executable by uid %d: %v", os.Getuid(), err)
	}
	return ""
}

func runVersion(env *Env, args []string) int {
	fs := flag.NewFlagSet("tunneld version", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if !parse(env, fs, args) {
		return 2
	}
	fmt.Fprintln(env.Stdout, "tunneld", env.Version)
	return 0
}

// openKernel opens the live kernel (see Env.Kernel for needFilter);
// alternative, when not empty, is what the admin may do instead without
// privileges.
func openKernel(env *Env, needFilter bool, alternative string) (kernel.Kernel, bool) {
	if env.Kernel == nil {
		fmt.Fprintln(env.Stderr, "tunneld: no kernel backend on this platform")
		return nil, false
	}
	k, err := env.Kernel(needFilter)
	if err != nil {
		fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
		if errors.Is(err, os.ErrPermission) || os.Geteuid() != 0 {
			hint := "tunneld: (reading the kernel needs root or CAP_NET_ADMIN"
			if alternative != "" {
				hint += "; " + alternative
			}
			fmt.Fprintln(env.Stderr, hint+")")
		}
		return nil, false
	}
	return k, true
}

// heldLocks are the locks a command holds: the state directory's, and
// the network namespace's where Env.NamespaceLock is set.
type heldLocks struct {
	*statelock.Lock
	ns *statelock.NamespaceLock
}

// Release lets go of both.
func (h *heldLocks) Release() error {
	h.ns.Release()
	return h.Lock.Release()
}

// lockState takes the state directory's lock for command ("run",
// "apply", "down"), and the network namespace's where Env.NamespaceLock
// is set: one tunneld at a time changes the kernel. When one is held,
// one line says by whom and what to do instead. The namespace's lock held
// by a process that cannot be a tunneld is gone on without, and warn
// says so. Taken, it tells k (a seam that keeps records) so. The caller
// releases the locks.
func lockState(env *Env, command string, k kernel.Kernel, warn func(string)) (*heldLocks, bool) {
	l, err := statelock.Acquire(env.StateDir, command)
	var n *statelock.NamespaceLock
	if err == nil && env.NamespaceLock {
		var w string
		if n, w, err = statelock.AcquireNamespace(env.StateDir, command); err != nil {
			l.Release()
		} else if w != "" {
			warn(w)
		}
	}
	if err == nil {
		// A kernel seam that keeps records in the state directory
		// (linux.Kernel.StateLocked) may now move an unreadable one
		// aside; status and plan, which take no lock, never do.
		if s, ok := k.(interface{ StateLocked() }); ok {
			s.StateLocked()
		}
		return &heldLocks{Lock: l, ns: n}, true
	}
	var he *statelock.HeldError
	if !errors.As(err, &he) {
		fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
		return nil, false
	}
	if he.Namespace && he.Pid == 0 {
		// Not a tunneld's answer: who holds the name, and how to find
		// it, rather than "another tunneld" (a tester's uid 65534 held
		// it).
		fmt.Fprintf(env.Stderr, "tunneld: this network namespace's %s\n", he.Foreign())
		return nil, false
	}
	where := "tunneld: state directory " + he.Dir + ": "
	if he.Namespace {
		// Another state directory's tunneld (or this one's, the
		// directory wiped since it started).
		where = "tunneld: this network namespace is kept by " + he.Holder()
		if he.Dir != "" {
			where += " with state directory " + he.Dir
		}
		where += " (one tunneld per network namespace: TUNNELD_STATE_DIR is for instances in separate ones): "
	}
	switch {
	case he.Command != "run":
		fmt.Fprintf(env.Stderr, "%s%s is changing the kernel: try again when it is done\n", where, he.Holder())
	case command == "run":
		fmt.Fprintf(env.Stderr, "%sa daemon is already running (pid %d): not starting another\n", where, he.Pid)
	case command == "down":
		// The daemon would put everything back at its next converge.
		fmt.Fprintf(env.Stderr, "%sa daemon is running (pid %d) and would put back what down removes: "+
			"stop it instead (systemctl stop tunneld or service tunneld stop)\n", where, he.Pid)
	default:
		fmt.Fprintf(env.Stderr, "%sa daemon is running (pid %d) and keeps the kernel as its configuration says: "+
			"edit the file and reload it (systemctl reload tunneld, service tunneld reload or kill -HUP %d)\n", where, he.Pid, he.Pid)
	}
	return nil, false
}
