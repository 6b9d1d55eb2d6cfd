package daemon

import "time"

// pacer decides when the hints of the watcher lead to a converge.
//
// A batch of hints starts with the first one and is converged the debounce
// after it: later hints join the batch but do not postpone it, so a change
// is acted on within the debounce however many notifications trail it (a
// deleted address is followed by the routes the kernel moves or flushes,
// and under load they trickle in over tens of milliseconds). Hints that
// arrive while the loop converges start the next batch.
//
// A storm, where hints arrive during converge after converge, is paced
// instead: from the second converge in a row that found hints waiting, the
// next batch also waits, after the last converge ended, as long as that
// converge took (at most maxRest), so that the loop spends no more than
// about half its time converging.
type pacer struct {
	debounce, maxRest time.Duration
	// due is when the pending batch is to be converged; zero: none.
	due time.Time
	// lastEnd and lastTook describe the last converge; busy counts the
	// converges in a row that ended with hints waiting.
	lastEnd  time.Time
	lastTook time.Duration
	busy     int
}

// hint notes a hint at now. It returns when the pending batch is due, and
// whether that is a new batch (the caller arms its timer then).
func (p *pacer) hint(now time.Time) (due time.Time, armed bool) {
	if !p.due.IsZero() {
		return p.due, false
	}
	p.due = now.Add(p.debounce)
	if p.busy >= 2 {
		if rest := p.lastEnd.Add(min(p.lastTook, p.maxRest)); rest.After(p.due) {
			p.due = rest
		}
	}
	return p.due, true
}

// converged notes a converge (for whatever reason) from start to end;
// waiting says whether hints had arrived meanwhile. A batch pending
// before it was covered by it.
func (p *pacer) converged(start, end time.Time, waiting bool) {
	p.due = time.Time{}
	p.lastEnd, p.lastTook = end, end.Sub(start)
	if waiting {
		p.busy++
	} else {
		p.busy = 0
	}
}
