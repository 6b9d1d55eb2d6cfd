package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestBusyLog: converges that keep coming (BusyConverges within
// BusyWindow) are reported once, at the one that makes them so; a
// renew's few, or as many spread over more than the window, are not;
// calmed tells how long they kept coming and how many there were.
func TestBusyLog(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	var b busyLog
	// A renew: three converges.
	for i := range 3 {
		if b.note(at(i * 100)) {
			t.Fatalf("a renew's converge %d reported", i)
		}
	}
	// Spread out: one every 600 ms stays under 20 in 10 s.
	for i := range 40 {
		if b.note(at(1000 + i*600)) {
			t.Fatalf("converge %d, 600 ms apart, reported", i)
		}
	}
	// Flapping: one every 200 ms; the 20th within 10 s reports.
	var reported []int
	for i := range 60 {
		if b.note(at(30000 + i*200)) {
			reported = append(reported, i)
		}
	}
	// The window holds the last spread-out ones too (600 ms apart until
	// 24400 ms): at the 17th flapping one (33200 ms) it holds 23200,
	// 23800 and 24400 beside 17 of them.
	if diff := cmp.Diff([]int{16}, reported); diff != "" {
		t.Errorf("converges reported (-want +got):\n%s", diff)
	}
	lasted, n := b.calmed()
	if want := at(30000 + 59*200).Sub(at(23200)); lasted != want || n != 20+43 {
		t.Errorf("calmed: %s, %d converges; want %s, 63", lasted, n, want)
	}
	if lasted, n := b.calmed(); lasted != 0 || n != 0 {
		t.Errorf("calmed again: %s, %d", lasted, n)
	}
}

// TestBusyRest: while converges keep coming, a hint's batch waits
// BusyRest after the last converge's end, and the loop counts as resting
// (no short way) until then.
func TestBusyRest(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	p := &pacer{debounce: 2 * time.Millisecond, maxDebounce: 50 * time.Millisecond, maxRest: time.Second}
	p.converged(at(90), at(100), false)
	if got, want := p.hint(at(101), false), at(103); !got.Equal(want) {
		t.Errorf("due %v, want %v", got, want)
	}
	p.converged(at(101), at(110), false)
	p.busyRest = BusyRest
	if got, want := p.hint(at(111), false), at(110).Add(BusyRest); !got.Equal(want) {
		t.Errorf("busy: due %v, want %v", got, want)
	}
	if !p.storming(at(200)) || p.storming(at(110).Add(BusyRest)) {
		t.Errorf("busy: storming at 200 ms %v (want true), at the rest's end %v (want false)", p.storming(at(200)), p.storming(at(110).Add(BusyRest)))
	}
}

// TestBusyLogged: a daemon whose hints keep coming logs it once, then,
// BusyWindow after the last converge, that they calmed down; meanwhile
// its converges come at least BusyRest apart.
func TestBusyLogged(t *testing.T) {
	var log syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
	defer h.stop()
	var starts []time.Time
	for stop := time.Now().Add(8 * time.Second); time.Now().Before(stop); {
		select {
		case h.events <- watch.Event{Kind: watch.Route}:
		default:
		}
		select {
		case f := <-h.facts:
			starts = append(starts, f.LastConverge)
		case <-time.After(20 * time.Millisecond):
		}
	}
	const began, calmed = `msg="netlink events keep coming: converging at most every 250ms until they calm down" converges=20 in=10s`, `msg="the netlink events calmed down"`
	if !strings.Contains(log.String(), began) {
		t.Fatalf("no line saying events keep coming; the log:\n%s", log.String())
	}
	// After the line, converges end at least BusyRest apart (they
	// start later still).
	i := 0
	for i < len(starts) && i < BusyConverges {
		i++
	}
	for j := i + 2; j < len(starts); j++ {
		if gap := starts[j].Sub(starts[j-1]); gap < BusyRest {
			t.Errorf("converges %d and %d %s apart while busy, want %s at least", j-1, j, gap, BusyRest)
		}
	}
	for stop := time.Now().Add(BusyWindow + 5*time.Second); !strings.Contains(log.String(), calmed) && time.Now().Before(stop); {
		time.Sleep(50 * time.Millisecond)
	}
	if b, c := strings.Count(log.String(), began), strings.Count(log.String(), calmed); b != 1 || c != 1 {
		t.Errorf("%d lines saying events keep coming, %d saying they calmed down, want 1 each; the log:\n%s", b, c, log.String())
	}
}
