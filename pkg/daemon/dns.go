package daemon

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/tunneld/tunneld/pkg/engine"
)

// resolved is the current answer for every name (the last good one).
func (dm *Daemon) resolved() map[string][]netip.Addr {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	out := map[string][]netip.Addr{}
	for n, st := range dm.names {
		if len(st.addrs) > 0 {
			out[n] = st.addrs
		}
	}
	return out
}

// resolveDue looks up every name whose answer expired (all of them when
// all is set) and reports whether any answer changed. A failed lookup
// keeps the last good answer and is logged.
func (dm *Daemon) resolveDue(ctx context.Context, all bool) bool {
	if dm.d.Resolver == nil {
		return false
	}
	wanted := engine.Names(dm.cfg)
	changed := false
	now := dm.d.Now()
	dm.mu.Lock()
	for n := range dm.names {
		if !slices.Contains(wanted, n) {
			delete(dm.names, n)
		}
	}
	dm.mu.Unlock()
	for _, name := range wanted {
		dm.mu.Lock()
		st, ok := dm.names[name]
		if !ok {
			st = &nameState{}
			dm.names[name] = st
		}
		dm.mu.Unlock()
		if !all && now.Before(st.due) {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, ttl, err := dm.d.Resolver.Resolve(lctx, name)
		cancel()
		interval := dm.cfg.Global.ResolveInterval
		if err != nil {
			dm.d.Log.Warn("resolve failed; keeping the last answer", "name", name, "err", err, "kept", st.addrs)
			dm.setError(err)
			st.due = now.Add(min(RetryResolve, interval))
			continue
		}
		if ttl <= 0 || ttl > interval {
			ttl = interval
		}
		// A short TTL is honoured down to the floor, unless the
		// configuration asks for an even shorter interval.
		st.due = now.Add(max(ttl, min(dm.d.ResolveFloor, interval)))
		slices.SortFunc(addrs, netip.Addr.Compare)
		dm.mu.Lock()
		if !slices.Equal(st.addrs, addrs) {
			if st.addrs != nil {
				dm.d.Log.Info("peer address changed", "name", name, "was", st.addrs, "now", addrs)
			}
			st.addrs = addrs
			changed = true
		}
		dm.mu.Unlock()
	}
	return changed
}

// armResolve sets t to fire when the next answer expires.
func (dm *Daemon) armResolve(t *time.Timer) {
	var next time.Time
	dm.mu.Lock()
	for _, st := range dm.names {
		if next.IsZero() || st.due.Before(next) {
			next = st.due
		}
	}
	dm.mu.Unlock()
	t.Stop()
	if !next.IsZero() {
		t.Reset(max(next.Sub(dm.d.Now()), 0))
	}
}
