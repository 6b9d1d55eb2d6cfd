package daemon

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// A tunnel's hook (config.Tunnel.Hook) is a program the daemon runs when
// the tunnel has come up or its endpoints have moved, to tell a tunnel
// broker the new address. The loop only decides (hookCalls, from the
// operations it applied) and hands the call on: the runs are the hooks
// type's, in the background, one at a time per tunnel. A run that fails
// leaves the broker with the old address: the same change is delivered
// again later (see hooks.ended), until a run of it works or something
// makes it moot.

// Hook timing.
const (
	// HookTimeout is how long a hook may run before it is killed, with
	// its process group, so that a hung one cannot pile up.
	HookTimeout = 30 * time.Second
	// HookGrace is how long a stopping daemon leaves the hooks running
	// to finish before it kills them.
	HookGrace = 2 * time.Second
	// hookOutputMax bounds the output of a run that is logged.
	hookOutputMax = 4 << 10
	// hookDrain is how long the output is read after the hook exited: a
	// child it left running may hold the pipe open.
	hookDrain = time.Second
	// HookRetry is how long after a failed run (an exit status other
	// than 0, a signal, killed at the timeout, could not start) the same
	// change is delivered again; twice as long after each further
	// failure in a row, but never more than HookRetryMax. The first
	// retry comes as long after the failure as the run may take
	// (HookTimeout): a broker that is slow is not asked faster than it
	// answers, and a WAN whose default route comes a moment after its
	// address is over by then. The cap bounds how long a broker that was
	// down keeps the old address once it is back, at 6 runs (and warn
	// lines) an hour while it is not; it is not the resync interval,
	// which is about the kernel, can be set as short as a second, and
	// would have the broker asked as often.
	HookRetry    = 30 * time.Second
	HookRetryMax = 10 * time.Minute
	// HookSettle is how long a tunnel's hook waits after a move before
	// it runs, a later move or up standing for it: a DHCP renew that
	// deletes the old address before it adds the new one leaves a cable
	// modem's access address alone on the WAN for a moment, the tunnel
	// moves there and back, and a tester's broker was told that address
	// first, at every renew. The tunnel itself moves at once.
	HookSettle = 2 * time.Second
	// HookSettleMax is how long a move's call waits at most while the
	// last converge could only guess the tunnel's local address (no
	// route by its device to the remote: desired.TunnelStatus.LocalGuess)
	// or found its packets to the remote going into itself (Looped): a
	// tester's WAN had its default route back 3 s after its address, and
	// the broker was told the modem's address the tunnel had meanwhile.
	// Past it, the hook runs with what there is.
	HookSettleMax = 30 * time.Second
)

// The reasons a hook runs for (TUNNELD_REASON).
const (
	hookUp     = "up"
	hookMoved  = "moved"
	hookStart  = "start"
	hookReload = "reload"
)

// hookPath is the PATH a hook runs with.
const hookPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// hookCall is one run a tunnel's hook is due for: why, and the tunnel's
// outer addresses after the change (and before it, when it moved).
type hookCall struct {
	Tunnel              string
	Reason              string
	Local, Remote       netip.Addr
	OldLocal, OldRemote netip.Addr
}

// hookCalls decides which tunnels' hooks a batch of applied operations
// calls for, in the order of the operations: a tunnel set up (created, or
// up again: LinkUp) is "up"; one whose local or remote changed in place
// (LinkChange) while it was up, and stays up, is "moved", also when it was
// set up in the same batch. A change of a tunnel that is down, or goes
// down, calls for nothing (the LinkUp that follows does); nor does any
// other operation.
func hookCalls(applied []plan.Op) []hookCall {
	var out []hookCall
	at := map[string]int{}
	put := func(c hookCall) {
		if i, ok := at[c.Tunnel]; ok {
			if out[i].Reason == hookMoved {
				return // the move says more than the LinkUp after it
			}
			out[i] = c
			return
		}
		at[c.Tunnel] = len(out)
		out = append(out, c)
	}
	up := map[string]bool{}
	for _, op := range applied {
		if op.Kind == plan.LinkUp && op.Link != nil {
			up[op.Link.Name] = true
		}
	}
	for _, op := range applied {
		switch {
		case op.Link == nil:
		case op.Kind == plan.LinkUp:
			put(hookCall{Tunnel: op.Link.Name, Reason: hookUp, Local: op.Link.Local, Remote: op.Link.Remote})
		case op.Kind == plan.LinkChange && op.Old != nil && op.Link.Up && (op.Old.Up || up[op.Link.Name]) &&
			(op.Old.Local != op.Link.Local || op.Old.Remote != op.Link.Remote):
			put(hookCall{Tunnel: op.Link.Name, Reason: hookMoved, Local: op.Link.Local, Remote: op.Link.Remote,
				OldLocal: op.Old.Local, OldRemote: op.Old.Remote})
		}
	}
	return out
}

// then is the one run that stands for c, not yet run, and next, which
// came after it: next's addresses (the broker must end with the last
// ones); a move keeps the addresses from before the first move, and a
// tunnel that came up stays "up".
func (c hookCall) then(next hookCall) hookCall {
	switch {
	case c.Reason == hookMoved && next.Reason == hookMoved:
		next.OldLocal, next.OldRemote = c.OldLocal, c.OldRemote
	case c.Reason != hookMoved && next.Reason == hookMoved:
		next.Reason, next.OldLocal, next.OldRemote = c.Reason, netip.Addr{}, netip.Addr{}
	}
	return next
}

// toULA says why a move's call waits when it took the tunnel from a
// global IPv6 address to a unique local one (fc00::/7) while its remote
// is global: a renumbering whose new prefix comes after the old one goes
// leaves the upstream router's ULA alone on the WAN, and a tester's
// broker was told it, then told it as the old address at the next run;
// "" otherwise. A WAN that only has a ULA (NAT66 upstream) moves there
// once; its run waits HookSettleMax.
func toULA(c hookCall) string {
	global := func(a netip.Addr) bool { return a.Is6() && a.IsGlobalUnicast() && !a.IsPrivate() }
	if c.Reason != hookMoved || !c.Local.Is6() || !c.Local.IsPrivate() || !global(c.OldLocal) || !global(c.Remote) {
		return ""
	}
	return "it moved from " + c.OldLocal.String() + " to the unique local address " + c.Local.String() + ": a new prefix may come"
}

// env is the hook's environment for c.
func (c hookCall) env() []string {
	env := []string{hookPath, "TUNNELD_TUNNEL=" + c.Tunnel, "TUNNELD_REASON=" + c.Reason,
		"TUNNELD_LOCAL=" + addrString(c.Local), "TUNNELD_REMOTE=" + addrString(c.Remote)}
	if c.Reason == hookMoved {
		env = append(env, "TUNNELD_OLD_LOCAL="+addrString(c.OldLocal), "TUNNELD_OLD_REMOTE="+addrString(c.OldRemote))
	}
	return env
}

// addrString is a, or "" for the zero address (any).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// HookRun is the last run of a tunnel's hook, for `tunneld status`.
type HookRun struct {
	Path   string
	Reason string
	// At is when the run ended.
	At time.Time
	// Status is how it ended: "exit status 0", "exit status 1", "killed
	// after 30s", "cannot start: …".
	Status string
	// Try is which run of the same change it was: 1 the first, 2 the
	// first retry after it failed, … (0 from a daemon before retries).
	Try int `json:",omitempty"`
	// Retry is when the change is delivered again, the run having
	// failed; zero when it is not: it worked, or the retry was dropped
	// (a newer run stands for it, the tunnel went down, a reload changed
	// the hook).
	Retry time.Time `json:",omitzero"`
	// Running is when a run of the hook started that has not ended yet,
	// for the reason RunningFor ("up", "moved"); zero when none runs.
	// The fields above are then the run before it (zero when there was
	// none): a tester saw "its hook failed" all through the 30 s of the
	// run that stood for it.
	Running    time.Time `json:",omitzero"`
	RunningFor string    `json:",omitempty"`
	// MovedBack says that the failed run's change was undone since, the
	// tunnel back where the run before it put it (the broker has that):
	// no run is due.
	MovedBack bool `json:",omitempty"`
}

// HookWorked is the Status of a run that worked: its exit status 0.
const HookWorked = "exit status 0"

// hookStopper is a timer armed for a retry (a *time.Timer).
type hookStopper interface{ Stop() bool }

// hookRetry is a change whose run failed and that is due again.
type hookRetry struct {
	call hookCall
	// try is the run of the change that failed last.
	try   int
	timer hookStopper
	// since is, for a call that waits to settle (hooks.settling), when
	// its first move came, and waitSaid whether its waiting on for an
	// unsettled tunnel was logged.
	since    time.Time
	waitSaid bool
}

// hooks runs the tunnels' hooks in the background, at most one run per
// tunnel at a time.
type hooks struct {
	log     *logfmt.Logger
	now     func() time.Time
	timeout time.Duration
	// drain is hookDrain (tests shorten it).
	drain time.Duration
	// ran is told about every run that ended, and again when its retry
	// is dropped; forget about a tunnel whose hook was removed. Both are
	// called with mu held: they must not call back.
	ran    func(tunnel string, r HookRun)
	forget func(tunnel string)
	// after arms a timer that calls f after d (time.AfterFunc; tests
	// fire the timers themselves).
	after func(d time.Duration, f func()) hookStopper
	// retry and retryMax are HookRetry and HookRetryMax (Deps.HookRetry
	// overrides retry).
	retry, retryMax time.Duration
	// settle is how long a move's call waits (HookSettle; 0: none, as in
	// the hooks' own tests), and settleMax how long at most while the
	// tunnel is unsettled (HookSettleMax).
	settle, settleMax time.Duration

	mu sync.Mutex
	// paths are the configured hooks by tunnel.
	paths map[string]string
	// busy holds the tunnels whose hook is running, each with the call
	// due after it (nil: none).
	busy map[string]*hookCall
	// settling hold the calls that wait for the tunnel's address to
	// settle (settle), by tunnel.
	settling map[string]*hookRetry
	// unsettled holds the tunnels whose local address the last converge
	// could only guess, or whose packets to the remote loop, each with
	// why (tunnelsUnsettled): a call of theirs waits on.
	unsettled map[string]string
	// retries hold the changes due again after a failed run, by tunnel:
	// never one whose hook is running (a failed run with a call due
	// after it has that call deliver its change, see then).
	retries map[string]*hookRetry
	// last are the last runs, as told to ran.
	last map[string]HookRun
	// down holds the tunnels the last converge left down: a failed run
	// of theirs is not tried again (the LinkUp that brings the tunnel
	// back runs the hook). A call for one takes it out.
	down map[string]bool
	// stopping: the daemon stops, no run is started any more.
	stopping bool
	wg       sync.WaitGroup

	procMu sync.Mutex
	// procs are the process groups of the runs under way, each with why
	// it was killed ("" while it was not).
	procs map[int]string
	// killing: the grace is over, what runs is killed.
	killing bool
}

func newHooks(log *logfmt.Logger, now func() time.Time, timeout time.Duration, ran func(string, HookRun)) *hooks {
	return &hooks{log: log, now: now, timeout: timeout, drain: hookDrain, ran: ran, forget: func(string) {},
		after: func(d time.Duration, f func()) hookStopper { return time.AfterFunc(d, f) }, retry: HookRetry, retryMax: HookRetryMax, settleMax: HookSettleMax,
		paths: map[string]string{}, busy: map[string]*hookCall{}, retries: map[string]*hookRetry{}, settling: map[string]*hookRetry{}, unsettled: map[string]string{}, last: map[string]HookRun{},
		down: map[string]bool{}, procs: map[int]string{}}
}

// configure takes the hooks of a configuration: the runs that start from
// now on use them; a run under way is left to finish. A retry of a hook
// that was removed or is another program is dropped (the new one runs
// for the reload, see flushHooks), and the last run of a removed one is
// forgotten. It returns the tunnels whose hook is new or another program
// than before.
func (h *hooks) configure(c *config.Config) map[string]bool {
	paths := map[string]string{}
	for _, t := range c.Tunnels {
		if t.Hook != "" {
			paths[t.Name] = t.Hook
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := map[string]bool{}
	for name, p := range paths {
		if h.paths[name] != p {
			changed[name] = true
		}
	}
	names := make([]string, 0, len(h.paths))
	for name := range h.paths {
		names = append(names, name)
	}
	slices.Sort(names) // as slices.Sorted(maps.Keys(…)), without their iterators
	for _, name := range names {
		switch {
		case paths[name] == "":
			h.dropRetry(name, "the hook was removed")
			delete(h.last, name)
			h.forget(name)
		case changed[name]:
			h.dropRetry(name, "the hook was changed")
		}
	}
	h.paths = paths
	return changed
}

// tunnelsDown takes the tunnels a converge left down: their retries are
// dropped, and a run of theirs that fails is not tried again.
func (h *hooks) tunnelsDown(names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.down)
	for _, name := range names {
		h.down[name] = true
		h.dropRetry(name, "the tunnel is down")
		// The LinkUp that brings it back runs the hook.
		if sc, ok := h.settling[name]; ok {
			sc.timer.Stop()
			delete(h.settling, name)
		}
	}
}

// tunnelsUnsettled takes the tunnels whose local address the last
// converge could only guess, or whose packets to the remote loop, each
// with why (the caller's map, which it no longer uses): a move's call of
// theirs waits on past HookSettle, up to HookSettleMax from the first
// move, until a converge finds the tunnel settled.
func (h *hooks) tunnelsUnsettled(why map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unsettled = why
}

// dropRetry drops the retry due for tunnel, if there is one, saying why
// in the log. The caller holds mu.
func (h *hooks) dropRetry(tunnel, why string) {
	rt, ok := h.retries[tunnel]
	if !ok {
		return
	}
	rt.timer.Stop()
	delete(h.retries, tunnel)
	h.log.Info(fmt.Sprintf("tunnel %q: hook retry dropped: %s", tunnel, why), "reason", rt.call.Reason, "tries", rt.try)
	if r, ok := h.last[tunnel]; ok {
		r.Retry = time.Time{}
		h.show(tunnel, r)
	}
}

// show records r as tunnel's last run and tells ran. The caller holds mu.
func (h *hooks) show(tunnel string, r HookRun) {
	h.last[tunnel] = r
	h.ran(tunnel, r)
}

// has reports whether tunnel has a hook.
func (h *hooks) has(tunnel string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paths[tunnel] != ""
}

// call starts a run of the hook of each call's tunnel, if it has one; a
// tunnel whose hook is running gets one run after it, with the latest
// values (see then). A call for a tunnel whose last run failed and is due
// again stands for that run too: the retry is dropped, and the call
// delivers the failed change's old addresses with its new ones (see
// then). It never waits.
func (h *hooks) call(calls ...hookCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range calls {
		if h.stopping || h.paths[c.Tunnel] == "" {
			continue
		}
		// A move waits for the address to settle, and so does a
		// tunnel coming up that the last converge left down (a bound
		// tunnel whose WAN's cable flaps: a tester's hook ran at every
		// flap, a failing one too, past its back-off); a call that
		// comes meanwhile joins it (then) and waits with it. Going
		// down again drops the wait (tunnelsDown).
		old, settling := h.settling[c.Tunnel]
		if h.settle > 0 && (c.Reason == hookMoved || c.Reason == hookUp && h.down[c.Tunnel] || settling) {
			if rt, ok := h.retries[c.Tunnel]; ok {
				// It stands for the failed change, as a call
				// delivered does: a retry due while it waits
				// told a tester's broker the old address.
				c = rt.call.then(c)
				h.dropRetry(c.Tunnel, "a newer run stands for it")
			}
			// A new wait each time: the old one's timer, if it fired
			// meanwhile, finds itself replaced (settled).
			sc := &hookRetry{call: c, since: h.now()}
			if settling {
				old.timer.Stop()
				sc.call, sc.since, sc.waitSaid = old.call.then(c), old.since, old.waitSaid
			}
			h.settling[c.Tunnel] = sc
			tunnel := c.Tunnel
			sc.timer = h.after(h.settle, func() { h.settled(tunnel, sc) })
			continue
		}
		h.deliver(c)
	}
}

// settled delivers the call that waited for tunnel's address to settle,
// unless a later one took its place (sc is no longer the tunnel's) or the
// hooks stop.
func (h *hooks) settled(tunnel string, sc *hookRetry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settling[tunnel] != sc || h.stopping {
		return
	}
	c := sc.call
	why := h.unsettled[tunnel]
	if why == "" {
		why = toULA(c)
	}
	if why != "" && c.Reason == hookMoved {
		if waited := h.now().Sub(sc.since); waited < h.settleMax {
			if !sc.waitSaid {
				sc.waitSaid = true
				h.log.Info(fmt.Sprintf("tunnel %q: hook waits: %s", tunnel, why), "local", addrString(c.Local), "for", (h.settleMax - waited).Round(time.Second))
			}
			sc.timer = h.after(h.settle, func() { h.settled(tunnel, sc) })
			return
		}
		h.log.Warn(fmt.Sprintf("tunnel %q: hook runs although %s", tunnel, why), "local", addrString(c.Local), "waited", h.settleMax)
	}
	delete(h.settling, tunnel)
	if c.Reason == hookMoved && c.Local == c.OldLocal && c.Remote == c.OldRemote {
		// Back where it was (a renew that kept the lease): the broker
		// has it.
		h.log.Info(fmt.Sprintf("tunnel %q: hook not run: the tunnel moved back to where it was", tunnel), "local", addrString(c.Local))
		if r, ok := h.last[tunnel]; ok && r.Status != HookWorked && r.Running.IsZero() && r.Retry.IsZero() {
			// The failed run's change is undone: its retry, dropped
			// for this call, is not due either (a tester's status
			// said the hook failed until the next change).
			r.MovedBack = true
			h.show(tunnel, r)
		}
		return
	}
	if h.paths[tunnel] != "" {
		h.deliver(c)
	}
}

// deliver starts the run of c, or has it run after the one under way
// (see call). The caller holds mu.
func (h *hooks) deliver(c hookCall) {
	delete(h.down, c.Tunnel)
	if rt, ok := h.retries[c.Tunnel]; ok {
		c = rt.call.then(c)
		h.dropRetry(c.Tunnel, "a newer run stands for it")
	}
	if due, running := h.busy[c.Tunnel]; running {
		if due != nil {
			c = due.then(c)
		}
		h.busy[c.Tunnel] = &c
		return
	}
	h.busy[c.Tunnel] = nil
	h.wg.Add(1)
	go h.runs(c, 1)
}

// runs runs c, the try-th run of its change, then the call due after it
// until there is none, each with the tunnel's hook as configured when it
// starts.
func (h *hooks) runs(c hookCall, try int) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		path := h.paths[c.Tunnel]
		h.mu.Unlock()
		var e hookEnd
		if path != "" {
			h.mu.Lock()
			h.started(path, c)
			h.mu.Unlock()
			start := time.Now()
			e.status, e.out, e.ok = h.exec(path, c)
			e.took = time.Since(start)
		}
		h.mu.Lock()
		due := h.ended(path, c, try, e)
		h.mu.Unlock()
		if due == nil {
			return
		}
		c, try = *due, 1
	}
}

// started shows that a run of the hook at path for c began: the last
// run's facts with Running set, its retry dropped (this run stands for
// it). The caller holds mu.
func (h *hooks) started(path string, c hookCall) {
	r := h.last[c.Tunnel]
	if r.Path == "" {
		r.Path = path
	}
	r.Running, r.RunningFor, r.Retry = h.now(), c.Reason, time.Time{}
	h.show(c.Tunnel, r)
}

// hookEnd is how a run ended (see exec), and how long it took.
type hookEnd struct {
	status, out string
	ok          bool
	took        time.Duration
}

// ended takes the end of the try-th run of c's change with the program
// at path ("" when the tunnel had no hook any more: there was no run) and
// returns the call to run next for the tunnel, nil for none (its hook is
// then no longer busy). A run that failed is delivered again: by the
// call due after it, which stands for both (see then), or else by a
// retry after a backoff (see retryIn), unless the daemon stops, the
// tunnel is down, or its hook was removed or changed meanwhile. The run
// is logged, at warn level when it failed, and its facts shown unless its
// hook was removed. The caller holds mu.
func (h *hooks) ended(path string, c hookCall, try int, e hookEnd) *hookCall {
	due := h.busy[c.Tunnel]
	failed := path != "" && !e.ok
	switch {
	case h.stopping:
		due = nil
	case due != nil && failed:
		merged := c.then(*due)
		due = &merged
	}
	if due == nil {
		delete(h.busy, c.Tunnel)
	} else {
		h.busy[c.Tunnel] = nil
	}
	if path == "" {
		return due
	}
	r := HookRun{Path: path, Reason: c.Reason, At: h.now(), Status: e.status, Try: try}
	kv := []any{"reason", c.Reason}
	if try > 1 {
		kv = append(kv, "try", try)
	}
	kv = append(kv, "took", e.took)
	if failed && due == nil && !h.stopping && !h.down[c.Tunnel] && h.paths[c.Tunnel] == path {
		d := h.retryIn(try)
		rt := &hookRetry{call: c, try: try}
		rt.timer = h.after(d, func() { h.retryDue(c.Tunnel, rt) })
		h.retries[c.Tunnel] = rt
		r.Retry = r.At.Add(d)
		kv = append(kv, "retry_in", d)
	}
	if e.out != "" {
		kv = append(kv, "output", e.out)
	}
	msg := fmt.Sprintf("tunnel %q: hook %s: %s", c.Tunnel, path, e.status)
	if e.ok {
		h.log.Info(msg, kv...)
	} else {
		h.log.Warn(msg, kv...)
	}
	if h.paths[c.Tunnel] != "" {
		h.show(c.Tunnel, r)
	}
	return due
}

// retryIn is how long after the try-th run of a change failed it is run
// again: retry, doubled for each try before, up to retryMax.
func (h *hooks) retryIn(try int) time.Duration {
	d := h.retry << min(try-1, 20)
	if d <= 0 || d > h.retryMax {
		return h.retryMax
	}
	return d
}

// retryDue runs the change of rt again, unless its retry was dropped
// meanwhile.
func (h *hooks) retryDue(tunnel string, rt *hookRetry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.retries[tunnel] != rt || h.stopping {
		return
	}
	delete(h.retries, tunnel)
	// Not busy: a call would have dropped the retry, and a retry is
	// armed only when the tunnel's hook is no longer busy.
	h.busy[tunnel] = nil
	h.wg.Add(1)
	go h.runs(rt.call, rt.try+1)
}

// exec starts path in a process group of its own, with c's environment,
// stdin /dev/null and stdout and stderr a pipe, and waits for it; the
// group is killed after the timeout, or when the daemon stops. It returns
// how it ended, the start of its output, and whether it exited with
// status 0.
func (h *hooks) exec(path string, c hookCall) (status, out string, ok bool) {
	closeInherited()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return "cannot start: " + err.Error(), "", false
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return "cannot start: " + err.Error(), "", false
	}
	defer r.Close()
	// The processes are registered under their own lock, which the loop
	// never takes: it does not wait for a fork.
	h.procMu.Lock()
	if h.killing {
		h.procMu.Unlock()
		w.Close()
		return "not started: the daemon is stopping", "", false
	}
	p, err := os.StartProcess(path, []string{path}, &os.ProcAttr{Dir: "/", Env: c.env(), Files: []*os.File{null, w, w},
		Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err == nil {
		h.procs[p.Pid] = ""
	}
	h.procMu.Unlock()
	w.Close()
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		// ENOENT for a file that exists is its #! interpreter missing,
		// ENOEXEC a script without #!: the kernel's words name neither.
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOEXEC) {
			if why, _ := HookExecProblem(path); why != "" {
				return "cannot start: " + why, "", false
			}
		}
		return "cannot start: " + err.Error(), "", false
	}
	output := make(chan string, 1)
	go func() { output <- readBounded(r, hookOutputMax) }()
	timer := time.AfterFunc(h.timeout, func() { h.kill(p.Pid, fmt.Sprintf("killed after %s", h.timeout)) })
	st, err := p.Wait()
	timer.Stop()
	h.procMu.Lock()
	killed := h.procs[p.Pid]
	delete(h.procs, p.Pid)
	h.procMu.Unlock()
	// A child the hook left running may hold the pipe open.
	_ = r.SetReadDeadline(time.Now().Add(h.drain))
	out = <-output
	switch {
	case err != nil:
		return err.Error(), out, false
	case killed != "":
		return killed, out, false
	}
	return st.String(), out, st.Success()
}

// HookExecProblem says why the kernel would refuse to exec the file at
// path, a hook, judged by its first line: why ("its interpreter /bin/bash
// does not exist", "no #! line") and what to do about it. Both are ""
// when the file starts with #! and an interpreter that is there and
// executable, or is an ELF binary, or cannot be read (the caller says
// that). tunneld check warns with it, and the daemon names it where the
// kernel's ENOENT would name a file that exists, or ENOEXEC nothing.
func HookExecProblem(path string) (why, fix string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	// The kernel reads the #! line from the file's first 256 bytes.
	buf := make([]byte, 256)
	n, _ := io.ReadFull(f, buf)
	head := string(buf[:n])
	if strings.HasPrefix(head, "\x7fELF") {
		return "", ""
	}
	line, ok := strings.CutPrefix(head, "#!")
	if !ok {
		return "no #! line", "start it with #!/bin/sh: the kernel runs a script only by its #! line"
	}
	line, _, _ = strings.Cut(line, "\n")
	// The interpreter is the first word: the kernel splits at
	// spaces and tabs.
	for line != "" && (line[0] == ' ' || line[0] == '\t') {
		line = line[1:]
	}
	interp := line
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		interp = line[:i]
	}
	switch {
	case strings.HasSuffix(interp, "\r"):
		return "its #! line ends in a carriage return (Windows line ends): the kernel looks for " + strconv.Quote(interp),
			`convert it to Unix line ends: sed -i 's/\r$//' ` + path
	case interp == "":
		return "its #! line names no interpreter", "start it with #!/bin/sh"
	case !strings.HasPrefix(interp, "/"):
		return "its interpreter " + interp + " is not an absolute path", "give the interpreter's full path: #!/bin/sh"
	}
	fi, err := os.Stat(interp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "its interpreter " + interp + " does not exist", "OpenWrt has /bin/sh; change the #! line"
	case err != nil:
		return "", ""
	case fi.IsDir():
		return "its interpreter " + interp + " is a directory", "change the #! line"
	case unix.Access(interp, unix.X_OK) != nil:
		return "its interpreter " + interp + " is not executable", "change the #! line"
	}
	return "", ""
}

// kill kills the process group of pid, a hook's, if it is still running,
// and notes why.
func (h *hooks) kill(pid int, why string) {
	h.procMu.Lock()
	defer h.procMu.Unlock()
	if _, running := h.procs[pid]; running {
		h.procs[pid] = why
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// readBounded reads r to its end (or an error: the deadline) and returns
// the first limit bytes, saying how many more there were.
func readBounded(r io.Reader, limit int) string {
	var b strings.Builder
	buf := make([]byte, 512)
	more := 0
	for {
		n, err := r.Read(buf)
		take := min(n, limit-b.Len())
		b.Write(buf[:take])
		more += n - take
		if err != nil {
			break
		}
	}
	s := strings.TrimRight(b.String(), "\n")
	if more > 0 {
		s += fmt.Sprintf("\n(%d more bytes)", more)
	}
	return s
}

// stop ends the hooks: no run starts any more, and the runs under way get
// grace to end before they are killed with their process groups.
func (h *hooks) stop(grace time.Duration) {
	h.mu.Lock()
	h.stopping = true
	for _, rt := range h.retries {
		rt.timer.Stop()
	}
	clear(h.retries)
	for _, sc := range h.settling {
		sc.timer.Stop()
	}
	clear(h.settling)
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	h.procMu.Lock()
	h.killing = true
	pids := slices.Collect(maps.Keys(h.procs))
	h.procMu.Unlock()
	for _, pid := range pids {
		h.kill(pid, "killed: the daemon is stopping")
	}
	<-done
}

// runHooks hands the hook calls of a batch of applied operations to the
// hooks, or, during the first converge and a reload's, keeps them for
// flushHooks.
func (dm *Daemon) runHooks(applied []plan.Op) {
	calls := hookCalls(applied)
	if dm.holdHooks {
		dm.heldCalls = append(dm.heldCalls, calls...)
		return
	}
	dm.hooks.call(calls...)
}

// flushHooks runs, after the first converge (reason "start") or a
// reload's (reason "reload"), the hook of every tunnel that has one, is
// up and is in only (all of them when only is nil): for the reason that
// converge gave it, or the one given. At the start the address may have
// changed while no daemon ran; at a reload the hook is new or another
// program, which has not told the broker yet.
func (dm *Daemon) flushHooks(reason string, only map[string]bool) {
	dm.holdHooks = false
	calls := map[string]hookCall{}
	for _, c := range dm.heldCalls {
		calls[c.Tunnel] = c
	}
	dm.heldCalls = nil
	dm.mu.Lock()
	tunnels := dm.facts.Tunnels
	dm.mu.Unlock()
	var out []hookCall
	for _, t := range tunnels {
		if !t.Up || !dm.hooks.has(t.Name) {
			continue
		}
		c, ok := calls[t.Name]
		if !ok {
			if only != nil && !only[t.Name] {
				continue
			}
			c = hookCall{Tunnel: t.Name, Reason: reason}
			if i, found := model.LinkNamed(dm.last.Have.Links, t.Name); found {
				c.Local, c.Remote = dm.last.Have.Links[i].Local, dm.last.Have.Links[i].Remote
			}
		}
		out = append(out, c)
	}
	dm.hooks.call(out...)
}

// hookRan records a hook's run in the facts. The map is replaced, not
// changed: a copy of the facts given out holds the old one. The hooks call
// it with their lock held: the daemon never calls them with dm.mu held.
func (dm *Daemon) hookRan(tunnel string, r HookRun) {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	runs := maps.Clone(dm.facts.Hooks)
	if runs == nil {
		runs = map[string]HookRun{}
	}
	runs[tunnel] = r
	dm.facts.Hooks = runs
}

// hookForget removes the last run of a tunnel whose hook was removed
// from the facts: status would say forever that it failed.
func (dm *Daemon) hookForget(tunnel string) {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	if _, ok := dm.facts.Hooks[tunnel]; !ok {
		return
	}
	runs := maps.Clone(dm.facts.Hooks)
	delete(runs, tunnel)
	dm.facts.Hooks = runs
}
