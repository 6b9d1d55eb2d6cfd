package daemon

import "time"

// BusyWindow, BusyConverges and BusyRest: when the loop has converged
// BusyConverges times within BusyWindow (events that keep coming: a
// cable that flaps for minutes, a flood of someone else's changes), the
// log says so once, and again when BusyWindow passed with no converge.
// In between, the pacer rests after each converge BusyRest times as long
// as it took. A tester's flapping cable kept a router's CPU half busy for
// a minute, converging at every flap, with nothing in the log. A WAN
// renew's few converges are far from it.
const (
	BusyWindow    = 10 * time.Second
	BusyConverges = 20
	BusyRest      = 9
)

// busyLog notes the converges' starts to tell when they keep coming.
type busyLog struct {
	// starts are the converges' starts within BusyWindow of the last.
	starts []time.Time
	// logged: the log was told; since is the first start it counted, n
	// the converges since.
	logged bool
	since  time.Time
	n      int
}

// note notes a converge that started at start; it reports whether the
// converges now keep coming, which the log is to be told.
func (b *busyLog) note(start time.Time) bool {
	i := 0
	for i < len(b.starts) && start.Sub(b.starts[i]) > BusyWindow {
		i++
	}
	b.starts = append(b.starts[i:], start)
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
