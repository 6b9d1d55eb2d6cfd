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
		if b.note(at(i*100), 10*time.Millisecond) {
			t.Fatalf("a renew's converge %d reported", i)
		}
	}
	// Spread out: one every 600 ms stays under 20 in 10 s.
	for i := range 40 {
		if b.note(at(1000+i*600), 10*time.Millisecond) {
			t.Fatalf("converge %d, 600 ms apart, reported", i)
		}
	}
	// Flapping: one every 200 ms; the 20th within 10 s reports.
	var reported []int
	for i := range 60 {
		if b.note(at(30000+i*200), 10*time.Millisecond) {
			reported = append(reported, i)
		}
	}
	// The window holds the last spread-out ones too (600 ms apart until
	// 24400 ms): at the 17th flapping one (33200 ms) it holds 23200,
	// 23800 and 24400 beside 17 of them.
	if diff := cmp.Diff([]int{16}, reported); diff != "" {
		t.Errorf("converges reported (-want +got):\n%s", diff)
	}
	// 10 ms of every 200: the window holds the last 51 flapping ones,
	// from 31 800 ms to the end of the last, 41 810 ms.
	if got, want := b.share(), 51*10.0/(50*200+10); got != want {
		t.Errorf("share = %v, want %v", got, want)
	}
	lasted, n := b.calmed()
	if want := at(30000 + 59*200).Sub(at(23200)); lasted != want || n != 20+43 {
		t.Errorf("calmed: %s, %d converges; want %s, 63", lasted, n, want)
	}
	if lasted, n := b.calmed(); lasted != 0 || n != 0 {
		t.Errorf("calmed again: %s, %d", lasted, n)
	}
}

// TestBusyLogged: a daemon whose hints keep coming logs it once, then,
// BusyWindow after the last converge, that they calmed down.
func TestBusyLogged(t *testing.T) {
	var log syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Info))
	defer h.stop()
	for stop := time.Now().Add(3 * time.Second); time.Now().Before(stop); {
		select {
		case h.events <- watch.Event{Kind: watch.Route}:
		default:
		}
		select {
		case <-h.facts:
		case <-time.After(20 * time.Millisecond):
		}
	}
	const began, calmed = `msg="netlink events keep coming" converges=20 in=10s`, `msg="the netlink events calmed down"`
	if !strings.Contains(log.String(), began) {
		t.Fatalf("no line saying events keep coming; the log:\n%s", log.String())
	}
	for stop := time.Now().Add(BusyWindow + 5*time.Second); !strings.Contains(log.String(), calmed) && time.Now().Before(stop); {
		time.Sleep(50 * time.Millisecond)
	}
	if b, c := strings.Count(log.String(), began), strings.Count(log.String(), calmed); b != 1 || c != 1 {
		t.Errorf("%d lines saying events keep coming, %d saying they calmed down, want 1 each; the log:\n%s", b, c, log.String())
	}
}

// TestBusyRests: converges that keep coming make the pacer rest only
// when they take BusyShare of the time: a WAN that flaps once a second,
// its converges 30 ms each on a slow router, does not; one that flaps
// every 100 ms does, as does a flood whose converges follow each other.
func TestBusyRests(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name        string
		every, took int // ms
		want        bool
	}{
		{"a flap a second: two converges a second, 30 ms each", 500, 30, false},
		{"a flap every 100 ms, converges of 30 ms", 50, 30, true},
		{"a flood, one converge after the other", 5, 4, true},
		{"a fast machine's flood", 5, 0, false},
	} {
		var b busyLog
		var got []bool
		for i := range 40 {
			b.note(at(i*tc.every), time.Duration(tc.took)*time.Millisecond)
			got = append(got, b.rests())
		}
		// Not before the converges keep coming; then as the share says.
		want := make([]bool, 40)
		for i := BusyConverges - 1; i < 40; i++ {
			want[i] = tc.want
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: rests after each converge (-want +got):\n%s", tc.name, diff)
		}
	}
}
