package daemon

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
)

// Facts is what the running daemon knows that the kernel does not say:
// served to `tunneld status` over the status socket.
type Facts struct {
	Started    time.Time
	LastReload time.Time `json:",omitzero"`
	// PID is the daemon's process id, which status names in the
	// command that reloads it (several daemons in their namespaces
	// make `pidof tunneld` ambiguous).
	PID int `json:",omitempty"`
	// ConfigFile is the file of the configuration the daemon runs, and
	// ConfigSum the hash of the content it loaded (config.Sum): a
	// file edited since, and not reloaded, has another.
	ConfigFile   string `json:",omitempty"`
	ConfigSum    string `json:",omitempty"`
	LastConverge time.Time
	Converges    int
	// LastError is the latest failure that still holds, and LastErrorAt
	// when it came: a convergence that failed, none having worked since;
	// a reload that was refused, none having been taken since; a lookup
	// of a name that has not answered since. "" when none holds.
	LastError   string    `json:",omitempty"`
	LastErrorAt time.Time `json:",omitzero"`
	// Cleared is the failure last over, while none holds (LastError is
	// then ""): that something failed a moment ago and works again is
	// worth an admin's knowing, and a busy log may no longer have it.
	Cleared *ClearedError `json:",omitempty"`
	// Tunnels are the statuses of the last convergence.
	Tunnels []desired.TunnelStatus
	Notes   []string `json:",omitempty"`
	// LastChange is when each tunnel's link was last changed.
	LastChange map[string]string `json:",omitempty"`
	// Held are objects whose repairs are held back, by name (what a
	// status before Holds reads); Holds the same with when each hold
	// ends and the tunnel its object belongs to.
	Held  []string `json:",omitempty"`
	Holds []Hold   `json:",omitempty"`
	// Resolved are the current DNS answers of the peers given by name.
	Resolved map[string][]string `json:",omitempty"`
	// Kept are, by name, the addresses of Resolved kept from an earlier
	// answer: the last one had no address of their family, which one
	// of the name's tunnels needs (the name resolves to the other family
	// only), and a tunnel keeps its last good answer then as it does
	// when a lookup fails.
	Kept map[string][]string `json:",omitempty"`
	// Failing are, by name, the error of its last lookup while its
	// lookups fail (or answer with no address of a family its tunnels
	// need): the name's tunnels keep its last good answer, if any,
	// meanwhile.
	Failing map[string]string `json:",omitempty"`
	// Hooks are the last run of each tunnel's hook.
	Hooks map[string]HookRun `json:",omitempty"`
	// Unmarked are, by name, the indexes of the tunnels the daemon
	// keeps as its own without tunneld's alias at its last convergence
	// (someone changed it, and its repair is held back): status, a
	// process of its own, takes them for tunneld's by them
	// (kernel.Keeper). An ownership tester's status called such a
	// tunnel down and someone else's while the daemon routed through it.
	Unmarked map[string]int `json:",omitempty"`
}

// Facts returns a copy of the current facts.
func (dm *Daemon) Facts() Facts {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	f := dm.facts
	// Its own maps and tunnels: the loop changes dm.facts' while the
	// copy is written to the socket, and holdOver changes the copy's.
	f.Unmarked = maps.Clone(f.Unmarked)
	f.Tunnels = slices.Clone(f.Tunnels)
	// A hold that ended since the last converge is over, whether or not
	// the loop's converge at its end has run yet.
	now := dm.d.Now()
	f.Held, f.Holds = nil, nil
	for _, h := range dm.facts.Holds {
		if now.Before(h.Until) {
			// In the wall clock of now (rebase), in the held
			// tunnel's reason too.
			until := rebase(now, h.Until)
			for i, t := range f.Tunnels {
				if t.Name == h.Tunnel && t.Reason == HeldReason(h.Until) {
					f.Tunnels[i].Reason = HeldReason(until)
				}
			}
			h.Until = until
			f.Holds = append(f.Holds, h)
			f.Held = append(f.Held, h.Object)
			continue
		}
		// Nor is a held tunnel's reason, which that converge gives
		// it anew: until then it is being repaired.
		holdOver(f.Tunnels, h)
	}
	if f.Tunnels == nil {
		// [] in the JSON, before the first convergence and without
		// tunnels, as for a list: not null.
		f.Tunnels = []desired.TunnelStatus{}
	}
	// A tunnel's last change too (a tester's status gave it in 1970).
	f.LastChange = nil
	for n, t := range dm.changedAt {
		if f.LastChange == nil {
			f.LastChange = make(map[string]string, len(dm.changedAt))
		}
		f.LastChange[n] = rebase(now, t).Format(changeFormat)
	}
	f.Started, f.LastReload, f.LastConverge, f.LastErrorAt = rebase(now, f.Started), rebase(now, f.LastReload), rebase(now, f.LastConverge), rebase(now, f.LastErrorAt)
	if f.Cleared != nil {
		c := *f.Cleared
		c.At, c.Cleared = rebase(now, c.At), rebase(now, c.Cleared)
		f.Cleared = &c
	}
	if f.Hooks != nil {
		f.Hooks = maps.Clone(f.Hooks)
		for n, r := range f.Hooks {
			r.At, r.Retry, r.Running = rebase(now, r.At), rebase(now, r.Retry), rebase(now, r.Running)
			f.Hooks[n] = r
		}
	}
	f.Resolved = map[string][]string{}
	for n, st := range dm.names {
		for _, a := range st.addrs {
			f.Resolved[n] = append(f.Resolved[n], a.String())
		}
		if st.failing != "" {
			if f.Failing == nil {
				f.Failing = map[string]string{}
			}
			f.Failing[n] = st.failing
		}
		for _, a := range st.kept {
			if f.Kept == nil {
				f.Kept = map[string][]string{}
			}
			f.Kept[n] = append(f.Kept[n], a.String())
		}
	}
	return f
}

// changeFormat is how Facts.LastChange gives a time.
const changeFormat = "2006-01-02T15:04:05Z07:00"

// rebase gives t, a time this process took (with its monotonic
// reading), in the wall clock of now: a router without a clock, whose
// time NTP steps by years after the boot, showed a hold's end, the
// daemon's start and a hook's retry in 1970. A time without a monotonic
// reading (zero, or another clock's) stays as it is.
func rebase(now, t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return now.Add(t.Sub(now))
}

// Hold is an object whose repairs are held back: something else kept
// changing it (see countRepair).
type Hold struct {
	// Object names it as the log does (`route 10.9.0.0/16 table main`).
	Object string
	// Tunnel is the configured tunnel it belongs to: the tunnel itself,
	// an address on it, a route through it ("" for none).
	Tunnel string `json:",omitempty"`
	// Until is when the daemon repairs it again.
	Until time.Time
}

// holdOver says, in the reason of h's tunnel if h holds it back
// (HeldReason), that the hold is over and the tunnel being repaired.
func holdOver(tunnels []desired.TunnelStatus, h Hold) {
	if h.Object != (model.Link{Name: h.Tunnel}).ID() {
		return
	}
	for i, t := range tunnels {
		if t.Name == h.Tunnel && t.Reason == HeldReason(h.Until) {
			tunnels[i].Reason = "the hold ended at " + h.Until.Format("2006-01-02 15:04:05") + ": being repaired"
		}
	}
}

// sortHolds sorts holds by object, with sort.Sort: the order
// slices.SortFunc gives (see model.SortForeignRules) without a sort
// instantiated for Hold alone.
func sortHolds(holds []Hold) {
	if len(holds) > 1 {
		sort.Sort(holdOrder(holds))
	}
}

// holdOrder is sortHolds' sort.Interface.
type holdOrder []Hold

func (s holdOrder) Len() int           { return len(s) }
func (s holdOrder) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s holdOrder) Less(i, j int) bool { return s[i].Object < s[j].Object }

// showHolds puts the holds that last beyond now into the facts, by
// object. The caller holds dm.mu.
func (dm *Daemon) showHolds(now time.Time) {
	f := &dm.facts
	f.Held, f.Holds = nil, nil
	for obj, h := range dm.held {
		if !now.Before(h.until) {
			// Over: the next repair of it goes ahead (hold).
			continue
		}
		f.Holds = append(f.Holds, Hold{Object: obj, Tunnel: h.tunnel, Until: h.until})
	}
	sortHolds(f.Holds)
	for _, h := range f.Holds {
		f.Held = append(f.Held, h.Object)
	}
}

// ClearedError is a failure that is over.
type ClearedError struct {
	Err string
	// At is when it came (its last time), Cleared when what failed
	// worked again, and By what did: "a convergence", "a reload", "an
	// answer for NAME".
	At, Cleared time.Time
	By          string
}

// What a failure is of, and so what ends it (the key of failures).
const (
	failedConverge = "converge"
	failedReload   = "reload"
	failedLookup   = "lookup " // + the name
)

// failure is a failure that still holds.
type failure struct {
	err string
	at  time.Time
}

// setError is failed, now, for a caller that does not hold dm.mu.
func (dm *Daemon) setError(what string, err error) {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	dm.failed(what, err.Error(), dm.d.Now())
}

// failed notes the failure of what (failedConverge, …) at at, which
// holds until worked(what) ends it. The caller holds dm.mu.
func (dm *Daemon) failed(what, err string, at time.Time) {
	if dm.failures == nil {
		dm.failures = map[string]failure{}
	}
	dm.failures[what] = failure{err, at}
	dm.showFailures()
}

// worked ends the failure of what, if one holds: by (a convergence,
// …) worked at at. The caller holds dm.mu.
func (dm *Daemon) worked(what, by string, at time.Time) {
	f, ok := dm.failures[what]
	if !ok {
		return
	}
	delete(dm.failures, what)
	dm.cleared = &ClearedError{Err: f.err, At: f.at, Cleared: at, By: by}
	dm.showFailures()
}

// showFailures puts the latest failure that holds into the facts, or,
// when none does, the one last cleared. The caller holds dm.mu.
func (dm *Daemon) showFailures() {
	f := &dm.facts
	f.LastError, f.LastErrorAt, f.Cleared = "", time.Time{}, nil
	var last string
	for what, e := range dm.failures {
		// The latest; of two at once, the one named last (whatever
		// the map's order).
		if last == "" || e.at.After(f.LastErrorAt) || e.at.Equal(f.LastErrorAt) && what > last {
			last, f.LastError, f.LastErrorAt = what, e.err, e.at
		}
	}
	if last == "" {
		f.Cleared = dm.cleared
	}
}
