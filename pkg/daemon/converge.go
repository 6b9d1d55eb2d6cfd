package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// RetryConverge is how long after a failed converge the loop tries again
// unasked; twice as long after each further failure in a row, up to
// RetryConvergeMax, for as long as that comes before the resync (see
// retryAfter).
const RetryConverge = time.Second

// RetryConvergeMax is the longest wait between tries of a failure that
// lasts: a module loaded after a long outage (nf_tables, a tunnel
// driver) is taken within it, not at the next resync, up to its
// interval later (5 minutes by default). A try that fails as before
// costs a read of the kernel and a line at debug level.
const RetryConvergeMax = time.Minute

// converge brings the kernel to the configuration and records the facts;
// one that ctx's end cuts short records nothing but what it did. A
// failure is logged at warn level when it follows a converge that
// worked: a converge may lose a race against a change under way (a WAN
// address renewed between its read and its write, in a storm of renews),
// which the next one, a hint's or the retry's, no longer meets. When the
// next one fails too, the failure is logged at error level (see below).
// Operations done for a reason other than a new configuration are repairs
// or follow-ups of the environment; each gets one log line naming its
// object, and counts towards a fight over it as c says. One that sets a
// tunnel up again ends the holds of what belongs to it (freeRecovered)
// and converges once more to put that back. waited
// is how long it came after the first hint that asked for it (0: none
// did); the debug log gives it beside the first read and the applies.
func (dm *Daemon) converge(ctx context.Context, why string, c counting, waited time.Duration) {
	start := time.Now()
	dm.releaseOver(dm.d.Now())
	rep, err := engine.Converge(ctx, dm.d.Kernel, dm.cfg, dm.resolved(), dm.hold)
	if ctx.Err() == nil && dm.freeRecovered(rep.Applied) {
		// The holds it ended left their objects out of it: they are
		// put back now, not at the next hint.
		more, moreErr := engine.Converge(ctx, dm.d.Kernel, dm.cfg, dm.resolved(), dm.hold)
		rep.Applied = append(rep.Applied, more.Applied...)
		rep.Last, rep.Apply, err = more.Last, rep.Apply+more.Apply, moreErr
	}
	kv := []any{"reason", why, "ops", len(rep.Applied), "took", time.Since(start), "read", rep.FirstRead, "apply", rep.Apply}
	if waited > 0 {
		kv = append(kv, "waited", waited)
	}
	dm.d.Log.Debug("converged", kv...)
	if err != nil && ctx.Err() != nil {
		// The daemon is stopping (a SIGTERM right after a SIGHUP stops
		// the reload's converge): the converge was cut short, which
		// is no failure. What it did is logged; the teardown follows.
		dm.record(rep.Applied, rep.Last.Plan.Tables, why, c)
		dm.d.Log.Info("convergence cut short: tunneld is stopping", "reason", why)
		return
	}
	// Someone else's flood of changes (addresses added and deleted by
	// the thousand) kept the kernel's dumps interrupted: no failure of
	// tunneld's or the admin's, over at the next read (a tester's log had
	// warnings and errors for it). When nothing was done, the last facts
	// stand.
	quiet := err != nil && errors.Is(err, kernel.ErrDumpInterrupted) && dm.fails == 0 && dm.interrupted < InterruptedQuiet
	if quiet {
		dm.interrupted++
		dm.d.Log.Debug("converge interrupted by changes of someone else's; reading again", "reason", why, "err", err)
		if len(rep.Applied) == 0 {
			return
		}
	}
	dm.last = rep.Last
	now := dm.record(rep.Applied, rep.Last.Plan.Tables, why, c)
	for _, n := range rep.Last.Want.Notes {
		dm.d.Log.Debug("waiting", "note", n)
	}
	dm.warn(rep.Last, rep.Ended)
	tunnels := inKernel(rep.Last, err, dm.heldTunnels())
	// A failed hook run of a tunnel that is down is not tried again:
	// the LinkUp that brings it back runs the hook. Told before dm.mu is
	// taken: the hooks take it to record their runs.
	var down []string
	for _, t := range tunnels {
		if !t.Up {
			down = append(down, t.Name)
		}
	}
	dm.hooks.tunnelsDown(down)
	dm.hooks.tunnelsUnsettled(unsettled(rep.Last.Want.Tunnels))
	dm.mu.Lock()
	defer dm.mu.Unlock()
	f := &dm.facts
	f.Started, f.Converges, f.LastConverge = dm.started, f.Converges+1, now
	f.Tunnels = tunnels
	f.Notes = rep.Last.Want.Notes
	f.Unmarked = unmarked(rep.Last)
	switch {
	case quiet:
		// Logged above: neither a failure nor one that worked.
	case err != nil:
		dm.failed(failedConverge, err.Error(), now)
		dm.fails++
		// The same failure again (a driver missing, a device taken)
		// after every hint would fill the log: once the retry has
		// failed too, it is logged at error level when it changes,
		// else at debug level.
		switch {
		case dm.fails == 1:
			dm.d.Log.Warn("converge failed; trying again", "reason", why, "err", err)
		case dm.fails == 2 || err.Error() != dm.failing:
			dm.d.Log.Error("converge failed", "reason", why, "err", err)
		default:
			dm.d.Log.Debug("converge failed as before", "reason", why)
		}
		dm.failing = err.Error()
	default:
		if dm.fails > 0 {
			dm.d.Log.Info("converged again after a failure", "reason", why)
		}
		dm.worked(failedConverge, "a convergence", now)
		dm.failing, dm.fails, dm.interrupted = "", 0, 0
	}
	dm.showHolds(now)
	up := 0
	for _, t := range f.Tunnels {
		if t.Up {
			up++
		}
	}
	dm.d.Notify(fmt.Sprintf("STATUS=%d/%d tunnels up", up, len(f.Tunnels)))
	if dm.d.OnConverge != nil {
		dm.d.OnConverge(*f)
	}
}

// InterruptedQuiet is how many converges in a row the kernel's
// interrupted dumps may fail before it is a failure like any other:
// until then each is logged at debug level and tried again after
// RetryConverge.
const InterruptedQuiet = 10

// retryAfter is how long after the last converge the loop tries again
// unasked (0: it does not): not at all after one that worked, RetryConverge
// after one the kernel's interrupted dumps failed (see InterruptedQuiet),
// RetryConverge after a first failure, twice as long after each further
// one in a row up to RetryConvergeMax (a failure that lasts, such as a
// missing driver, is not tried again every second), and not at all when
// that would come no sooner than the resync, which tries anyway.
func (dm *Daemon) retryAfter() time.Duration {
	if dm.fails == 0 {
		if dm.interrupted > 0 {
			return RetryConverge
		}
		return 0
	}
	d := min(RetryConverge<<min(dm.fails-1, 20), RetryConvergeMax)
	if d >= dm.cfg.Global.ResyncInterval {
		return 0
	}
	return d
}

// warn logs each of s's warnings at warn level when it begins: the
// converges after it, every resync and hint, find it again until the
// admin acts, and a line each time would bury the rest of the log. So is
// a tunnel that only the admin can bring up (desired.TunnelStatus.Blocked:
// a device tunneld does not own holds its name), as apply and status say
// it, and one up whose local address no device can send from
// (desired.TunnelStatus.LocalAbsent). A converge that observed nothing
// (s has no devices) changes nothing.
func (dm *Daemon) warn(s engine.Snapshot, ended []string) {
	if s.Inputs.Devices == nil {
		return
	}
	// The converge's first round gave these, its own changes ended
	// them (engine.Report.Ended): said once, now.
	for _, w := range ended {
		if !dm.warned[w] {
			dm.d.Log.Warn(w)
		}
	}
	warned := make(map[string]bool, len(s.Want.Warnings))
	for _, w := range s.Want.Warnings {
		if !dm.warned[w] {
			dm.d.Log.Warn(w)
		}
		warned[w] = true
	}
	for _, t := range s.Want.Tunnels {
		obj := model.Link{Name: t.Name}.ID()
		var w string
		switch {
		case t.Blocked:
			w = obj + " is down: " + t.Reason
		case t.Up && t.LocalAbsent != "":
			// Up, and sending nothing: status says so on its line,
			// and a tester's daemon said nothing (its WAN address
			// deleted from under a pinned local).
			w = obj + " is up, but " + t.LocalAbsent
		default:
			continue
		}
		if !dm.warned[w] {
			dm.d.Log.Warn(w, "object", obj)
		}
		warned[w] = true
	}
	dm.warned = warned
}

// unsettled names the tunnels a move's hook call waits on for
// (hooks.tunnelsUnsettled), each with why: one whose local address was a
// guess (no route by its device to the remote), or whose packets to the
// remote go into itself.
func unsettled(tunnels []desired.TunnelStatus) map[string]string {
	out := map[string]string{}
	for _, t := range tunnels {
		switch {
		case t.Looped != "":
			out[t.Name] = t.Looped
		case t.LocalGuess:
			out[t.Name] = "no route to the remote decides its local address yet"
		}
	}
	return out
}

// inKernel is the tunnels' status as the kernel has them after a
// converge that ended with err: one wanted up that is not there, or
// down, because an operation failed, is down, not counted as up; its
// reason is the failure of the creation (or of setting it up) when err
// holds it ("creating it failed: kernel has no ipip support (…)"), so
// that status can say why, else a pointer to the last error. One whose
// repairs are held back (held: until when, by tunnel name) is down
// because the daemon leaves it as something else made it, which its
// reason says; no error is behind it.
func inKernel(s engine.Snapshot, err error, held map[string]time.Time) []desired.TunnelStatus {
	out := slices.Clone(s.Want.Tunnels)
	for i, t := range out {
		if !t.Up {
			continue
		}
		j, ok := model.LinkNamed(s.Have.Links, t.Name)
		until, isHeld := held[t.Name]
		switch {
		case (!ok || !s.Have.Links[j].Up) && isHeld:
			out[i].Up, out[i].Reason = false, HeldReason(until)
		case !ok:
			out[i].Up, out[i].Reason = false, "not in the kernel (see the last error)"
			if e := linkFailure(err, plan.LinkAdd, t.Name); e != nil {
				out[i].Reason = "creating it failed: " + e.Error()
			}
		case !s.Have.Links[j].Up:
			out[i].Up, out[i].Reason = false, "down in the kernel (see the last error)"
			if e := linkFailure(err, plan.LinkUp, t.Name); e != nil {
				out[i].Reason = "setting it up failed: " + e.Error()
			}
		}
	}
	return out
}

// HeldReason is the reason of a tunnel that is missing or down while
// the daemon holds back its repairs until until.
func HeldReason(until time.Time) string {
	return "held back until " + until.Format("2006-01-02 15:04:05") + ": something else keeps deleting or changing it"
}

// heldTunnels are the ends of the holds of configured tunnels
// themselves (not of their addresses or routes), by name.
func (dm *Daemon) heldTunnels() map[string]time.Time {
	var out map[string]time.Time
	for obj, h := range dm.held {
		if h.tunnel == "" || obj != (model.Link{Name: h.tunnel}).ID() {
			continue
		}
		if out == nil {
			out = map[string]time.Time{}
		}
		out[h.tunnel] = h.until
	}
	return out
}

// linkFailure is the error of err's failed operation of kind on the link
// name, or nil.
func linkFailure(err error, kind plan.Kind, name string) error {
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		return nil
	}
	for _, f := range ae.Failed {
		if f.Op.Kind != kind {
			continue
		}
		if f.Op.Name == name || f.Op.Link != nil && f.Op.Link.Name == name {
			return f.Err
		}
	}
	return nil
}

// record logs the operations a converge (or the short way after an
// address hint) applied (a line each, but one for the tunnels of a move,
// see MovesLogged), counts the repairs among them as c says,
// notes when each tunnel last changed, and runs the hooks of the tunnels
// they set up or moved. It returns the time it noted.
func (dm *Daemon) record(applied []plan.Op, tables map[uint32]string, why string, c counting) time.Time {
	now := dm.d.Now()
	grouped := moves(applied)
	for _, op := range applied {
		if m, ok := moveOf(op); ok && grouped[m] != nil {
			if names := grouped[m]; names[0] == op.Link.Name {
				dm.d.Log.Info("tunnels followed the address", "tunnels", strings.Join(names, " "), "from", m.from, "to", m.to, "reason", why)
			}
			dm.d.Log.Debug("changed", "object", op.Object(), "cmd", op.Command(tables), "reason", why)
			continue
		}
		if op.Kind == plan.FilterReplace {
			// The whole script, 700 bytes a tunnel, at every address
			// move would push everything else out of a router's
			// 64 KiB log (a tester's): its size in the log at info.
			dm.d.Log.Info("changed", "object", op.Object(), "rules", op.FilterSummary(), "reason", why)
			dm.d.Log.Debug("changed", "object", op.Object(), "cmd", op.Command(tables), "reason", why)
			continue
		}
		dm.d.Log.Info("changed", "object", op.Object(), "cmd", op.Command(tables), "reason", why)
		if op.Kind == plan.LinkMark {
			dm.d.Log.Warn(op.TakeOver(), "object", op.Object())
		}
	}
	dm.noteRepairs(applied, c)
	dm.mu.Lock()
	for _, op := range applied {
		if op.Link == nil {
			continue
		}
		if dm.cfg.TunnelByName(op.Link.Name) == nil {
			// One the configuration no longer has (removed, or
			// renamed), deleted: forgotten, not noted (see reload).
			delete(dm.changedAt, op.Link.Name)
			continue
		}
		if dm.changedAt == nil {
			dm.changedAt = map[string]time.Time{}
		}
		dm.changedAt[op.Link.Name] = now
	}
	dm.mu.Unlock()
	dm.runHooks(applied)
	return now
}

// endpoints takes the short way after an address hint on a device that
// tunnels take their local address from (engine.Endpoints): the tunnels
// follow the address at once, and the debounced converge the hint also
// asked for does the rest. Its failures are left to that converge.
func (dm *Daemon) endpoints(ctx context.Context, why string, c counting) {
	start := time.Now()
	dm.releaseOver(dm.d.Now())
	rep, err := engine.Endpoints(ctx, dm.d.Kernel, dm.cfg, dm.resolved(), dm.last, dm.hold)
	kv := []any{"reason", why, "ops", len(rep.Applied), "took", time.Since(start), "read", rep.FirstRead, "apply", rep.Apply}
	if err != nil {
		kv = append(kv, "err", err)
	}
	dm.d.Log.Debug("followed the address", kv...)
	if rep.Last.Inputs.Devices != nil {
		dm.last = rep.Last
	}
	dm.record(rep.Applied, rep.Last.Plan.Tables, why, c)
}

// follows reports whether the device with index is one that a tunnel
// which exists takes its local address from (as last seen): only such a
// tunnel can be moved; creating one is the converge's work. It runs for
// every address hint: the observed links are looked up in their name
// order, not scanned once per tunnel.
func (dm *Daemon) follows(index int) bool {
	if index == 0 {
		return false
	}
	for _, t := range dm.cfg.Tunnels {
		if t.LocalDev == "" {
			continue
		}
		d, ok := dm.last.Inputs.Devices[t.LocalDev]
		if !ok || d.Index != index {
			continue
		}
		if _, found := model.LinkNamed(dm.last.Have.Links, t.Name); found {
			return true
		}
	}
	return false
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds (for RELOADING=1).
func monotonicUsec() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// unmarked are the tunnels s found tunneld's without its alias, by name,
// with their indexes (Facts.Unmarked); nil for none.
func unmarked(s engine.Snapshot) map[string]int {
	var out map[string]int
	for _, l := range s.Have.Links {
		if !l.Unmarked {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[l.Name] = s.Inputs.Devices[l.Name].Index
	}
	return out
}
