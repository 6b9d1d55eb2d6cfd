package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestInterruptedDumps: a converge whose reads the kernel keeps
// interrupting (someone else's flood of address changes) is no failure:
// it is logged at debug level and read again RetryConverge later, and
// status's last error stays empty. Only after InterruptedQuiet of them
// in a row is it a failure like any other, at warn level. A tester's
// flood on a device no tunnel used logged warnings and errors.
func TestInterruptedDumps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		times int32 // the reads that fail (-1: all of them)
		// want: the log's lines at warn level and above.
		want []string
	}{
		{"twice", 2, nil},
		{"lasting", -1, []string{
			`level=WARN msg="converge failed; trying again" reason=retry err="list addresses: dump interrupted by a concurrent change"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log syncbuf.Buffer
			h := startLogging(t, baseConfig, logfmt.New(&log, logfmt.Debug))
			defer h.stop()
			var left atomic.Int32
			left.Store(tc.times)
			h.k.SetObserveFail(func() error {
				if left.Load() == 0 {
					return nil
				}
				left.Add(-1)
				return fmt.Errorf("list addresses: %w", kernel.ErrDumpInterrupted)
			})
			h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.8/24"))
			hinted := time.Now()
			h.events <- watch.Event{Kind: watch.Addr}
			var f Facts
			select {
			case f = <-h.facts:
			case <-time.After(InterruptedQuiet*RetryConverge + 10*time.Second):
				t.Fatal("no convergence")
			}
			quiet := int(tc.times)
			if tc.times < 0 {
				quiet = InterruptedQuiet
			}
			if d := time.Since(hinted); d < time.Duration(quiet)*RetryConverge {
				t.Errorf("facts %s after the hint, want %d retries %s apart first", d, quiet, RetryConverge)
			}
			if got := strings.Count(log.String(), "converge interrupted by changes of someone else's; reading again"); got != quiet {
				t.Errorf("%d debug lines for the interrupted reads, want %d", got, quiet)
			}
			var wantLast string
			if tc.times < 0 {
				wantLast = "list addresses: dump interrupted by a concurrent change"
			} else if h.k.Tunnels["moe"].Local != netip.MustParseAddr("192.0.2.8") {
				t.Errorf("tunnel moe's local %v after the reads worked, want 192.0.2.8", h.k.Tunnels["moe"].Local)
			}
			if f.LastError != wantLast {
				t.Errorf("last error %q, want %q", f.LastError, wantLast)
			}
			if diff := cmp.Diff(tc.want, levelLines(log.String(), "WARN")); diff != "" {
				t.Errorf("warnings and errors (-want +got):\n%s", diff)
			}
			h.k.SetObserveFail(nil)
		})
	}
}
