// Package daemon is tunneld's control loop: converge, then keep the kernel
// converged. Netlink events are hints (re-read, re-plan), coalesced by a
// short debounce and paced in a storm (see pacer); an address hint on a
// device that tunnels take their local address from first takes a short
// way, re-reading the addresses alone and moving the tunnels at once
// (engine.Endpoints), before the debounced converge; a periodic resync
// catches what events miss (a change of a sysctl the kernel sends no
// netconf notification for, such as accept_ra: see watch); DNS peers are
// re-resolved in the background when their answer expires, and a changed
// answer converges (see dns.go); a converge that failed is tried again
// soon (see retryAfter); SIGHUP reloads the configuration, keeping
// the old one when the new one is invalid; repairs of an object that
// something else keeps changing are held back for a while. A tunnel's hook
// runs in the background when the daemon has set the tunnel up or moved
// it, and once at the start, and again with a backoff after a run that
// failed (see hook.go).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/resolve"
	"github.com/tunneld/tunneld/pkg/watch"
)

// Defaults of the loop's timing.
const (
	// DefaultDebounce is how long the loop waits after a hint for more
	// to arrive; a burst is cut off after MaxDebounce (see pacer). In a
	// storm of hints it also rests after a converge for as long as that
	// took, but never more than MaxRest.
	DefaultDebounce = 2 * time.Millisecond
	MaxDebounce     = 50 * time.Millisecond
	MaxRest         = time.Second
	// FollowDebounce is the quiet a batch waits for when it holds an
	// address hint of a device that tunnels take their local address
	// from: the short way has moved them (see pacer).
	FollowDebounce = 20 * time.Millisecond
	// FlushTrail is how long after a link hint the repairs of a converge
	// that put back what a device takes with it when it goes down or away
	// (its routes, addresses, sysctls: see flushed) are taken as following
	// the link's change (the kernel's notifications of that may trail the
	// link's into a later batch) rather than as a fight. The repairs of
	// the rest, the tunnel links themselves first, count as ever.
	FlushTrail = time.Second
	// MinResolve bounds how often a name is looked up again, whatever its
	// TTL; RetryResolve is the wait after a failed lookup.
	MinResolve   = 10 * time.Second
	RetryResolve = 30 * time.Second
	// Repairs of one object beyond FightLimit within FightWindow mean
	// another manager is changing it too: tunneld then leaves it alone
	// for HoldOff.
	FightLimit  = 5
	FightWindow = time.Minute
	HoldOff     = 5 * time.Minute
)

// Deps is what the loop needs from the outside.
type Deps struct {
	Kernel kernel.Kernel
	// Config is the configuration to start with (nil: Run loads it).
	Config *config.Config
	// Load reads and validates the configuration file (at start-up when
	// Config is nil, and on every reload).
	Load     func() (*config.Config, error)
	Resolver resolve.Resolver
	// Events are the watcher's hints (nil: none).
	Events <-chan watch.Event
	// Reload receives a value per SIGHUP: the channel signal.Notify
	// sends SIGHUP to, so that one sent before a SIGTERM is there when
	// the stop comes (see Run).
	Reload <-chan os.Signal
	// Log receives the loop's log lines (nil: none).
	Log *logfmt.Logger
	// Notify sends a systemd notification ("READY=1", …); nil: none.
	Notify func(state string)
	// Watchdog is the systemd watchdog interval (0: none); the loop pings
	// at half of it.
	Watchdog time.Duration
	// Debounce overrides DefaultDebounce.
	Debounce time.Duration
	// ResolveFloor overrides MinResolve (tests).
	ResolveFloor time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnConverge, when set, is called after every convergence (tests).
	OnConverge func(Facts)
	// HookTimeout overrides HookTimeout, the time a tunnel's hook may
	// run (tests).
	HookTimeout time.Duration
	// HookRetry overrides HookRetry, the wait before a failed hook run
	// is tried again the first time (tests).
	HookRetry time.Duration
	// HookSettle overrides HookSettle, how long a tunnel's hook waits
	// after a move (tests).
	HookSettle time.Duration
	// HoldOff overrides HoldOff, how long repairs of an object in a
	// fight are held back (tests).
	HoldOff time.Duration
	// Keep, when set, is called before each of the loop's convergences
	// after the first (an event's, a resync's, a retry's, a reload's; not
	// the short way's) and before the teardown at its stop: it puts back what a wipe of the state directory
	// took (the lock, the status socket, the records), which no change
	// may come to write again for long. An error says another tunneld
	// took the directory meanwhile: the loop stops at once, without the
	// teardown, which would remove what that one keeps (see LostError).
	Keep func() error
}

// Daemon is one running control loop.
type Daemon struct {
	d       Deps
	cfg     *config.Config
	names   map[string]*nameState
	repairs map[string][]time.Time
	// lastForm is the form each object was last left in (see
	// countRepair).
	lastForm map[string]string
	held     map[string]holding
	mu       sync.Mutex
	facts    Facts
	// changedAt is when each tunnel's link was last changed, which
	// Facts.LastChange gives in the wall clock of the moment it is read
	// (rebase). Guarded by mu.
	changedAt map[string]time.Time
	started   time.Time
	// last is the kernel as the loop last saw it: the last converge's
	// final observation, with what a short way read and changed since
	// (engine.Endpoints plans from it).
	last engine.Snapshot
	// failing is the error of the last converge ("" when it worked), so
	// that the same failure is logged once at error level; fails counts
	// the failed converges in a row (see retryAfter).
	failing string
	fails   int
	// interrupted counts the converges in a row that the kernel's
	// interrupted dumps failed, logged at debug level (InterruptedQuiet).
	interrupted int
	// failures are the failures that hold, by what they are of, and
	// cleared the one last over (see failed and worked, facts.go).
	failures map[string]failure
	cleared  *ClearedError
	// warned holds the warnings of the last converge's observation, so
	// that each is logged once at warn level while it lasts.
	warned map[string]bool
	// The lookups of DNS names (see dns.go): gen counts their
	// generations, lookupCtx ends the current one, answers brings their
	// results to the loop, lookups counts the ones not yet over.
	gen           uint64
	lookupCtx     context.Context
	cancelLookups context.CancelFunc
	answers       chan answer
	lookups       sync.WaitGroup
	// hooks runs the tunnels' hooks (see hook.go). While holdHooks is
	// set (the first converge, a reload's), the calls for them are kept
	// in heldCalls for flushHooks.
	hooks     *hooks
	holdHooks bool
	// tables are the routing tables of the configuration's routes, as
	// of tablesOf (see routeMatters).
	tables    map[uint32]bool
	tablesOf  *config.Config
	heldCalls []hookCall
}

type nameState struct {
	// addrs is the answer in use: the last good one, of each family a
	// tunnel needs (see stale).
	addrs []netip.Addr
	// kept are the addresses of addrs kept from an earlier answer: the
	// last one had none of their family, which a tunnel of the name
	// needs.
	kept []netip.Addr
	due  time.Time
	// pending: a lookup of the name is under way.
	pending bool
	// failing is the error of its last lookup ("" when it answered
	// with an address of every family needed, see stale), so that the
	// same failure is logged once at warn level.
	failing string
}

// New prepares a daemon; Run starts it.
func New(d Deps) *Daemon {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Debounce == 0 {
		d.Debounce = DefaultDebounce
	}
	if d.ResolveFloor == 0 {
		d.ResolveFloor = MinResolve
	}
	if d.Notify == nil {
		d.Notify = func(string) {}
	}
	if d.HookTimeout == 0 {
		d.HookTimeout = HookTimeout
	}
	if d.HoldOff == 0 {
		d.HoldOff = HoldOff
	}
	dm := &Daemon{d: d, names: map[string]*nameState{}, repairs: map[string][]time.Time{}, lastForm: map[string]string{}, held: map[string]holding{}, answers: make(chan answer)}
	dm.hooks = newHooks(d.Log, d.Now, d.HookTimeout, dm.hookRan)
	dm.hooks.forget = dm.hookForget
	if d.HookRetry != 0 {
		dm.hooks.retry = d.HookRetry
	}
	dm.hooks.settle = HookSettle
	if d.HookSettle != 0 {
		dm.hooks.settle = d.HookSettle
	}
	return dm
}

// ErrConfig means the configuration could not be loaded at start-up.
var ErrConfig = errors.New("configuration")

// Run converges, notifies readiness, and keeps the kernel converged until
// ctx ends; then it removes what tunneld owns (unless keep_on_exit).
func (dm *Daemon) Run(ctx context.Context) error {
	cfg := dm.d.Config
	if cfg == nil {
		var err error
		if cfg, err = dm.d.Load(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	dm.cfg = cfg
	dm.hooks.configure(cfg)
	dm.started = dm.d.Now()
	dm.mu.Lock()
	dm.facts.ConfigFile, dm.facts.ConfigSum = cfg.File, cfg.Sum
	dm.facts.PID = os.Getpid()
	dm.mu.Unlock()
	dm.newGeneration(ctx)
	defer dm.endLookups()
	dm.startDue(true)
	dm.awaitAnswers(ctx)
	dm.holdHooks = true
	dm.converge(ctx, "start", countNone, 0)
	dm.flushHooks(hookStart, nil)
	dm.d.Notify("READY=1")

	debounce := newTimer()
	defer debounce.Stop()
	pace := &pacer{debounce: dm.d.Debounce, followDebounce: FollowDebounce, maxDebounce: MaxDebounce, maxRest: MaxRest}
	// busy tells the log of converges that keep coming (a cable that
	// flaps for minutes), and calm when they stopped.
	busy := &busyLog{}
	calm := newTimer()
	defer calm.Stop()
	pending := map[watch.Kind]int{}
	// retryFailed arms retry after a converge: a failed one is tried
	// again (see retryAfter), unless another converge comes first.
	retry := newTimer()
	defer retry.Stop()
	retryFailed := func() {
		retry.Stop()
		if d := dm.retryAfter(); d > 0 {
			retry.Reset(d)
		}
	}
	retryFailed()
	// holdOver arms holdEnd for the end of the earliest hold: the object
	// is repaired then, not at the next hint or resync (a tunnel held
	// missing would cut its routes off for up to a resync interval
	// more). Each converge, short way and reload may begin or end one.
	holdEnd := newTimer()
	defer holdEnd.Stop()
	holdOver := func() {
		holdEnd.Stop()
		if until, ok := dm.nextHoldEnd(); ok {
			holdEnd.Reset(max(until.Sub(dm.d.Now()), 0))
		}
	}
	holdOver()
	// follow: an address hint asks tunnels to follow a device's address.
	var follow bool
	// converge converges and tells the pacer; a batch of hints pending
	// is forgotten: the converge's re-read covered it.
	// lost is set when Keep found another tunneld in the state
	// directory: the loop ends at its next turn.
	var lost error
	keep := func() bool {
		if dm.d.Keep != nil && lost == nil {
			lost = dm.d.Keep()
		}
		return lost == nil
	}
	converge := func(why string, c counting) {
		if !keep() {
			return
		}
		start := dm.d.Now()
		var waited time.Duration
		if !pace.first.IsZero() {
			waited = start.Sub(pace.first)
		}
		dm.converge(ctx, why, c, waited)
		end := dm.d.Now()
		pace.converged(start, end, len(dm.d.Events) > 0)
		if busy.note(start, end.Sub(start)) {
			dm.d.Log.Info("netlink events keep coming", "converges", len(busy.starts), "in", BusyWindow)
		}
		if !pace.coming && busy.rests() {
			pace.coming = true
			dm.d.Log.Debug("resting after each converge while events keep coming", "share", busy.share(), "rest", BusyRest)
		}
		if busy.logged {
			calm.Reset(BusyWindow)
		}
		debounce.Stop()
		clear(pending)
		follow = false
		retryFailed()
		holdOver()
	}
	resync := time.NewTicker(dm.cfg.Global.ResyncInterval)
	defer resync.Stop()
	resolveT := newTimer()
	defer resolveT.Stop()
	dm.armResolve(resolveT)
	var watchdog <-chan time.Time
	if dm.d.Watchdog > 0 {
		t := time.NewTicker(dm.d.Watchdog / 2)
		defer t.Stop()
		watchdog = t.C
	}
	var linkHint time.Time
	// A device that went down took its routes with it (the kernel
	// flushes them): putting them back after a link event is no fight,
	// however often the link flaps. The link's own repair is: a tunnel
	// that something else keeps deleting, changing or setting down (each
	// a link hint) is held back as a route would be (see flushed). Any
	// converge in that time does the batch's work (a resync's clears
	// it), so counts so.
	fights := func() counting {
		if linkHint.IsZero() || dm.d.Now().Sub(linkHint) > FlushTrail {
			return countAll
		}
		return countUnflushed
	}
	for {
		if lost != nil {
			return dm.abandon(lost)
		}
		select {
		case <-ctx.Done():
			// The teardown only where the directory is still ours: a
			// tester's stop in the window after another run took it
			// removed what that one keeps.
			if !keep() {
				return dm.abandon(lost)
			}
			// A SIGHUP sent before the SIGTERM is here by now (the
			// kernel hands the lower-numbered signal over first, and
			// Reload has it at once, where the stop goes through
			// signal.NotifyContext's goroutine): its file says what
			// the stop keeps (keep_on_exit). A tester's "keep_on_exit
			// = true, reload, stop" to a busy daemon lost the reload,
			// and the stop removed everything. It is taken, not
			// converged to: the next start does that.
			select {
			case <-dm.d.Reload:
				if _, ok := dm.takeConfig(); ok {
					dm.d.Log.Info("the reload that came with the stop is taken for it, not applied")
				}
			default:
			}
			return dm.stop()
		case ev := <-dm.d.Events:
			now := dm.d.Now()
			// A route hint of a table tunneld neither writes nor reads
			// asks for nothing, but it may be the last of the queue an
			// address hint waits for (an address brings its local
			// table's routes): the short way below still runs.
			if dm.routeMatters(ev) {
				pending[ev.Kind]++
				// A Drained one asks for the re-read after the
				// overflow's last loss: the end of what the
				// warning began.
				switch {
				case ev.Kind == watch.Overflow && ev.Drained:
					dm.d.Log.Info("netlink events are no longer lost: re-reading everything")
				case ev.Kind == watch.Overflow:
					dm.d.Log.Warn("netlink events were lost (socket overflow): re-reading everything")
				}
				if ev.Kind == watch.Link {
					linkHint = now
				}
				// An address of a device that tunnels take their
				// local address from: they follow it as soon as the
				// hints queued are read (not in a storm), before the
				// debounce ends. A secondary address cannot be the
				// one they take.
				followed := ev.Kind == watch.Addr && dm.follows(ev.Index)
				debounce.Reset(max(pace.hint(now, followed).Sub(now), 0))
				follow = follow || followed && !ev.Secondary
			}
			if follow && len(dm.d.Events) == 0 {
				if !pace.storming(now) {
					dm.endpoints(ctx, "event: address (tunnel endpoints)", fights())
					holdOver()
				}
				follow = false
			}
		case <-debounce.C:
			converge(reason(pending), fights())
		case <-resync.C:
			converge("resync", fights())
		case <-retry.C:
			converge("retry", fights())
		case <-holdEnd.C:
			converge("hold over", fights())
		case <-resolveT.C:
			dm.startDue(false)
			dm.armResolve(resolveT)
		case a := <-dm.answers:
			if dm.answered(a) {
				converge("dns", fights())
			}
			dm.armResolve(resolveT)
		case <-dm.d.Reload:
			if !keep() {
				continue
			}
			if dm.reload(ctx) {
				resync.Reset(dm.cfg.Global.ResyncInterval)
				dm.armResolve(resolveT)
				retryFailed()
				holdOver()
			}
		case <-calm.C:
			lasted, n := busy.calmed()
			pace.coming = false
			dm.d.Log.Info("the netlink events calmed down", "lasted", lasted.Round(time.Second), "converges", n)
		case <-watchdog:
			dm.d.Notify("WATCHDOG=1")
		}
	}
}

// newTimer returns a stopped timer.
func newTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func reason(pending map[watch.Kind]int) string {
	s := "event:"
	for k := watch.Link; k <= watch.Overflow; k++ {
		if pending[k] > 0 {
			s += " " + k.String()
		}
	}
	return s
}

// reloadRefused begins the last error a refused reload leaves.
const reloadRefused = "reload refused"

// reload re-reads the configuration; an invalid one is logged line by line
// and the old one stays. A new one releases every object held back. It
// reports whether the new one was taken.
func (dm *Daemon) reload(ctx context.Context) bool {
	dm.d.Notify("RELOADING=1\nMONOTONIC_USEC=" + fmt.Sprint(monotonicUsec()))
	defer dm.d.Notify("READY=1")
	newHooks, ok := dm.takeConfig()
	if !ok {
		return false
	}
	// Every name is looked up again, in the background: the converge
	// takes the answers there are, and a name that has none yet (a new
	// one) converges again when its first answer comes.
	dm.newGeneration(ctx)
	dm.startDue(true)
	dm.holdHooks = true
	dm.converge(ctx, "reload", countNone, 0)
	dm.flushHooks(hookReload, newHooks)
	return true
}

// takeConfig reads the configuration again and makes it the running
// one, without converging to it; an invalid one is logged line by line
// and the old one stays. It returns the tunnels whose hook is new or
// changed (hooks.configure), and whether the new one was taken.
func (dm *Daemon) takeConfig() (map[string]bool, bool) {
	cfg, err := dm.d.Load()
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				dm.d.Log.Error("reload refused: "+e.Error(), "file", e.File, "line", e.Line, "col", e.Col)
			}
		} else {
			dm.d.Log.Error("reload refused", "err", err)
		}
		dm.setError(failedReload, fmt.Errorf("%s: %w", reloadRefused, err))
		dm.d.Log.Warn("keeping the running configuration")
		return nil, false
	}
	dm.cfg = cfg
	newHooks := dm.hooks.configure(cfg)
	// A reload is the admin's word: what was held back as a fight is
	// tried again (the other manager may be gone, or the configuration
	// may now want something else of the object, or nothing at all).
	for obj := range dm.held {
		dm.d.Log.Info("repairing again: the configuration was reloaded", "object", obj)
	}
	clear(dm.held)
	clear(dm.repairs)
	dm.mu.Lock()
	dm.facts.LastReload = dm.d.Now()
	dm.facts.ConfigFile, dm.facts.ConfigSum = cfg.File, cfg.Sum
	// A tunnel the configuration no longer has (removed, or renamed) has
	// no last change to show: status would list it forever.
	maps.DeleteFunc(dm.changedAt, func(name string, _ time.Time) bool { return cfg.TunnelByName(name) == nil })
	// The file that was refused is fixed: that error is over.
	dm.worked(failedReload, "a reload", dm.facts.LastReload)
	dm.mu.Unlock()
	dm.d.Log.Info("configuration reloaded", "file", cfg.File)
	return newHooks, true
}

// LostError is why the loop stopped without its teardown: another tunneld
// took the state directory (Deps.Keep).
type LostError struct{ Err error }

func (e *LostError) Error() string {
	return "another tunneld took the state directory, and keeps the kernel now: stopped without the teardown, which would remove what it keeps: " + e.Err.Error()
}

// Unwrap is the error Keep gave.
func (e *LostError) Unwrap() error { return e.Err }

// abandon ends the loop without the teardown: what tunneld owns is
// another daemon's to keep now.
func (dm *Daemon) abandon(err error) error {
	dm.d.Notify("STOPPING=1")
	dm.endLookups()
	dm.hooks.stop(HookGrace)
	lost := &LostError{Err: err}
	dm.d.Log.Error(lost.Error())
	return lost
}

func (dm *Daemon) stop() error {
	dm.d.Notify("STOPPING=1")
	dm.endLookups()
	if dm.cfg.Global.KeepOnExit {
		dm.d.Log.Info("stopping; keep_on_exit: leaving the kernel state in place")
		dm.hooks.stop(HookGrace)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := engine.Down(ctx, dm.d.Kernel, dm.cfg)
	for _, op := range rep.Applied {
		dm.d.Log.Info("removed", "object", op.Object(), "cmd", op.Command(rep.Last.Plan.Tables))
	}
	for _, w := range rep.Last.Want.Warnings {
		dm.d.Log.Warn(w)
	}
	// Removing a tunnel runs no hook; one running gets a short grace,
	// its end logged before the last line (a tester saw a hook killed
	// at shutdown logged after "stopped").
	dm.hooks.stop(HookGrace)
	if kernel.OnlyRecords(err) {
		// The kernel's teardown is done: only the state record lags
		// (a full state directory). The stop worked (exit 0); the
		// record's failure says what is left to do.
		dm.d.Log.Warn("stopped; everything tunneld owned is removed from the kernel, but a state record could not be updated", "err", err)
		return nil
	}
	if err != nil {
		dm.d.Log.Error("teardown incomplete", "err", err)
		return err
	}
	if w := rep.LeftWarning(); w != "" {
		// Not "everything": a tester's stop said so and left
		// ip_forward on.
		dm.d.Log.Warn("stopped; everything tunneld owned is removed, but sysctls are " + w)
		return nil
	}
	dm.d.Log.Info("stopped; everything tunneld owned is removed")
	return nil
}

// hold reports whether repairs of op's object are held back (by its
// HoldKey: a hold of a route does not keep out the unreachable route
// that stands in for it while its tunnel is not up, nor the reverse): a
// hold is over at its end (until), not a moment after.
func (dm *Daemon) hold(op plan.Op) bool {
	key := HoldKey(op)
	h, ok := dm.held[key]
	if ok && !dm.d.Now().Before(h.until) {
		dm.release(key)
		return false
	}
	return ok
}

// release ends the hold of obj, with a log line.
func (dm *Daemon) release(obj string) {
	delete(dm.held, obj)
	dm.d.Log.Info("repairing again: the hold is over", "object", obj)
}

// releaseOver ends the holds that are over at now, also of the objects
// that need no repair (the other manager put them back, or left): hold
// would never be asked about those, and nextHoldEnd would give their
// past end again and again.
func (dm *Daemon) releaseOver(now time.Time) {
	for obj, h := range dm.held {
		if !now.Before(h.until) {
			dm.release(obj)
		}
	}
}

// nextHoldEnd is the end of the earliest hold, if any: the loop
// converges then (see Run).
func (dm *Daemon) nextHoldEnd() (time.Time, bool) {
	var next time.Time
	for _, h := range dm.held {
		if next.IsZero() || h.until.Before(next) {
			next = h.until
		}
	}
	return next, !next.IsZero()
}
