package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/logfmt"
)

// stallingResolver answers a lookup only once n lookups are under way at
// the same time (or fails when its context ends), and moves the clock on
// by took for each.
type stallingResolver struct {
	n    int
	took time.Duration
	mu   sync.Mutex
	in   int
	all  chan struct{}
	now  *time.Time
	fail bool
}

func (r *stallingResolver) Resolve(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	r.mu.Lock()
	r.in++
	if r.in == r.n {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	r.mu.Lock()
	*r.now = r.now.Add(r.took)
	r.mu.Unlock()
	if r.fail {
		return nil, 0, errors.New("i/o timeout")
	}
	return []netip.Addr{netip.MustParseAddr("192.0.2.2")}, time.Minute, nil
}

// TestResolveDueLooksUpAtOnce: the names due are looked up at the same
// time, so a DNS server that does not answer keeps the loop (and the
// watchdog) waiting for one lookup, not one per name; and the next
// lookup is due counted from when they are done, not from before, which
// with several stalled lookups made the retry due at once, forever.
func TestResolveDueLooksUpAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names int
		fail  bool
		// wantDue is when the next lookups are due, after the start.
		wantDue time.Duration
	}{
		{"one name answers", 1, false, 5*time.Second + time.Minute},
		{"three names answer", 3, false, 15*time.Second + time.Minute},
		{"three names fail", 3, true, 15*time.Second + RetryResolve},
		{"eight names fail", 8, true, 40*time.Second + RetryResolve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("[global]\nfirewall = false\n")
			for i := range tc.names {
				fmt.Fprintf(&b, "[tunnel.t%d]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer%d.example\"\n", i, i)
			}
			c, err := config.Parse("t.toml", []byte(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			r := &stallingResolver{n: tc.names, took: 5 * time.Second, all: make(chan struct{}), now: &now, fail: tc.fail}
			dm := New(Deps{Resolver: r, Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return now }})
			dm.cfg = c
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			dm.resolveDue(ctx, true)
			var got []time.Duration
			want := make([]time.Duration, tc.names)
			for i := range tc.names {
				got = append(got, dm.names[fmt.Sprintf("peer%d.example", i)].due.Sub(start))
				want[i] = tc.wantDue
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("next lookups due after the start (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResolveCancelledIsNoFailure: lookups cut short because the daemon is
// stopping are neither logged as failures nor kept as its last error.
func TestResolveCancelledIsNoFailure(t *testing.T) {
	c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n[tunnel.t]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer.example\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	r := &resolver{}
	r.set(context.Canceled)
	dm := New(Deps{Resolver: r, Log: logfmt.New(&log, logfmt.Debug)})
	dm.cfg = c
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dm.resolveDue(ctx, true)
	if log.String() != "" || dm.Facts().LastError != "" {
		t.Errorf("a cancelled lookup was taken for a failure: log %q, last error %q", log.String(), dm.Facts().LastError)
	}
}
