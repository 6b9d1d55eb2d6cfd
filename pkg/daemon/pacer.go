package daemon

import "time"

// pacer decides when the hints of the watcher lead to a converge.
//
// A batch of hints starts with the first one and is converged once no
// hint has come for the debounce, but no later than maxDebounce after its
// first: one change's notifications (a renewed address is added, the old
// one deleted, the kernel moves or flushes routes) trickle in over
// milliseconds, and one converge after all of them sees the change whole.
// Hints that arrive while the loop converges start the next batch.
//
// A batch with an address hint of a device that tunnels take their local
// address from waits followDebounce of quiet instead (if longer): the
// short way moves the tunnels at once, so the converge, left with the
// rest, can wait for the whole change (a renew adds the new address, then
// deletes the old one) and keep the loop free for the short way meanwhile.
//
// A storm, where hints arrive during converge after converge, is paced as
// well: from the second converge in a row that found hints waiting, the
// next batch also waits, after the last converge ended, as long as that
// converge took (at most maxRest), so that the loop spends no more than
// about half its time converging.
//
// Converges that keep coming and take BusyShare of the loop's time (see
// busyLog) are paced harder, storm or not: every batch waits, after the
// last converge ended, BusyRest times as long as that converge took (at
// most maxRest), so that the loop spends no more than about a tenth of
// its time converging. A cable that
// flaps every 50–200 ms seldom sends its hints during a converge, so it
// makes no storm, yet a tester's kept a slow router's CPU half busy
// for as long as it flapped. A rest in proportion to the converge costs
// a fast machine, and the tests' in-memory kernel, next to nothing. The
// short way is not held back by it (see storming).
type pacer struct {
	debounce, followDebounce, maxDebounce, maxRest time.Duration
	// coming: converges keep coming and take much of the time (the loop
	// sets it when busyLog says so, and clears it when they calmed
	// down).
	coming bool
	// first is the pending batch's first hint; zero: none. followed: it
	// holds an address hint of a device tunnels follow.
	first    time.Time
	followed bool
	// lastEnd and lastTook describe the last converge; busy counts the
	// converges in a row that ended with hints waiting.
	lastEnd  time.Time
	lastTook time.Duration
	busy     int
}

// hint notes a hint at now (followed: an address hint of a device tunnels
// follow) and returns when the pending batch is due (the caller re-arms
// its timer for it).
func (p *pacer) hint(now time.Time, followed bool) time.Time {
	if p.first.IsZero() {
		p.first = now
	}
	p.followed = p.followed || followed
	quiet := p.debounce
	if p.followed {
		quiet = max(quiet, p.followDebounce)
	}
	due := now.Add(quiet)
	if last := p.first.Add(p.maxDebounce); due.After(last) {
		due = last
	}
	if p.busy >= 2 || p.coming {
		if rest := p.restEnd(); rest.After(due) {
			due = rest
		}
	}
	return due
}

// restEnd is when the rest after the last converge ends, in a storm or
// while converges keep coming.
func (p *pacer) restEnd() time.Time {
	if p.coming {
		return p.restFor(BusyRest)
	}
	return p.restFor(1)
}

// restFor is when a rest times as long as the last converge ends (at
// most maxRest after it).
func (p *pacer) restFor(times time.Duration) time.Time {
	return p.lastEnd.Add(min(p.lastTook*times, p.maxRest))
}

// storming reports whether the loop is resting in a storm at now: two
// converges in a row found hints waiting, and the rest after the last
// (as long as it took) is not over. (A storm that died down is over once
// the rest is, though busy counts on until the next quiet converge.)
// Converges that merely keep coming leave the short way alone: it moves
// the tunnels to a WAN's new address at once, reading only that device,
// while their converges rest.
func (p *pacer) storming(now time.Time) bool {
	return p.busy >= 2 && now.Before(p.restFor(1))
}

// converged notes a converge (for whatever reason) from start to end;
// waiting says whether hints had arrived meanwhile. A batch pending
// before it was covered by it.
func (p *pacer) converged(start, end time.Time, waiting bool) {
	p.first, p.followed = time.Time{}, false
	p.lastEnd, p.lastTook = end, end.Sub(start)
	if waiting {
		p.busy++
	} else {
		p.busy = 0
	}
}
