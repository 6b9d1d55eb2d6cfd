package logfmt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixedTime stamps every record with t before its TextHandler formats it,
// as the Logger under test does with its clock.
type fixedTime struct {
	slog.Handler
	t time.Time
}

func (h fixedTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = h.t
	return h.Handler.Handle(ctx, r)
}

var slogLevels = map[Level]slog.Level{Debug: slog.LevelDebug, Info: slog.LevelInfo, Warn: slog.LevelWarn, Error: slog.LevelError}

// call is one logging call: a level's method with a message and pairs.
type call struct {
	level Level
	msg   string
	args  []any
}

// info is a call at Info level, the usual one in these tests.
func info(msg string, args ...any) call { return call{Info, msg, args} }

// logBoth makes calls through log/slog's TextHandler and through a
// Logger, both at least level min and stamped t, and returns what each
// wrote.
func logBoth(t time.Time, min Level, calls []call) (want, got string) {
	var sb, lb bytes.Buffer
	sl := slog.New(fixedTime{slog.NewTextHandler(&sb, &slog.HandlerOptions{Level: slogLevels[min]}), t})
	l := New(&lb, min)
	l.now = func() time.Time { return t }
	for _, c := range calls {
		switch c.level {
		case Debug:
			sl.Debug(c.msg, c.args...)
			l.Debug(c.msg, c.args...)
		case Info:
			sl.Info(c.msg, c.args...)
			l.Info(c.msg, c.args...)
		case Warn:
			sl.Warn(c.msg, c.args...)
			l.Warn(c.msg, c.args...)
		case Error:
			sl.Error(c.msg, c.args...)
			l.Error(c.msg, c.args...)
		}
	}
	return sb.String(), lb.String()
}

// Values of kinds the handler treats apart.
type (
	// stringer is a fmt.Stringer.
	stringer string
	// ptrErr is an error with a pointer receiver: nil, it panics in fmt.
	ptrErr struct{ s string }
	// text is an encoding.TextMarshaler with a pointer receiver.
	text struct {
		s   string
		err error
	}
	// boom is an encoding.TextMarshaler that panics.
	boom struct{}
	// formatter is a fmt.Formatter that shows %+v's flag.
	formatter struct{}
	// raw is a named byte slice.
	raw []byte
	// octet is a named byte.
	octet byte
	// number is a named int.
	number int
	// pair is a plain struct.
	pair struct {
		A int
		B string
	}
)

func (s stringer) String() string { return "stringer " + string(s) }
func (e *ptrErr) Error() string   { return e.s }
func (t *text) MarshalText() ([]byte, error) {
	return []byte(t.s), t.err
}
func (boom) MarshalText() ([]byte, error) { panic("boom") }
func (formatter) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "%c plus=%v", verb, f.Flag('+'))
}

var (
	at      = time.Date(2025, 3, 9, 14, 7, 5, 123456789, time.FixedZone("CET", 3600))
	addrs   = []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::1")}
	dnsErr  = &net.DNSError{Err: "no such host", Name: "peer.example", IsNotFound: true}
	sockErr = &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: "/run/tunneld/tunneld.sock", Net: "unix"},
		Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
)

// TestLikeSlog compares the Logger's output with log/slog's TextHandler's
// for the calls tunneld makes and for the kinds of values and the edge
// cases a TextHandler treats apart.
func TestLikeSlog(t *testing.T) {
	tests := []struct {
		name  string
		min   Level
		calls []call
	}{
		{"daemon call sites", Debug, []call{
			{Debug, "converged", []any{"reason", "start", "ops", 7, "took", 12345678 * time.Nanosecond}},
			{Debug, "converged", []any{"reason", "event: link addr", "ops", 0, "took", 812 * time.Microsecond}},
			info("changed", "object", "link moe", "cmd", "ip link add moe mtu 1480 type ipip local 192.0.2.7 remote 198.51.100.2 ttl 64", "reason", "start"),
			info("changed", "object", "sysctl net.ipv4.ip_forward", "cmd", "sysctl -w net.ipv4.ip_forward=1", "reason", "resync"),
			{Debug, "waiting", []any{"note", `tunnel moe: local device "wan" has no IPv4 address`}},
			{Error, "converge failed", []any{"reason", "dns", "err", fmt.Errorf("route add 10.9.0.0/16: %w", syscall.ENETUNREACH)}},
			{Warn, fmt.Sprintf("giving up on %s for %s: something else keeps changing it (%d repairs in %s)", "route 10.9.0.0/16 table main", 5*time.Minute, 6, time.Minute), []any{"object", "route 10.9.0.0/16 table main"}},
			{Warn, "netlink events were lost (socket overflow): re-reading everything", nil},
			{Error, "reload refused: t.toml:11:7: tunnel.moe.ttl: 999 is out of range 1–255", []any{"file", "t.toml", "line", 11, "col", 7}},
			{Error, "reload refused", []any{"err", &fs.PathError{Op: "open", Path: "/etc/tunneld/tunneld.toml", Err: syscall.ENOENT}}},
			{Warn, "keeping the running configuration", nil},
			info("configuration reloaded", "file", "/etc/tunneld/tunneld.toml"),
			info("stopping; keep_on_exit: leaving the kernel state in place"),
			info("removed", "object", "rule from 10.0.0.1 lookup 42", "cmd", "ip rule del from 10.0.0.1 lookup 42 priority 1000 protocol 116"),
			{Error, "teardown incomplete", []any{"err", errors.Join(errors.New("link moe: busy"), errors.New("route: gone"))}},
			info("stopped; everything tunneld owned is removed"),
			{Warn, "resolve failed; keeping the last answer", []any{"name", "peer.example", "err", dnsErr, "kept", addrs[:1]}},
			{Warn, "resolve failed; keeping the last answer", []any{"name", "peer.example", "err", dnsErr, "kept", []netip.Addr(nil)}},
			info("peer address changed", "name", "peer.example", "was", addrs[:1], "now", addrs),
			info("peer address changed", "name", "peer.example", "was", []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}, "now", []netip.Addr{}),
		}},
		{"cli call sites", Debug, []call{
			{Warn, "no netlink events; relying on the periodic resync", []any{"err", os.NewSyscallError("socket", syscall.EPROTONOSUPPORT)}},
			{Warn, "no status socket", []any{"path", "/run/tunneld/tunneld.sock", "err", sockErr}},
			{Error, "stopped with an error", []any{"err", errors.New("converge: permission denied"), "uptime", (3*time.Hour + 2*time.Minute + 1500*time.Millisecond).Round(time.Second)}},
		}},
		{"strings", Info, []call{
			info("", "empty", ""),
			info(" ", "space", " ", "spaces", "a b"),
			info("a=b", "eq", "x=1", "quote", `say "hi"`, "backslash", `C:\dir`, "both", `a\"b`),
			info("controls", "tab", "a\tb", "nl", "line\nbreak", "cr", "a\rb", "nul", "a\x00b", "esc", "\x1b[0m", "del", "a\x7fb"),
			info("unicode", "latin", "café", "cjk", "日本語", "emoji", "🙂", "dash", "1–255", "nbsp", "a\u00a0b", "zwsp", "a\u200bb", "linesep", "a\u2028b", "ideo-space", "a\u3000b"),
			info("invalid", "ff", "a\xffb", "cut", "\xe6\x97", "replacement", "a\ufffdb", "surrogate", "\xed\xa0\x80"),
			info("punctuation", "p", `!#$%&'()*+,-./:;<>?@[]^_{|}~`+"`"),
		}},
		{"numbers and durations", Info, []call{
			info("ints", "int", -1, "zero", 0, "big", math.MaxInt, "min", math.MinInt, "i8", int8(-8), "i16", int16(16), "i32", int32(-32), "i64", int64(64)),
			info("uints", "uint", uint(1), "u8", uint8(255), "u16", uint16(16), "u32", uint32(32), "u64", uint64(math.MaxUint64), "uintptr", uintptr(0xff)),
			info("floats", "f64", 1.5, "tiny", 1e-7, "huge", 1e21, "whole", 3.0, "f32", float32(0.1), "nan", math.NaN(), "inf", math.Inf(1), "-inf", math.Inf(-1), "negzero", math.Copysign(0, -1)),
			info("bools", "t", true, "f", false),
			info("durations", "zero", time.Duration(0), "ns", time.Duration(1), "us", 1500*time.Nanosecond, "neg", -1500*time.Millisecond, "long", 49*time.Hour+time.Second, "max", time.Duration(math.MaxInt64)),
			info("named", "number", number(3), "octet", octet(7)),
		}},
		{"times as values", Info, []call{
			info("times", "cet", at, "utc", at.UTC(), "west", at.In(time.FixedZone("", -(8*3600+30*60)))),
			info("edges", "zero", time.Time{}, "exact", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "almost", time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC), "y9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)),
			info("monotonic", "now", time.Now()),
		}},
		{"errors, stringers and other values", Info, []call{
			info("errors", "plain", errors.New("no such host"), "wrapped", fmt.Errorf("resolve peer.example: %w", dnsErr), "errno", syscall.EPERM, "empty", errors.New("")),
			info("nil errors", "interface", error(nil), "pointer", (*ptrErr)(nil), "set", &ptrErr{"bad thing"}),
			info("stringers", "s", stringer("x"), "spaced", stringer("a b"), "level", Warn),
			info("formatter", "f", formatter{}),
			info("text", "addr", netip.MustParseAddr("192.0.2.1"), "zero", netip.Addr{}, "prefix", netip.MustParsePrefix("10.9.0.0/16"), "ip", net.ParseIP("2001:db8::2"), "nilip", net.IP(nil)),
			info("text marshalers", "ok", &text{s: "a b"}, "failing", &text{err: errors.New("cannot")}, "nil", (*text)(nil), "panicking", boom{}),
			info("bytes", "bytes", []byte("abc"), "empty", []byte{}, "nil", []byte(nil), "raw", raw("a\x00b"), "octets", []octet{1, 2}),
			info("slices", "strings", []string{"a", "b"}, "one", []string{"x"}, "none", []string{}, "nil", []string(nil), "mixed", []any{1, "two", nil}, "ints", []int{1, 2, 3}),
			info("composites", "struct", pair{1, "x y"}, "ptr", &pair{A: 2}, "map", map[string]int{"b": 2, "a": 1}, "nilmap", map[string]int(nil), "array", [2]bool{true}),
			info("nils", "nil", nil, "nilptr", (*pair)(nil), "nilfunc", (func())(nil), "nilchan", (chan int)(nil)),
		}},
		{"keys", Info, []call{
			info("bad keys", 42, "answer", nil, "x", true),
			info("dangling key", "a", 1, "dangling"),
			info("dangling spaced key", "a", 1, "dangling key"),
			info("empty keys", "", nil, "", "value", "", 0),
			info("quoted keys", "a b", 1, "a=b", 2, `a"b`, 3, "é", 4),
			info("key only non-string", stringer("k")),
			info("no pairs"),
		}},
		{"level filter debug", Debug, levelCalls()},
		{"level filter info", Info, levelCalls()},
		{"level filter warn", Warn, levelCalls()},
		{"level filter error", Error, levelCalls()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, got := logBoth(at, tt.min, tt.calls)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("output differs from slog.TextHandler's (-want +got):\n%s", diff)
			}
		})
	}
}

// levelCalls is one call at each level.
func levelCalls() []call {
	return []call{
		{Debug, "debug", []any{"n", 1}},
		{Info, "info", []any{"n", 2}},
		{Warn, "warn", []any{"n", 3}},
		{Error, "error", []any{"n", 4}},
	}
}

// TestTimeLikeSlog compares the time= field with log/slog's for record
// times in several zones and at the edges of a millisecond.
func TestTimeLikeSlog(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("IST", 5*3600+30*60), time.FixedZone("", -(9*3600 + 30*60)), time.FixedZone("", 45*60)}
	nanos := []int{0, 1, 999999, 1000000, 1000001, 499999999, 999000000, 999999999}
	for _, loc := range zones {
		for _, ns := range nanos {
			for _, year := range []int{1970, 2025, 2099} {
				tm := time.Date(year, 12, 31, 23, 59, 59, ns, loc)
				want, got := logBoth(tm, Info, []call{info("tick")})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("record time %v: output differs from slog.TextHandler's (-want +got):\n%s", tm, diff)
				}
			}
		}
	}
}

// TestClock: a Logger from New stamps records with the current time, in
// slog's format, and the rest of the line is slog's.
func TestClock(t *testing.T) {
	var sb, lb bytes.Buffer
	sl := slog.New(slog.NewTextHandler(&sb, nil))
	l := New(&lb, Info)
	before := time.Now().Truncate(time.Millisecond)
	sl.Info("changed", "object", "link moe", "took", time.Millisecond)
	l.Info("changed", "object", "link moe", "took", time.Millisecond)
	after := time.Now()
	stamp := regexp.MustCompile(`^time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:Z|[+-]\d\d:\d\d)) `)
	m := stamp.FindStringSubmatch(lb.String())
	if m == nil {
		t.Fatalf("no time= in slog's format: %q", lb.String())
	}
	if tm, err := time.Parse(time.RFC3339, m[1]); err != nil || tm.Before(before) || tm.After(after) {
		t.Errorf("time=%s (%v) is not between %v and %v", m[1], err, before, after)
	}
	if !stamp.MatchString(sb.String()) {
		t.Fatalf("slog's line has no time= as expected: %q", sb.String())
	}
	want, got := stamp.ReplaceAllString(sb.String(), ""), stamp.ReplaceAllString(lb.String(), "")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("output after time= differs from slog.TextHandler's (-want +got):\n%s", diff)
	}
}

// TestQuotingLikeSlog checks the quoting rule against log/slog's for every
// rune within a value, and for every byte that is not UTF-8 by itself.
func TestQuotingLikeSlog(t *testing.T) {
	const batch = 4096
	var args []any
	failures := 0
	flush := func() {
		defer func() { args = args[:0] }()
		if want, got := logBoth(at, Info, []call{info("runes", args...)}); want == got || failures >= 5 {
			return
		}
		// Show the first few pairs that differ, one by one.
		for i := 0; i < len(args) && failures < 5; i += 2 {
			if want, got := logBoth(at, Info, []call{info("rune", args[i:i+2]...)}); want != got {
				t.Errorf("%s=%+q: output differs from slog.TextHandler's (-want +got):\n%s", args[i], args[i+1], cmp.Diff(want, got))
				failures++
			}
		}
	}
	for r := rune(0); r <= '\U0010FFFF'; r++ {
		args = append(args, "r", "a"+string(r)+"b")
		if len(args) == batch {
			flush()
		}
	}
	for c := 0x80; c <= 0xff; c++ {
		args = append(args, "b", "a"+string([]byte{byte(c)})+"b")
	}
	flush()
}

// TestNil: a nil *Logger discards everything.
func TestNil(t *testing.T) {
	var l *Logger
	l.Debug("a")
	l.Info("b", "k", 1)
	l.Warn("c")
	l.Error("d", "err", errors.New("e"))
}

// writes records each Write call; it has no lock of its own, so the race
// detector sees a Logger that writes concurrently.
type writes struct{ calls []string }

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

// TestOneWritePerRecord: each record is one Write call of one whole line,
// also when goroutines log at once.
func TestOneWritePerRecord(t *testing.T) {
	var w writes
	l := New(&w, Debug)
	const goroutines, records = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range records {
				l.Info("record", "goroutine", g, "i", i, "text", "with\nnewline and spaces")
			}
		})
	}
	wg.Wait()
	if len(w.calls) != goroutines*records {
		t.Fatalf("%d Write calls for %d records", len(w.calls), goroutines*records)
	}
	line := regexp.MustCompile(`^time=\S+ level=INFO msg=record goroutine=\d+ i=\d+ text="with\\nnewline and spaces"\n$`)
	for _, c := range w.calls {
		if !line.MatchString(c) {
			t.Fatalf("Write call is not one whole record: %q", c)
		}
	}
}
