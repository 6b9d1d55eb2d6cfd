package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/statelock"
)

// Status is what `tunneld status` reports (also as JSON).
type Status struct {
	// Tunnels are the file's tunnels, as the kernel has them; [] for
	// none, not null. When the file cannot be read (ConfigErrors) they
	// are the running daemon's, of the configuration it runs
	// (FromDaemon), from its facts.
	Tunnels []TunnelReport
	// ConfigErrors are the file's errors when it cannot be read (a bad
	// edit, which a reload would refuse); FromDaemon is set when
	// Tunnels are then the daemon's.
	ConfigErrors []string `json:",omitempty"`
	FromDaemon   bool     `json:",omitempty"`
	// NotReloaded is set when the file status read is not the one the
	// running daemon loaded (edited since, and not reloaded): the rest
	// is the file's, what a reload would bring, not what the daemon does.
	NotReloaded bool `json:",omitempty"`
	// Drift is what differs between configuration and kernel, as the
	// commands that would mend it; one the running daemon holds back
	// (something else keeps undoing it) ends in " (held back)".
	Drift []string `json:",omitempty"`
	Notes []string `json:",omitempty"`
	// Warnings are what the configuration does, applied, that an admin
	// would not want (desired.Result.Warnings), after what the kernel
	// seam met reading its records (model.Inputs.Warnings: one it could
	// not read, which status leaves where it is).
	Warnings []string `json:",omitempty"`
	// Drops are the counters of tunneld's drop rules, by "chain: rule".
	Drops map[string]model.Counter `json:",omitempty"`
	// Daemon holds a running daemon's facts; DaemonError why there are none.
	Daemon      *daemon.Facts `json:",omitempty"`
	DaemonError string        `json:",omitempty"`
}

// TunnelReport is one tunnel's state.
type TunnelReport struct {
	Name   string
	Mode   model.Mode
	Up     bool
	Reason string `json:",omitempty"`
	// Wanted and Actual endpoints ("" for any or unknown).
	LocalWanted, LocalActual   string
	RemoteWanted, RemoteActual string
	// LocalDevice is the device the local address follows, with its
	// current addresses, and those not followed for duplicate address
	// detection with why ("2001:db8::5/64 is in duplicate address
	// detection"); RemoteName the DNS name of the remote, with its
	// current answers (the daemon's, or status's own lookup's), and
	// those of the answers the daemon keeps from an earlier one because
	// the last had no address of the tunnel's outer family
	// (daemon.Facts.Kept).
	LocalDevice         string   `json:",omitempty"`
	LocalDeviceAddrs    []string `json:",omitempty"`
	LocalDeviceUnusable []string `json:",omitempty"`
	RemoteName          string   `json:",omitempty"`
	RemoteAnswers       []string `json:",omitempty"`
	RemoteKept          []string `json:",omitempty"`
	// RemoteFailing is the daemon's error of the remote name's last
	// lookup while its lookups fail (daemon.Facts.Failing).
	RemoteFailing string `json:",omitempty"`
	// Foreign is set when a device tunneld does not own holds the
	// tunnel's name (Reason says which kind): MTU and Stats are then not
	// the tunnel's.
	Foreign    bool `json:",omitempty"`
	MTU        int
	Stats      model.Stats
	LastChange string `json:",omitempty"`
	// Routes say, for a tunnel that is not up, which of the routes
	// through it stand as unreachable routes until it is, and which are
	// withdrawn and why ("routes: 192.168.2.0/24 table vpn unreachable
	// until t1 is up").
	Routes []string `json:",omitempty"`
	// LastHook is the last run of the tunnel's hook (the daemon's).
	LastHook *daemon.HookRun `json:",omitempty"`
	// Held are the tunnel's objects (itself, its addresses, the routes
	// through it) whose repairs the daemon holds back, with until when.
	Held []daemon.Hold `json:",omitempty"`
	// Underlay says which devices its packets leave by cannot carry
	// them ("wan has no carrier", "wan is down"): the device its local
	// address follows or is on, the one it is bound to.
	Underlay []string `json:",omitempty"`
	// Dropping says which packets an up tunnel (ip6ip6, gre with
	// pmtudisc) drops for want of underlay MTU ("IPv6 packets over 1252
	// bytes are dropped: the underlay wan's mtu 1300 is too small (1328
	// needed)"; desired.TunnelStatus.Dropping).
	Dropping string `json:",omitempty"`
	// Looped says that an up tunnel's packets to its remote go into
	// itself (desired.TunnelStatus.Looped).
	Looped string `json:",omitempty"`
	// LocalAbsent says that no device of the box can send from an up
	// tunnel's local address (desired.TunnelStatus.LocalAbsent).
	LocalAbsent string `json:",omitempty"`
	// Unrouted says that the kernel has no route to an up tunnel's
	// remote for its packets, from its local address (routeGone).
	Unrouted string `json:",omitempty"`
	// LocalGuess says that no route decided the tunnel's local address
	// among its device's (desired.TunnelStatus.LocalGuess): a tester's
	// status said up on a modem's address for a whole renew.
	LocalGuess bool `json:",omitempty"`
}

// FilterCounters is implemented by kernels that can read rule counters.
type FilterCounters interface {
	FilterCounters() (map[string]model.Counter, error)
}

func runStatus(env *Env, args []string) int {
	fs, path := flags(env, "status")
	asJSON := fs.Bool("json", false, "print JSON")
	sock := fs.String("socket", filepath.Join(env.StateDir, daemon.SocketName), "the daemon's status `socket`")
	if !parse(env, fs, args) {
		return 2
	}
	st := Status{}
	facts, err := daemon.Query(*sock)
	if err == nil {
		st.Daemon = &facts
	} else {
		st.DaemonError = daemonError(*sock, err, namespaceDaemon(env))
	}
	if st.Daemon != nil && filepath.IsAbs(st.Daemon.ConfigFile) && !given(fs, "c") {
		// The running daemon's file, which may not be the default (a
		// tester's `tunneld run -c /tmp/t.toml`, then `status`); by
		// its absolute path (one relative to an older daemon's
		// directory is not this one's).
		*path = st.Daemon.ConfigFile
	}
	// A regular file only: the path may be what a socket in the state
	// directory says (a tester's fake daemon named a FIFO).
	c, err := config.LoadRegular(*path)
	if err != nil {
		printConfigErr(env, err)
		return statusInvalid(env, st, err, *asJSON)
	}
	st.NotReloaded = notReloaded(st.Daemon, c)
	// Without nftables where the kernel has no nf_tables: the daemon
	// runs on, its tunnels down (see live), and status is what says so
	// (a tester's printed the kernel's error alone). The lack is its
	// first warning.
	k, ok := openKernel(env, false, "")
	if !ok {
		return 1
	}
	defer closeKernel(k)
	var noFilter error
	if fr, ok := k.(filterRequirer); ok && c.Global.Firewall {
		noFilter = fr.RequireFilter()
	}
	if kp, ok := k.(kernel.Keeper); ok && st.Daemon != nil && len(st.Daemon.Unmarked) > 0 {
		// Tunnels the daemon keeps though someone changed their
		// alias: its, not someone else's, as it knows them.
		kp.Keep(st.Daemon.Unmarked)
	}
	resolved := daemonAnswers(st.Daemon, c)
	fromDaemon := resolved != nil
	if !fromDaemon {
		resolved = resolveAll(env, c)
	}
	hold := daemonHold(st.Daemon, st.NotReloaded)
	s, err := engine.LookRefused(env.Context, k, c, resolved, daemonRefused(st.Daemon, st.NotReloaded), hold...)
	if err != nil {
		hint := ""
		if denied(err) {
			// The state directory's records: a tester's non-root
			// status got the kernel's words alone.
			hint = " (the state directory " + env.StateDir + " is the daemon's user's: run status as root, or as that user)"
		}
		fmt.Fprintf(env.Stderr, "tunneld: %v%s\n", err, hint)
		return 1
	}
	heldBack := engine.HeldBack(s.Plan.Ops, hold...)
	for i, op := range s.Plan.Ops {
		cmd := op.Command(s.Plan.Tables)
		if heldBack != nil && heldBack[i] {
			// Not what the next convergence does: the daemon leaves
			// it as something else made it, until the hold ends.
			// On each line: an operation may print as more than one.
			cmd = strings.ReplaceAll(cmd, "\n", heldBackMark+"\n") + heldBackMark
		}
		st.Drift = append(st.Drift, cmd)
	}
	st.Notes, st.Warnings = s.Want.Notes, s.Want.Warnings
	if noFilter != nil {
		st.Warnings = append([]string{noFilter.Error() + ": no tunnel is set up until it is there"}, st.Warnings...)
	}
	// [] in the JSON for a configuration without tunnels, not null.
	st.Tunnels = make([]TunnelReport, 0, len(s.Want.Tunnels))
	for _, ts := range s.Want.Tunnels {
		t := c.TunnelByName(ts.Name)
		r := TunnelReport{Name: ts.Name, Mode: t.Mode, Reason: ts.Reason, LocalDevice: t.LocalDev, RemoteName: t.RemoteHost,
			LocalWanted: addrString(ts.Local), RemoteWanted: addrString(ts.Remote), Dropping: ts.Dropping, Looped: ts.Looped, LocalAbsent: ts.LocalAbsent, LocalGuess: ts.LocalGuess}
		i := slices.IndexFunc(s.Have.Links, func(l model.Link) bool { return l.Name == ts.Name })
		if i >= 0 {
			l := s.Have.Links[i]
			r.Up, r.LocalActual, r.RemoteActual, r.MTU = l.Up, addrString(l.Local), addrString(l.Remote), l.MTU
			r.Stats = s.Inputs.Devices[l.Name].Stats
		} else if _, ok := s.Inputs.Devices[ts.Name]; ok {
			// Not among the owned links, yet a device by that name
			// exists: someone else's (desired says so in the reason).
			r.Foreign = true
		}
		if r.Up && !ts.Up {
			r.Up = false
		}
		if !r.Up && r.Reason == "" {
			// Nothing in the inputs keeps it down: an operation on it
			// failed, which the daemon knows.
			r.Reason = daemonReason(st.Daemon, ts.Name)
			switch {
			case r.Reason != "":
			case i < 0:
				r.Reason = notCreated(st.Daemon != nil)
			case st.Daemon == nil:
				// An apply that failed to set it up (its table
				// refused, say) left it so.
				r.Reason = "not set up, and no daemon runs to say why: `tunneld apply` sets it up, or says why it cannot"
			}
		}
		r.followed(s.Inputs.Devices[t.LocalDev])
		r.underlay(s.Inputs.Devices, t)
		r.Unrouted = routeGone(env.Context, k, t, ts, r)
		r.Routes = heldLines(ts, s.Plan.Tables)
		for _, a := range resolved[t.RemoteHost] {
			r.RemoteAnswers = append(r.RemoteAnswers, a.String())
		}
		if fromDaemon {
			r.RemoteKept = keptOf(st.Daemon.Kept[t.RemoteHost], t.Mode.OuterIPv6())
			r.RemoteFailing = st.Daemon.Failing[t.RemoteHost]
		}
		if st.Daemon != nil {
			r.LastChange = st.Daemon.LastChange[ts.Name]
			if run, ok := st.Daemon.Hooks[ts.Name]; ok {
				r.LastHook = &run
			}
			r.Held = heldOf(st.Daemon, ts.Name)
		}
		st.Tunnels = append(st.Tunnels, r)
	}
	if fc, ok := k.(FilterCounters); ok {
		if counters, err := fc.FilterCounters(); err == nil {
			st.Drops = counters
		}
	}
	return emitStatus(env, st, *asJSON)
}

// notCreated is the reason of a tunnel not in the kernel that nothing in
// the inputs keeps down. Without a daemon to ask, an `apply` that failed
// to create it leaves no word of why: "not created yet" read as if
// nothing had tried (a tester's apply had just failed).
func notCreated(daemonRuns bool) string {
	if daemonRuns {
		return "not created yet"
	}
	return "not created, and no daemon runs to say why: `tunneld apply` creates it, or says why it cannot"
}

// statusInvalid is status for a file that cannot be read (err): a bad
// edit, which the daemon refuses to reload. While it lasts the admin
// still needs to see whether the tunnels are up: they are shown as the
// daemon has them, of the configuration it runs, labelled so, with its
// facts. The exit code stays 1: the file is invalid, as check says, and
// a script must not take this for a status of the file.
func statusInvalid(env *Env, st Status, err error, asJSON bool) int {
	st.ConfigErrors = configErrs(err)
	st.Tunnels, st.FromDaemon = daemonTunnels(st.Daemon), st.Daemon != nil
	if asJSON {
		emitStatus(env, st, true)
		return 1
	}
	w := &printable{w: env.Stdout}
	printDaemonTunnels(w, st)
	printDaemon(w, st)
	w.Flush()
	return 1
}

// configErrs are err's lines, as printConfigErr prints them.
func configErrs(err error) []string {
	var es config.Errors
	if !errors.As(err, &es) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// daemonTunnels are the tunnels of the configuration the daemon f runs,
// as its last convergence left them, with what it knows of each; []
// without a daemon.
func daemonTunnels(f *daemon.Facts) []TunnelReport {
	out := []TunnelReport{}
	if f == nil {
		return out
	}
	for _, ts := range f.Tunnels {
		r := TunnelReport{Name: ts.Name, Up: ts.Up, Reason: ts.Reason, LocalWanted: addrString(ts.Local), RemoteWanted: addrString(ts.Remote),
			LastChange: f.LastChange[ts.Name], Held: heldOf(f, ts.Name), Dropping: ts.Dropping, Looped: ts.Looped, LocalAbsent: ts.LocalAbsent, LocalGuess: ts.LocalGuess}
		if run, ok := f.Hooks[ts.Name]; ok {
			r.LastHook = &run
		}
		out = append(out, r)
	}
	return out
}

// followed fills in the addresses of d, the device the tunnel's local
// address follows: those of the tunnel's outer family (r.Mode) it can
// follow, temporary (IPv4: secondary) and deprecated ones marked, and
// those it cannot with why. A tester's sit tunnel listed the
// WAN's IPv6 addresses, and their failed detection, beside its IPv4 one.
func (r *TunnelReport) followed(d model.Device) {
	six := r.Mode.OuterIPv6()
	// The device's addresses come primary first, then secondary (IPv6:
	// temporary), then deprecated ones (model.Device.Secondary,
	// Deprecated): those are marked so, which says why the local address
	// is not one the kernel would send from (a tester's with
	// use_tempaddr = 2, whose kernel took a temporary address).
	deprecated := len(d.Addrs) - d.Deprecated
	secondary := deprecated - d.Secondary
	for i, p := range d.Addrs {
		if p.Addr().Is6() != six {
			continue
		}
		a := p.String()
		switch {
		case i >= deprecated:
			a += " deprecated"
		case i >= secondary && six:
			a += " temporary"
		case i >= secondary:
			a += " secondary"
		}
		r.LocalDeviceAddrs = append(r.LocalDeviceAddrs, a)
	}
	for _, u := range d.Unusable {
		if u.Prefix.Addr().Is6() == six {
			r.LocalDeviceUnusable = append(r.LocalDeviceUnusable, u.Prefix.String()+" "+u.Why())
		}
	}
}

// underlay notes which of the devices the tunnel t's packets leave by
// cannot carry them: the device its local address follows, the one it is
// bound to (dev), the one that has its local address. A tester saw a
// tunnel "up" whose WAN had lost its carrier, and nothing passed.
func (r *TunnelReport) underlay(devs map[string]model.Device, t *config.Tunnel) {
	names := []string{t.LocalDev, t.Dev}
	if t.Local.IsValid() {
		var on []string
		for name, d := range devs {
			// Not the tunnel itself, which may carry its local
			// address too (a seed's): it is no underlay of its own
			// (a tester's status said "underlay tunl1 is down").
			if name != t.Name && slices.ContainsFunc(d.Addrs, func(p netip.Prefix) bool { return p.Addr() == t.Local }) {
				on = append(on, name)
			}
		}
		slices.Sort(on)
		names = append(names, on...)
	}
	var seen []string
	for _, name := range names {
		d, ok := devs[name]
		if name == "" || !ok || slices.Contains(seen, name) {
			continue // none, or gone: the tunnel's reason says so
		}
		seen = append(seen, name)
		switch {
		case !d.Up:
			r.Underlay = append(r.Underlay, name+" is down")
		case !d.Running:
			r.Underlay = append(r.Underlay, name+" has no carrier")
		}
	}
}

// emitStatus prints st as text or JSON and returns the exit code.
func emitStatus(env *Env, st Status, asJSON bool) int {
	if asJSON {
		b, err := minijson.MarshalIndent(st, "  ")
		if err != nil {
			fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
			return 1
		}
		env.Stdout.Write(append(b, '\n'))
		return 0
	}
	w := &printable{w: env.Stdout}
	printStatus(w, st)
	w.Flush()
	return 0
}

func addrString(a interface {
	IsValid() bool
	String() string
}) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// notReloaded reports whether c, the file status read, is not the one
// the running daemon (f) loaded: edited since, and not reloaded. A daemon
// whose facts give no sum (an older one) cannot tell.
func notReloaded(f *daemon.Facts, c *config.Config) bool {
	return f != nil && f.ConfigSum != "" && f.ConfigSum != c.Sum
}

// heldOf are the daemon's holds of the tunnel name's objects.
func heldOf(f *daemon.Facts, name string) []daemon.Hold {
	var out []daemon.Hold
	for _, h := range f.Holds {
		if h.Tunnel == name {
			out = append(out, h)
		}
	}
	return out
}

// heldBackMark ends a drift line of an operation the daemon holds back.
const heldBackMark = " (held back)"

// daemonHold is the running daemon f's holds as the engine asks them
// (nil: none), for status to see what the daemon's converge sees: a
// tunnel held missing or down has its routes as unreachable routes,
// and the operations held back are not what its next convergence does.
// The daemon drops the holds that are over when it is asked (its clock,
// not status's, says when). None when the file was edited and not
// reloaded (notReloaded): status then shows what a reload would bring,
// and a reload ends every hold. A hold is of what daemon.HoldKey names:
// a route's hold is not its unreachable stand-in's, which the daemon
// puts in place when the tunnel goes down, and the reverse.
func daemonHold(f *daemon.Facts, notReloaded bool) []engine.Hold {
	if f == nil || notReloaded {
		return nil
	}
	held := map[string]bool{}
	for _, h := range daemonHolds(f) {
		held[h.Object] = true
	}
	if len(held) == 0 {
		return nil
	}
	return []engine.Hold{func(op plan.Op) bool { return held[daemon.HoldKey(op)] }}
}

// daemonRefused are the tunnels the kernel refused in the running
// daemon's last converge (name → reason), nil without a daemon or when
// the file is not the daemon's (as daemonHold).
func daemonRefused(f *daemon.Facts, notReloaded bool) map[string]string {
	if f == nil || notReloaded {
		return nil
	}
	var out map[string]string
	for _, t := range f.Tunnels {
		if t.Refused {
			if out == nil {
				out = map[string]string{}
			}
			out[t.Name] = t.Reason
		}
	}
	return out
}

// daemonHolds are all of f's holds; those of a daemon whose facts have
// no Holds (an older one) by name alone, with no end.
func daemonHolds(f *daemon.Facts) []daemon.Hold {
	if len(f.Holds) > 0 {
		return f.Holds
	}
	var out []daemon.Hold
	for _, obj := range f.Held {
		out = append(out, daemon.Hold{Object: obj})
	}
	return out
}

// hookOK is the status of a hook run that worked.
const hookOK = daemon.HookWorked

// namespaceDaemon names the `tunneld run` that holds the network
// namespace's lock (statelock.NamespaceHolder), nil when none does or
// the namespace's lock is not used (Env.NamespaceLock).
func namespaceDaemon(env *Env) *statelock.HeldError {
	if !env.NamespaceLock {
		return nil
	}
	if h := statelock.NamespaceHolder(); h != nil && h.Command == "run" {
		return h
	}
	return nil
}

// daemonError says why the daemon's socket sock gave no answer (err),
// where h is the daemon that holds the network namespace, if one does:
// a wipe of the state directory took the socket, which the daemon puts
// back at its next convergence (a tester's status said no daemon ran).
// A socket this user may not reach is not gone (a tester's non-root
// status was told so).
func daemonError(sock string, err error, h *statelock.HeldError) string {
	if h == nil || denied(err) {
		return queryErr(sock, err)
	}
	return fmt.Sprintf("a daemon runs in this network namespace (%s, state directory %s), but its status socket %s is gone (the state directory wiped?): it listens again at its next convergence (after an event, or its resync at the latest); until then status shows what the file wants, not the daemon's facts",
		h.Holder(), h.Dir, sock)
}

// denied reports whether err is a refusal for want of permission.
func denied(err error) bool { return errors.Is(err, fs.ErrPermission) }

// queryErr says in an admin's words why the daemon's socket gave no
// answer.
func queryErr(sock string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no daemon running (no socket " + sock + ")"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no daemon running (nothing listens on " + sock + ")"
	case denied(err):
		// Not "gone": a tester's non-root status was told so while
		// the socket was there, the daemon's user's alone.
		return "cannot ask the daemon: permission denied on " + sock + " (it and its state directory are the daemon's user's: run status as root, or as that user)"
	}
	return "cannot ask the daemon at " + sock + ": " + err.Error()
}

// daemonReason is why the running daemon has the tunnel name down after
// its last convergence (a failed creation: "creating it failed: kernel
// has no ipip support (…)"), or "".
func daemonReason(f *daemon.Facts, name string) string {
	if f == nil {
		return ""
	}
	for _, t := range f.Tunnels {
		if t.Name == name && !t.Up {
			return t.Reason
		}
	}
	return ""
}

// daemonAnswers are the running daemon's DNS answers for the names c
// uses, nil when it has none for one of them: status then shows what the
// daemon works with, not the answer of a lookup of its own.
func daemonAnswers(f *daemon.Facts, c *config.Config) map[string][]netip.Addr {
	if f == nil {
		return nil
	}
	out := map[string][]netip.Addr{}
	for _, name := range engine.Names(c) {
		addrs, ok := f.Resolved[name]
		if !ok {
			return nil
		}
		for _, a := range addrs {
			if ip, err := netip.ParseAddr(a); err == nil {
				out[name] = append(out[name], ip)
			}
		}
	}
	return out
}

// given reports whether the flag name was set on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
