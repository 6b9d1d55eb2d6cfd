package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
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
	// commands that would mend it.
	Drift []string `json:",omitempty"`
	Notes []string `json:",omitempty"`
	// Warnings are what the configuration does, applied, that an admin
	// would not want (desired.Result.Warnings).
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
	// Dropping says which packets an up tunnel drops for want of
	// underlay MTU ("IPv6 packets over 1252 bytes are dropped: the
	// underlay wan's mtu 1300 is too small (1328 needed)";
	// desired.TunnelStatus.Dropping).
	Dropping string `json:",omitempty"`
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
		st.DaemonError = queryErr(*sock, err)
	}
	c, err := config.Load(*path)
	if err != nil {
		printConfigErr(env, err)
		return statusInvalid(env, st, err, *asJSON)
	}
	st.NotReloaded = notReloaded(st.Daemon, c)
	k, ok := openKernel(env, c.Global.Firewall, "")
	if !ok {
		return 1
	}
	defer closeKernel(k)
	resolved := daemonAnswers(st.Daemon, c)
	fromDaemon := resolved != nil
	if !fromDaemon {
		resolved = resolveAll(env, c)
	}
	s, err := engine.Look(env.Context, k, c, resolved)
	if err != nil {
		fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
		return 1
	}
	for _, op := range s.Plan.Ops {
		st.Drift = append(st.Drift, op.Command(s.Plan.Tables))
	}
	st.Notes, st.Warnings = s.Want.Notes, s.Want.Warnings
	// [] in the JSON for a configuration without tunnels, not null.
	st.Tunnels = make([]TunnelReport, 0, len(s.Want.Tunnels))
	for _, ts := range s.Want.Tunnels {
		t := c.TunnelByName(ts.Name)
		r := TunnelReport{Name: ts.Name, Mode: t.Mode, Reason: ts.Reason, LocalDevice: t.LocalDev, RemoteName: t.RemoteHost,
			LocalWanted: addrString(ts.Local), RemoteWanted: addrString(ts.Remote), Dropping: ts.Dropping}
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
			if r.Reason == "" && i < 0 {
				r.Reason = "not created yet"
			}
		}
		r.followed(s.Inputs.Devices[t.LocalDev])
		r.underlay(s.Inputs.Devices, t)
		r.Routes = heldLines(ts, s.Plan.Tables)
		for _, a := range resolved[t.RemoteHost] {
			r.RemoteAnswers = append(r.RemoteAnswers, a.String())
		}
		if fromDaemon {
			r.RemoteKept = keptOf(st.Daemon.Kept[t.RemoteHost], t.Mode.OuterIPv6())
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
	printDaemonTunnels(env.Stdout, st)
	printDaemon(env.Stdout, st)
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
			LastChange: f.LastChange[ts.Name], Held: heldOf(f, ts.Name), Dropping: ts.Dropping}
		if run, ok := f.Hooks[ts.Name]; ok {
			r.LastHook = &run
		}
		out = append(out, r)
	}
	return out
}

// printDaemonTunnels prints the daemon's tunnels when the file cannot be
// read: said first to be the running configuration's, not the file's.
func printDaemonTunnels(w io.Writer, st Status) {
	if !st.FromDaemon {
		fmt.Fprintln(w, "configuration: the file cannot be read (its errors are above); no daemon's tunnels to show instead")
		return
	}
	f := st.Daemon
	if f.Converges == 0 {
		fmt.Fprintln(w, "configuration: the file cannot be read (its errors are above); the daemon has not converged yet")
		return
	}
	if len(st.Tunnels) == 0 {
		fmt.Fprintf(w, "configuration: the file cannot be read (its errors are above); the configuration the daemon runs (%s) has no tunnels\n", or1(f.ConfigFile))
		return
	}
	fmt.Fprintf(w, "configuration: the file cannot be read (its errors are above); the tunnels of the configuration the daemon runs (%s) at its last convergence, %s:\n",
		or1(f.ConfigFile), f.LastConverge.Format("2006-01-02 15:04:05"))
	for _, t := range st.Tunnels {
		state := "up"
		if !t.Up {
			state = "down"
			if t.Reason != "" {
				state += ": " + t.Reason
			}
		}
		fmt.Fprintf(w, "tunnel %s: %s%s\n", t.Name, state, t.upBut())
		fmt.Fprintf(w, "  local  %s\n  remote %s\n", orAny(t.LocalWanted), orAny(t.RemoteWanted))
		if t.LastChange != "" {
			fmt.Fprintf(w, "  last change %s\n", t.LastChange)
		}
		printHook(w, t.LastHook)
		printHeld(w, t.Held)
	}
}

// followed fills in the addresses of d, the device the tunnel's local
// address follows: those it can follow, and those it cannot with why.
func (r *TunnelReport) followed(d model.Device) {
	for _, p := range d.Addrs {
		r.LocalDeviceAddrs = append(r.LocalDeviceAddrs, p.String())
	}
	for _, u := range d.Unusable {
		r.LocalDeviceUnusable = append(r.LocalDeviceUnusable, u.Prefix.String()+" "+u.Why())
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
			if slices.ContainsFunc(d.Addrs, func(p netip.Prefix) bool { return p.Addr() == t.Local }) {
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
	printStatus(env.Stdout, st)
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

func printStatus(w io.Writer, st Status) {
	printNotReloaded(w, st)
	for _, t := range st.Tunnels {
		state := "up"
		if !t.Up {
			state = "down"
			if t.Reason != "" {
				state += ": " + t.Reason
			}
		}
		fmt.Fprintf(w, "tunnel %s (%s): %s%s\n", t.Name, t.Mode, state, t.upBut())
		// The kernel's endpoints are compared where the kernel has
		// the tunnel; else the line after says there is none.
		inKernel := t.MTU != 0 && !t.Foreign
		var follows string
		if t.LocalDevice != "" {
			addrs := strings.Join(or(t.LocalDeviceAddrs, "no address"), ", ")
			if len(t.LocalDeviceUnusable) > 0 {
				addrs = strings.Join(or(t.LocalDeviceAddrs, "no usable address"), ", ") + "; " + strings.Join(t.LocalDeviceUnusable, ", ")
			}
			follows = fmt.Sprintf("follows %s: %s", t.LocalDevice, addrs)
		}
		local := endpoint(t.LocalWanted, t.LocalActual, inKernel, follows)
		if t.LocalDevice != "" && t.LocalWanted == "" && t.LocalActual == "" {
			// The device gives none: "any" would be the
			// configuration value, which this is not.
			local = "none (" + follows + ")"
		}
		remote := endpoint(t.RemoteWanted, t.RemoteActual, inKernel, t.remoteFrom())
		if t.RemoteName != "" && t.RemoteWanted == "" {
			remote = t.unresolved()
		}
		fmt.Fprintf(w, "  local  %s\n  remote %s\n", local, remote)
		printUnderlay(w, t)
		s := t.Stats
		if t.Foreign { // its counters are another device's
			fmt.Fprintf(w, "  the device %s is not tunneld's\n", t.Name)
		} else if t.MTU == 0 { // no such device: nothing to count
			fmt.Fprintf(w, "  no device %s in the kernel\n", t.Name)
		} else {
			fmt.Fprintf(w, "  mtu %d  rx %d packets %d bytes %d errors %d dropped  tx %d packets %d bytes %d errors %d dropped\n",
				t.MTU, s.RxPackets, s.RxBytes, s.RxErrors, s.RxDropped, s.TxPackets, s.TxBytes, s.TxErrors, s.TxDropped)
		}
		for _, l := range t.Routes {
			fmt.Fprintf(w, "  %s\n", l)
		}
		if t.LastChange != "" {
			fmt.Fprintf(w, "  last change %s\n", t.LastChange)
		}
		printHook(w, t.LastHook)
		printHeld(w, t.Held)
	}
	keys := make([]string, 0, len(st.Drops))
	for k := range st.Drops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "dropped %d packets (%d bytes): %s\n", st.Drops[k].Packets, st.Drops[k].Bytes, k)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, n := range st.Warnings {
		fmt.Fprintf(w, "warning: %s\n", n)
	}
	if len(st.Drift) == 0 {
		fmt.Fprintln(w, "drift: none")
	} else {
		fmt.Fprintf(w, "drift (%s):\n", driftWhat(st))
		for _, d := range st.Drift {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(d, "\n", "\n  "))
		}
	}
	printDaemon(w, st)
}

// notReloaded reports whether c, the file status read, is not the one
// the running daemon (f) loaded: edited since, and not reloaded. A daemon
// whose facts give no sum (an older one) cannot tell.
func notReloaded(f *daemon.Facts, c *config.Config) bool {
	return f != nil && f.ConfigSum != "" && f.ConfigSum != c.Sum
}

// printNotReloaded says first, when the file is not the one the daemon
// runs, that what follows is the file's and that a reload applies it.
func printNotReloaded(w io.Writer, st Status) {
	if !st.NotReloaded {
		return
	}
	f := st.Daemon
	loaded := f.Started
	if !f.LastReload.IsZero() {
		loaded = f.LastReload
	}
	fmt.Fprintf(w, "configuration: the file differs from the one the daemon runs (%s, loaded %s): what follows is the file's; reload the daemon to apply it (systemctl reload tunneld, service tunneld reload or kill -HUP $(pidof tunneld))\n",
		f.ConfigFile, loaded.Format("2006-01-02 15:04:05"))
}

// driftWhat says what the drift is: what apply would do when no daemon
// runs (apply is refused while one does), else what the daemon would
// do, after a reload when the file is not the one it runs.
func driftWhat(st Status) string {
	switch {
	case st.Daemon == nil:
		return "what `tunneld apply` would do"
	case st.NotReloaded:
		return "what the daemon would do after a reload"
	case st.Daemon.ConfigSum == "":
		// An older daemon: the file may be edited since it loaded it.
		return "what the daemon would do with this file"
	}
	return "what the daemon's next convergence would do"
}

// printDaemon prints the daemon's facts, or why there are none.
func printDaemon(w io.Writer, st Status) {
	if st.Daemon == nil {
		fmt.Fprintf(w, "daemon: %s\n", st.DaemonError)
		return
	}
	f := st.Daemon
	if f.Converges == 0 {
		// Its socket answers before the first convergence ends.
		fmt.Fprintln(w, "daemon: starting: its first convergence is under way")
		return
	}
	fmt.Fprintf(w, "daemon: running since %s, %s, last %s\n", f.Started.Format("2006-01-02 15:04:05"), count(f.Converges, "convergence", "convergences"), f.LastConverge.Format("15:04:05"))
	if !f.LastReload.IsZero() {
		fmt.Fprintf(w, "  last reload %s\n", f.LastReload.Format("2006-01-02 15:04:05"))
	}
	switch c := f.Cleared; {
	case f.LastError != "":
		fmt.Fprintf(w, "  last error at %s: %s\n", f.LastErrorAt.Format("2006-01-02 15:04:05"), f.LastError)
	case c != nil:
		// Over, and nothing else fails: what ended it, and when,
		// come before the error, which must not read as current.
		fmt.Fprintf(w, "  last error at %s, cleared by %s at %s: %s\n", c.At.Format("2006-01-02 15:04:05"), c.By, c.Cleared.Format("2006-01-02 15:04:05"), c.Err)
	}
	printHeld(w, daemonHolds(f))
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

// upBut is what follows "up" on the line of a tunnel that is up but may
// pass nothing, or not all it should: a device its packets leave by
// cannot carry them, its underlay's MTU is too small for the packets its
// own MTU lets in (an ip6ip6 tunnel at 1280 over a 1300 underlay), the
// daemon no longer repairs some of its objects (a route through it gone),
// or its hook failed (the broker it tells may send to the old address).
func (r TunnelReport) upBut() string {
	if !r.Up {
		return ""
	}
	parts := r.Underlay
	for _, s := range []string{r.Dropping, r.heldState(), r.hookState()} {
		if s != "" {
			parts = append(slices.Clip(parts), s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ", but " + strings.Join(parts, "; ")
}

// heldState says that the daemon no longer repairs some of the tunnel's
// objects, "" when it repairs them all.
func (r TunnelReport) heldState() string {
	if len(r.Held) == 0 {
		return ""
	}
	return "tunneld is not repairing " + count(len(r.Held), "of its objects", "of its objects") + " (see below)"
}

// hookOK is the status of a hook run that worked.
const hookOK = "exit status 0"

// hookState says that the last run of the tunnel's hook failed, so that
// the broker it tells may still send to an old address, how many runs of
// the change failed, and when the daemon runs it again ("its hook failed
// (exit status 3): retrying at 17:05:00"); "" when it worked or never ran.
// A tester saw a tunnel "up" while its broker update had failed and was
// never tried again, and the failure only on the hook's own line.
func (r TunnelReport) hookState() string {
	h := r.LastHook
	if h == nil || h.Status == hookOK {
		return ""
	}
	s := "its hook failed"
	if h.Try > 1 {
		s += fmt.Sprintf(" %d times", h.Try)
	}
	s += " (" + h.Status + ")"
	if !h.Retry.IsZero() {
		s += ": retrying at " + h.Retry.Format("15:04:05")
	}
	return s
}

// printHook prints the last run of a tunnel's hook, if it ran: which try
// of its change it was when not the first.
func printHook(w io.Writer, h *daemon.HookRun) {
	if h == nil {
		return
	}
	why := h.Reason
	if h.Try > 1 {
		why += fmt.Sprintf(", try %d", h.Try)
	}
	fmt.Fprintf(w, "  hook %s: %s at %s (%s)\n", h.Path, h.Status, h.At.Format("2006-01-02 15:04:05"), why)
}

// printUnderlay prints what the tunnel's underlay devices lack, and
// that nothing passes the tunnel while they do.
func printUnderlay(w io.Writer, r TunnelReport) {
	for _, u := range r.Underlay {
		fmt.Fprintf(w, "  underlay %s: the tunnel's packets cannot leave by it\n", u)
	}
}

// printHeld prints one line per object whose repairs are held back, and
// until when (unknown from an older daemon: "for now").
func printHeld(w io.Writer, held []daemon.Hold) {
	for _, h := range held {
		until := "for now"
		if !h.Until.IsZero() {
			until = "until " + h.Until.Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "  not repairing %s %s: something else keeps changing it\n", h.Object, until)
	}
}

// unresolved words the remote of a tunnel whose DNS name gives no
// address of its outer family: the name, and why ("not resolved yet",
// or what it resolves to), never "any", which is a configuration value.
func (r TunnelReport) unresolved() string {
	why := "not resolved yet"
	if len(r.RemoteAnswers) > 0 {
		family := "IPv4"
		if r.Mode.OuterIPv6() {
			family = "IPv6"
		}
		why = fmt.Sprintf("no %s address: it resolves to %s only", family, strings.Join(r.RemoteAnswers, ", "))
	}
	if r.RemoteActual != "" {
		why += "; kernel has " + r.RemoteActual
	}
	return r.RemoteName + " (" + why + ")"
}

// remoteFrom words where the remote comes from: its DNS name, and when
// the daemon keeps its last good answer of the tunnel's outer family
// because the name no longer gives one, what the name resolves to
// ("aftr.example.net resolves to 192.0.2.1 only: the last good IPv6
// answer is kept").
func (r TunnelReport) remoteFrom() string {
	if len(r.RemoteKept) == 0 {
		return r.RemoteName
	}
	family := "IPv4"
	if r.Mode.OuterIPv6() {
		family = "IPv6"
	}
	var other []string
	for _, a := range r.RemoteAnswers {
		if !slices.Contains(r.RemoteKept, a) {
			other = append(other, a)
		}
	}
	what := "resolves to " + strings.Join(other, ", ") + " only"
	if len(other) == 0 {
		what = "answers with no address"
	}
	return fmt.Sprintf("%s %s: the last good %s answer is kept", r.RemoteName, what, family)
}

// keptOf are the addresses of kept (a daemon's Facts.Kept of a name) of
// the outer family v6 or IPv4.
func keptOf(kept []string, v6 bool) []string {
	var out []string
	for _, s := range kept {
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() == v6 {
			out = append(out, s)
		}
	}
	return out
}

// endpoint words a tunnel's endpoint: the one wanted ("any" where
// neither it nor the kernel has one), then in one parenthesis where it
// comes from (from, a DNS name or the device followed) and, where the
// kernel has the tunnel (inKernel) and another endpoint, what it has.
func endpoint(wanted, actual string, inKernel bool, from string) string {
	var notes []string
	if from != "" {
		notes = append(notes, from)
	}
	s := wanted
	switch {
	case !inKernel || wanted == actual:
		if s == "" {
			s = "any"
		}
	case actual == "":
		s, notes = or1(wanted), append(notes, "not set in the kernel")
	default:
		s, notes = or1(wanted), append(notes, "kernel has "+actual)
	}
	if len(notes) == 0 {
		return s
	}
	return s + " (" + strings.Join(notes, "; ") + ")"
}

func or(s []string, def string) []string {
	if len(s) == 0 {
		return []string{def}
	}
	return s
}

// orAny words an endpoint of the daemon's, which is "" both for "any"
// and while unknown.
func orAny(s string) string {
	if s == "" {
		return "any or unknown"
	}
	return s
}

func or1(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// queryErr says in an admin's words why the daemon's socket gave no
// answer.
func queryErr(sock string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no daemon running (no socket " + sock + ")"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no daemon running (nothing listens on " + sock + ")"
	case errors.Is(err, fs.ErrPermission):
		return "cannot ask the daemon: permission denied on " + sock
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
