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
// A storm, where hints arrive during converge after converge, is paced as
// well: from the second converge in a row that found hints waiting, the
// next batch also waits, after the last converge ended, as long as that
// converge took (at most maxRest), so that the loop spends no more than
// about half its time converging.
type pacer struct {
	debounce, maxDebounce, maxRest time.Duration
	// first is the pending batch's first hint; zero: none.
	first time.Time
	// lastEnd and lastTook describe the last converge; busy counts the
	// converges in a row that ended with hints waiting.
	lastEnd  time.Time
	lastTook time.Duration
	busy     int
}

// hint notes a hint at now and returns when the pending batch is due
// (the caller re-arms its timer for it).
func (p *pacer) hint(now time.Time) time.Time {
	if p.first.IsZero() {
		p.first = now
	}
	due := now.Add(p.debounce)
	if last := p.first.Add(p.maxDebounce); due.After(last) {
		due = last
	}
	if p.busy >= 2 {
		if rest := p.lastEnd.Add(min(p.lastTook, p.maxRest)); rest.After(due) {
			due = rest
		}
	}
	return due
}

// converged notes a converge (for whatever reason) from start to end;
// waiting says whether hints had arrived meanwhile. A batch pending
// before it was covered by it.
func (p *pacer) converged(start, end time.Time, waiting bool) {
	p.first = time.Time{}
	p.lastEnd, p.lastTook = end, end.Sub(start)
	if waiting {
		p.busy++
	} else {
		p.busy = 0
	}
}
