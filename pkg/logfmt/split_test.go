package logfmt

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSplitAndPriority: Split sends warnings and errors to the second
// writer and the rest to the first; PrefixPriority starts each record with
// its syslog priority; the minimum level still applies; the rest of each
// line is the same as without either.
func TestSplitAndPriority(t *testing.T) {
	at := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	logAll := func(l *Logger) {
		l.Debug("d")
		l.Info("i", "k", 1)
		l.Warn("w")
		l.Error("e", "err", "boom")
	}
	for _, tc := range []struct {
		name            string
		min             Level
		split, priority bool
		low, high       string
	}{
		{"plain", Debug, false, false,
			"level=DEBUG msg=d\nlevel=INFO msg=i k=1\nlevel=WARN msg=w\nlevel=ERROR msg=e err=boom\n", ""},
		{"split", Debug, true, false,
			"level=DEBUG msg=d\nlevel=INFO msg=i k=1\n", "level=WARN msg=w\nlevel=ERROR msg=e err=boom\n"},
		{"priority", Debug, false, true,
			"<7>level=DEBUG msg=d\n<6>level=INFO msg=i k=1\n<4>level=WARN msg=w\n<3>level=ERROR msg=e err=boom\n", ""},
		{"both, from warn", Warn, true, true,
			"", "<4>level=WARN msg=w\n<3>level=ERROR msg=e err=boom\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var low, high bytes.Buffer
			l := New(&low, tc.min)
			l.now = func() time.Time { return at }
			if tc.split {
				l.Split(&high)
			}
			if tc.priority {
				l.PrefixPriority()
			}
			logAll(l)
			stamp := "time=" + at.Format(timeLayout) + " "
			strip := func(s string) string { return strings.ReplaceAll(s, stamp, "") }
			if diff := cmp.Diff(tc.low, strip(low.String())); diff != "" {
				t.Errorf("first writer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.high, strip(high.String())); diff != "" {
				t.Errorf("second writer (-want +got):\n%s", diff)
			}
		})
	}
}
