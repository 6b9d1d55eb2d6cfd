package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/resolve"
)

// The loop never waits for a lookup (but at start-up, see awaitAnswers):
// it starts the lookups that are due in the background, one at a time per
// name, and each comes back to it as an answer on dm.answers, which
// updates the name and converges only when the answer changed. A
// generation of lookups ends at a reload or a stop: its lookups are
// cancelled, and a result of one that comes late is not applied.

// answer is what one lookup of name, begun in generation gen, found.
type answer struct {
	gen   uint64
	name  string
	addrs []netip.Addr
	ttl   time.Duration
	err   error
}

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

// newGeneration cancels the lookups under way, whose results will not be
// applied, and starts a generation of lookups that ends with ctx.
func (dm *Daemon) newGeneration(ctx context.Context) {
	if dm.cancelLookups != nil {
		dm.cancelLookups()
	}
	dm.lookupCtx, dm.cancelLookups = context.WithCancel(ctx)
	dm.mu.Lock()
	defer dm.mu.Unlock()
	dm.gen++
	for _, st := range dm.names {
		st.pending = false
	}
}

// endLookups cancels the lookups under way and waits for them to end.
func (dm *Daemon) endLookups() {
	if dm.cancelLookups != nil {
		dm.cancelLookups()
	}
	dm.lookups.Wait()
}

// startDue starts a lookup of every name whose answer expired (of all of
// them when all is set) and that is not being looked up already, and
// forgets the names the configuration no longer has, and the addresses
// kept for a family none of a name's tunnels has any more (see stale).
func (dm *Daemon) startDue(all bool) {
	if dm.d.Resolver == nil {
		return
	}
	wanted := engine.Names(dm.cfg)
	now := dm.d.Now()
	dm.mu.Lock()
	defer dm.mu.Unlock()
	for n := range dm.names {
		if !slices.Contains(wanted, n) {
			delete(dm.names, n)
			// Dropped by a reload: its failure is over.
			dm.worked(failedLookup+n, "a reload", now)
		}
	}
	for _, name := range wanted {
		st, ok := dm.names[name]
		if !ok {
			st = &nameState{}
			dm.names[name] = st
		}
		if len(st.kept) > 0 {
			// A reload that took away the tunnels of a kept
			// family: the rest of the answer is the name's.
			unneeded := func(a netip.Addr) bool { return !needs(dm.cfg, name, a.Is6()) }
			if slices.ContainsFunc(st.kept, unneeded) {
				st.addrs = slices.DeleteFunc(st.addrs, func(a netip.Addr) bool { return unneeded(a) && slices.Contains(st.kept, a) })
				st.kept = slices.DeleteFunc(st.kept, unneeded)
				if len(st.kept) == 0 {
					st.failing = ""
					dm.worked(failedLookup+name, "a reload", now)
				}
			}
		}
		if st.pending || !all && now.Before(st.due) {
			continue
		}
		st.pending = true
		dm.lookups.Add(1)
		go dm.lookUp(dm.lookupCtx, dm.gen, name)
	}
}

// lookUp looks name up for at most resolve.LookupTimeout and hands the
// result to the loop. A lookup cancelled with its generation (the daemon
// stops, or reloads) is no failure, and nobody waits for its result.
func (dm *Daemon) lookUp(ctx context.Context, gen uint64, name string) {
	defer dm.lookups.Done()
	lctx, cancel := context.WithTimeout(ctx, resolve.LookupTimeout)
	addrs, ttl, err := dm.d.Resolver.Resolve(lctx, name)
	cancel()
	if ctx.Err() != nil {
		return
	}
	select {
	case dm.answers <- answer{gen: gen, name: name, addrs: addrs, ttl: ttl, err: err}:
	case <-ctx.Done():
	}
}

// pending reports whether a lookup is under way.
func (dm *Daemon) pending() bool {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	for _, st := range dm.names {
		if st.pending {
			return true
		}
	}
	return false
}

// awaitAnswers waits for the lookups under way (each ends within
// resolve.LookupTimeout) and takes their answers, or until ctx ends. Only
// the start does: its first converge then creates the tunnels with their
// peers, and READY=1 says they are up, instead of a converge without them
// and another a moment later; the loop, which must not wait, is not
// running yet.
func (dm *Daemon) awaitAnswers(ctx context.Context) {
	for dm.pending() {
		select {
		case a := <-dm.answers:
			dm.answered(a)
		case <-ctx.Done():
			return
		}
	}
}

// answered takes the result of a lookup and reports whether the name's
// answer changed (a first answer included). A result from an earlier
// generation, or for a name no longer configured, is dropped. A failed
// lookup keeps the last good answer, is logged (at warn level when the
// failure begins or changes), holds as a failure until the name answers
// and is tried again after RetryResolve; the next lookup of a name is due
// counted from when its answer came. An answer with no address of a
// family that one of the name's tunnels needs (an AFTR's name that gives
// an A record and no AAAA) is that failure for that family: its last good
// addresses are kept (see stale), and the rest of the answer is taken. A
// first answer has none to keep: the tunnel is down, and its status says
// what the name resolves to.
func (dm *Daemon) answered(a answer) bool {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	st, ok := dm.names[a.name]
	if !ok || a.gen != dm.gen {
		return false
	}
	st.pending = false
	now := dm.d.Now()
	interval := dm.cfg.Global.ResolveInterval
	if a.err != nil {
		if len(st.addrs) == 0 {
			dm.lookupFailed(a.name, st, a.err.Error(), "resolve failed; no earlier answer to keep", "err", a.err)
		} else {
			dm.lookupFailed(a.name, st, a.err.Error(), "resolve failed; keeping the last answer", "err", a.err, "kept", st.addrs)
		}
		st.due = now.Add(min(RetryResolve, interval))
		return false
	}
	addrs := slices.Clone(a.addrs)
	model.SortAddrs(addrs)
	st.kept = stale(dm.cfg, a.name, st.addrs, addrs)
	if len(st.kept) > 0 {
		dm.lookupFailed(a.name, st, otherFamilyOnly(a.name, addrs, st.kept),
			"resolve gave no address of the family a tunnel needs; keeping the last answer of it",
			"family", familyWords(st.kept), "answer", addrs, "kept", st.kept)
		st.due = now.Add(min(RetryResolve, interval))
		addrs = append(addrs, st.kept...)
		model.SortAddrs(addrs)
		changed := !slices.Equal(st.addrs, addrs)
		st.addrs = addrs
		return changed
	}
	st.failing = ""
	dm.worked(failedLookup+a.name, "an answer for "+a.name, now)
	ttl := a.ttl
	if ttl <= 0 || ttl > interval {
		ttl = interval
	}
	// A short TTL is honoured down to the floor, unless the
	// configuration asks for an even shorter interval.
	st.due = now.Add(max(ttl, min(dm.d.ResolveFloor, interval)))
	if lacksFamily(dm.cfg, a.name, addrs) {
		// A first answer without the family a tunnel needs (nothing
		// to keep): the tunnel waits for the name, so it is asked
		// again as soon as after a failed lookup, not after the TTL.
		st.due = now.Add(min(RetryResolve, interval))
	}
	if slices.Equal(st.addrs, addrs) {
		return false
	}
	if st.addrs != nil {
		dm.d.Log.Info("peer address changed", "name", a.name, "was", st.addrs, "now", addrs)
	}
	st.addrs = addrs
	return true
}

// lookupFailed notes that the lookup of name failed with err, which holds as
// a failure until the name answers: logged with msg and args at warn
// level when the failure begins or changes, else at debug level (a DNS
// server that stays away would fill the log with the same line every
// RetryResolve). The caller holds dm.mu.
func (dm *Daemon) lookupFailed(name string, st *nameState, err, msg string, args ...any) {
	if err != st.failing {
		dm.d.Log.Warn(msg, append([]any{"name", name}, args...)...)
	} else {
		dm.d.Log.Debug("resolve failed as before", "name", name)
	}
	st.failing = err
	dm.failed(failedLookup+name, err, dm.d.Now())
}

// stale are the addresses of had, the name's answer in use, of each
// outer family that a tunnel of c with remote name needs and that answer
// has none of: the last good answer of that family, which is kept as a
// failed lookup keeps all of it. A tunnel that is up is not taken down,
// nor its routes, by an answer that is of no use to it, exactly as it
// is not by a timeout or NXDOMAIN.
func stale(c *config.Config, name string, had, answer []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, v6 := range []bool{false, true} {
		if !needs(c, name, v6) || slices.ContainsFunc(answer, func(a netip.Addr) bool { return a.Is6() == v6 }) {
			continue
		}
		for _, a := range had {
			if a.Is6() == v6 {
				out = append(out, a)
			}
		}
	}
	return out
}

// needs reports whether a tunnel of c with remote name has the outer
// family v6 (IPv6) or IPv4.
// lacksFamily reports whether a tunnel whose remote is name needs a
// family the answer has no address of.
func lacksFamily(c *config.Config, name string, answer []netip.Addr) bool {
	for _, v6 := range []bool{false, true} {
		if needs(c, name, v6) && !slices.ContainsFunc(answer, func(a netip.Addr) bool { return a.Is6() == v6 }) {
			return true
		}
	}
	return false
}

func needs(c *config.Config, name string, v6 bool) bool {
	return slices.ContainsFunc(c.Tunnels, func(t *config.Tunnel) bool {
		return t.RemoteHost == name && t.Mode.OuterIPv6() == v6
	})
}

// otherFamilyOnly words the failure of an answer for name that has none
// of the families of kept, which are kept, for the daemon's last error:
// "aftr.example.net has no IPv6 address (it resolves to 203.0.113.1
// only): keeping the last good answer 2001:db8:b::3".
func otherFamilyOnly(name string, answer, kept []netip.Addr) string {
	what := "it answered with no address"
	if len(answer) > 0 {
		what = "it resolves to " + joinAddrs(answer) + " only"
	}
	return fmt.Sprintf("%s has no %s address (%s): keeping the last good answer %s", name, familyWords(kept), what, joinAddrs(kept))
}

// familyWords names the families of addrs: "IPv4", "IPv6" or "IPv4 or
// IPv6".
func familyWords(addrs []netip.Addr) string {
	v4 := slices.ContainsFunc(addrs, netip.Addr.Is4)
	v6 := slices.ContainsFunc(addrs, netip.Addr.Is6)
	switch {
	case v4 && v6:
		return "IPv4 or IPv6"
	case v6:
		return "IPv6"
	}
	return "IPv4"
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// armResolve sets t to fire when the next answer of a name not being
// looked up expires.
func (dm *Daemon) armResolve(t *time.Timer) {
	var next time.Time
	dm.mu.Lock()
	for _, st := range dm.names {
		if !st.pending && (next.IsZero() || st.due.Before(next)) {
			next = st.due
		}
	}
	dm.mu.Unlock()
	t.Stop()
	if !next.IsZero() {
		t.Reset(max(next.Sub(dm.d.Now()), 0))
	}
}
