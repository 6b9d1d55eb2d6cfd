package daemon

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/resolve"
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
// keeps the last good answer and is logged. The lookups run at once: the
// loop waits for the slowest (at most resolve.LookupTimeout), not for their sum,
// which with a DNS server that does not answer kept it from the watchdog,
// the events and the reloads for resolve.LookupTimeout per name. The next lookup
// of a name is due counted from when they are all done.
func (dm *Daemon) resolveDue(ctx context.Context, all bool) bool {
	if dm.d.Resolver == nil {
		return false
	}
	wanted := engine.Names(dm.cfg)
	now := dm.d.Now()
	type lookup struct {
		name  string
		st    *nameState
		addrs []netip.Addr
		ttl   time.Duration
		err   error
	}
	var due []*lookup
	dm.mu.Lock()
	for n := range dm.names {
		if !slices.Contains(wanted, n) {
			delete(dm.names, n)
		}
	}
	for _, name := range wanted {
		st, ok := dm.names[name]
		if !ok {
			st = &nameState{}
			dm.names[name] = st
		}
		if all || !now.Before(st.due) {
			due = append(due, &lookup{name: name, st: st})
		}
	}
	dm.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, resolve.LookupTimeout)
			defer cancel()
			l.addrs, l.ttl, l.err = dm.d.Resolver.Resolve(lctx, l.name)
		}()
	}
	wg.Wait()
	now = dm.d.Now()
	changed := false
	interval := dm.cfg.Global.ResolveInterval
	for _, l := range due {
		st := l.st
		if l.err != nil && ctx.Err() != nil {
			continue // stopping: the lookup was cancelled, not failed
		}
		if l.err != nil {
			dm.d.Log.Warn("resolve failed; keeping the last answer", "name", l.name, "err", l.err, "kept", st.addrs)
			dm.setError(l.err)
			st.due = now.Add(min(RetryResolve, interval))
			continue
		}
		ttl := l.ttl
		if ttl <= 0 || ttl > interval {
			ttl = interval
		}
		// A short TTL is honoured down to the floor, unless the
		// configuration asks for an even shorter interval.
		st.due = now.Add(max(ttl, min(dm.d.ResolveFloor, interval)))
		addrs := l.addrs
		slices.SortFunc(addrs, netip.Addr.Compare)
		dm.mu.Lock()
		if !slices.Equal(st.addrs, addrs) {
			if st.addrs != nil {
				dm.d.Log.Info("peer address changed", "name", l.name, "was", st.addrs, "now", addrs)
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
