package cli

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tunneld/tunneld/pkg/daemon"
)

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
		fmt.Fprintf(w, "tunnel %s: %s\n", t.Name, t.state())
		fmt.Fprintf(w, "  local  %s\n  remote %s\n", orAny(t.LocalWanted), orAny(t.RemoteWanted))
		if t.LastChange != "" {
			fmt.Fprintf(w, "  last change %s\n", stamp(t.LastChange))
		}
		printHook(w, t.LastHook)
		printHeld(w, t.Held)
	}
}

func printStatus(w io.Writer, st Status) {
	printNotReloaded(w, st)
	for _, t := range st.Tunnels {
		fmt.Fprintf(w, "tunnel %s (%s): %s\n", t.Name, t.Mode, t.state())
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
		if t.LocalDevice != "" && t.LocalWanted == "" {
			// The device gives none: "any" would be the
			// configuration value, and "unknown" what the kernel
			// has, which this is not (a tester saw both words).
			if inKernel && t.LocalActual != "" {
				follows += "; kernel has " + t.LocalActual
			}
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
			fmt.Fprintf(w, "  last change %s\n", stamp(t.LastChange))
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
	kill := "$(pidof tunneld)"
	if f.PID > 0 {
		kill = strconv.Itoa(f.PID)
	}
	fmt.Fprintf(w, "configuration: the file differs from the one the daemon runs (%s, loaded %s): what follows is the file's; reload the daemon to apply it (systemctl reload tunneld, service tunneld reload or kill -HUP %s)\n",
		f.ConfigFile, loaded.Format("2006-01-02 15:04:05"), kill)
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
		fmt.Fprintf(w, "  last error at %s: %s\n", f.LastErrorAt.Format("2006-01-02 15:04:05"), indentMore(f.LastError))
	case c != nil:
		// Over, and nothing else fails: what ended it, and when,
		// come before the error, which must not read as current.
		fmt.Fprintf(w, "  last error at %s, cleared by %s at %s: %s\n", c.At.Format("2006-01-02 15:04:05"), c.By, c.Cleared.Format("2006-01-02 15:04:05"), indentMore(c.Err))
	}
	printHeld(w, daemonHolds(f))
}

// state is what follows a tunnel's name on its line: up (and what may
// keep it from passing all it should), or down and why.
func (r TunnelReport) state() string {
	if !r.Up {
		if r.Reason != "" {
			return "down: " + r.Reason
		}
		return "down"
	}
	return "up" + r.upBut()
}

// upBut is what follows "up" on the line of a tunnel that is up but may
// pass nothing, or not all it should: a device its packets leave by
// cannot carry them, its underlay's MTU is too small for the packets its
// own MTU lets in (an ip6ip6 tunnel at 1280 over a 1300 underlay), the
// daemon no longer repairs some of its objects (a route through it gone),
// no device of the box can send from its local address, the kernel has
// no route to its remote, its local address is a guess, or its hook
// failed (the broker it tells may send to the old address).
func (r TunnelReport) upBut() string {
	if !r.Up {
		return ""
	}
	parts := r.Underlay
	for _, s := range []string{r.LocalAbsent, r.unroutedState(), r.Looped, r.guessState(), r.Dropping, r.heldState(), r.hookState(), r.lookupState()} {
		if s != "" {
			parts = append(slices.Clip(parts), s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ", but " + strings.Join(parts, "; ")
}

// unroutedState says that the kernel has no route to the tunnel's
// remote (routeGone), "" when it has one or its packets loop, which says
// more.
func (r TunnelReport) unroutedState() string {
	if r.Looped != "" {
		return ""
	}
	return r.Unrouted
}

// guessState says that no route decided the tunnel's local address
// among its device's, "" when one did (or its packets loop, or the
// kernel has no route to its remote at all, which say more).
func (r TunnelReport) guessState() string {
	if !r.LocalGuess || r.Looped != "" || r.Unrouted != "" {
		return ""
	}
	return "no route to its remote by its device decides its local address yet: " + r.LocalWanted + " is a guess"
}

// heldState says that the daemon no longer repairs some of the tunnel's
// objects, "" when it repairs them all.
func (r TunnelReport) heldState() string {
	if len(r.Held) == 0 {
		return ""
	}
	return "tunneld is not repairing " + count(len(r.Held), "of its objects", "of its objects") + " (see below)"
}

// lookupState says that the daemon's lookups of the tunnel's remote name
// fail, so that it keeps the last good answer, which the peer may have
// left ("aftr.example.net's lookup fails: its last good answer is
// kept"); "" while it answers. A tester saw a tunnel "up" whose name had
// stopped resolving, and the failure only on the last error's line.
func (r TunnelReport) lookupState() string {
	if r.RemoteFailing == "" || r.RemoteWanted == "" {
		return ""
	}
	return r.RemoteName + "'s lookup fails: its last good answer is kept"
}

// hookState says that the last run of the tunnel's hook failed, so that
// the broker it tells may still send to an old address, how many runs of
// the change failed, and when the daemon runs it again ("its hook failed
// (exit status 3): retrying at 17:05:00"); "" when it worked or never ran.
// A tester saw a tunnel "up" while its broker update had failed and was
// never tried again, and the failure only on the hook's own line.
func (r TunnelReport) hookState() string {
	h := r.LastHook
	if h != nil && !h.Running.IsZero() {
		return "its hook runs (since " + h.Running.Format("15:04:05") + ")"
	}
	if h == nil || h.Status == hookOK || h.MovedBack {
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
// of its change it was when not the first, and that a failed run's change
// was undone since (HookRun.MovedBack).
func printHook(w io.Writer, h *daemon.HookRun) {
	if h == nil {
		return
	}
	if !h.Running.IsZero() {
		fmt.Fprintf(w, "  hook %s: running since %s (%s)\n", h.Path, h.Running.Format("2006-01-02 15:04:05"), h.RunningFor)
		if h.Status == "" {
			return // its first run
		}
	}
	why := h.Reason
	if h.Try > 1 {
		why += fmt.Sprintf(", try %d", h.Try)
	}
	undone := ""
	if h.MovedBack {
		undone = "; not run again: the tunnel moved back to where the run before it put it"
	}
	fmt.Fprintf(w, "  hook %s: %s at %s (%s)%s\n", h.Path, h.Status, h.At.Format("2006-01-02 15:04:05"), why, undone)
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
	if r.RemoteFailing != "" {
		why += ": " + r.RemoteFailing
	}
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
		if r.RemoteFailing != "" {
			return r.RemoteName + ": its lookup fails (" + r.RemoteFailing + "): the last good answer is kept"
		}
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

// stamp writes a time the daemon's facts give as RFC 3339 text (a
// tunnel's last change) as status writes the others, "2006-01-02
// 15:04:05", in the zone the daemon wrote it in; text that is no such
// time is left as it is.
func stamp(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.Format("2006-01-02 15:04:05")
}

// indentMore indents the lines of an error after its first under the
// line it is on: a cleared error's second failure, at the left margin,
// read as a problem of now (a tester's).
func indentMore(err string) string {
	return strings.ReplaceAll(err, "\n", "\n    ")
}
