package daemon

import "time"

// BusyWindow, BusyConverges, BusyShare and BusyRest: when the loop has
// converged BusyConverges times within BusyWindow (events that keep
// coming: a cable that flaps for minutes, a flood of someone else's
// changes), the log says so once, and again when BusyWindow passed with
// no converge. In between, once the converges of the window took
// BusyShare of its time or more, the pacer rests after each converge
// BusyRest times as long as it took, until they calmed down. A tester's
// flapping cable kept a router's CPU half busy for a minute, converging
// at every flap, with nothing in the log. A WAN renew's few converges
// are far from it; a WAN that flaps once a second made converges that
// kept coming, about a seventh of the slow router's CPU, and the rest
// only slowed their repairs (the day's tester), hence the share.
const (
	BusyWindow    = 10 * time.Second
	BusyConverges = 20
	BusyShare     = 0.2
	BusyRest      = 9
)

// busyLog notes the converges' starts and lengths to tell when they keep
// coming, and how much of the time they take.
type busyLog struct {
	// starts are the converges' starts within BusyWindow of the last,
	// took how long each took.
	starts []time.Time
	took   []time.Duration
	// logged: the log was told; since is the first start it counted, n
	// the converges since.
	logged bool
	since  time.Time
	n      int
}

// note notes a converge that started at start and took took; it reports
// whether the converges now keep coming, which the log is to be told.
func (b *busyLog) note(start time.Time, took time.Duration) bool {
	i := 0
	for i < len(b.starts) && start.Sub(b.starts[i]) > BusyWindow {
		i++
	}
	b.starts = append(b.starts[i:], start)
	b.took = append(b.took[i:], took)
	if b.logged {
		b.n++
		return false
	}
	if len(b.starts) < BusyConverges {
		return false
	}
	b.logged, b.since, b.n = true, b.starts[0], len(b.starts)
	return true
}

// rests reports whether the pacer is to rest (see BusyShare): the
// converges keep coming, and take BusyShare of the time or more.
func (b *busyLog) rests() bool { return b.logged && b.share() >= BusyShare }

// share is the part of the time from the first converge noted to the
// end of the last that the converges took (0 with none).
func (b *busyLog) share() float64 {
	if len(b.starts) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range b.took {
		sum += d
	}
	span := b.starts[len(b.starts)-1].Add(b.took[len(b.took)-1]).Sub(b.starts[0])
	if span <= 0 {
		return 1
	}
	return float64(sum) / float64(span)
}

// calmed ends what the log was told, BusyWindow after the last converge:
// it returns how long the converges kept coming, and how many there were.
func (b *busyLog) calmed() (lasted time.Duration, n int) {
	if !b.logged || len(b.starts) == 0 {
		return 0, 0
	}
	lasted, n = b.starts[len(b.starts)-1].Sub(b.since), b.n
	*b = busyLog{}
	return lasted, n
}
