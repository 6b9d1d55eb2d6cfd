// Package logfmt is tunneld's logger: one line of key=value pairs per
// record, byte for byte as log/slog's TextHandler writes them (scripts
// and tests parse these lines), without log/slog's size in the binary.
//
//	time=2025-01-02T15:04:05.000+01:00 level=INFO msg=changed object="route 10.9.0.0/16 table main" cmd="ip route add 10.9.0.0/16 dev moe table main proto 116" reason=start
package logfmt

import (
	"io"
	"sync"
	"time"
)

// badKey is the key of a value that has none.
const badKey = "!BADKEY"

// Logger writes records at or above its minimum level to a writer. It is
// safe for concurrent use: each record is one Write call. A nil *Logger
// discards everything.
type Logger struct {
	w   io.Writer
	min Level
	mu  sync.Mutex
	now func() time.Time
	// high, when set, takes the records at Warn and above (see Split).
	high io.Writer
	// priority: each record starts with its syslog priority (see
	// PrefixPriority).
	priority bool
}

// Split sends the records at Warn and above to high, the others to the
// logger's writer: for a service manager that takes a line's importance
// from the stream it came on, as OpenWrt's procd logs a service's stdout
// at info and its stderr at err. Call it before the logger is used.
func (l *Logger) Split(high io.Writer) { l.high = high }

// PrefixPriority starts each record with its syslog priority in angle
// brackets, "<3>" for Error, "<4>" Warn, "<6>" Info, "<7>" Debug, which
// systemd's journal takes as the line's priority and removes (sd-daemon(3)).
// Call it before the logger is used.
func (l *Logger) PrefixPriority() { l.priority = true }

// syslogPriority is the syslog priority of a level.
func syslogPriority(level Level) byte {
	switch {
	case level >= Error:
		return '3'
	case level >= Warn:
		return '4'
	case level >= Info:
		return '6'
	}
	return '7'
}

// New returns a logger that writes the records at level and above to w.
func New(w io.Writer, level Level) *Logger {
	return &Logger{w: w, min: level, now: time.Now}
}

// Debug logs msg at Debug level; args are alternating keys (strings) and
// values.
func (l *Logger) Debug(msg string, args ...any) { l.log(Debug, msg, args) }

// Info logs msg at Info level; args are alternating keys (strings) and
// values.
func (l *Logger) Info(msg string, args ...any) { l.log(Info, msg, args) }

// Warn logs msg at Warn level; args are alternating keys (strings) and
// values.
func (l *Logger) Warn(msg string, args ...any) { l.log(Warn, msg, args) }

// Error logs msg at Error level; args are alternating keys (strings) and
// values.
func (l *Logger) Error(msg string, args ...any) { l.log(Error, msg, args) }

// log formats one record and writes it, as log/slog's TextHandler does:
// time, level and msg, then the pairs. A value without a string key is
// shown as !BADKEY=value; a nil value under an empty key is left out.
func (l *Logger) log(level Level, msg string, args []any) {
	if l == nil || level < l.min {
		return
	}
	b := make([]byte, 0, 256)
	if l.priority {
		b = append(b, '<', syslogPriority(level), '>')
	}
	b = append(b, "time="...)
	b = l.now().AppendFormat(b, timeLayout)
	b = append(b, " level="...)
	b = append(b, level.String()...)
	b = append(b, " msg="...)
	b = appendString(b, msg)
	for len(args) > 0 {
		key, ok := args[0].(string)
		var v any
		switch {
		case !ok:
			key, v, args = badKey, args[0], args[1:]
		case len(args) == 1:
			key, v, args = badKey, key, nil
		default:
			v, args = args[1], args[2:]
		}
		if key == "" && v == nil {
			continue
		}
		b = append(b, ' ')
		b = appendString(b, key)
		b = append(b, '=')
		b = appendValue(b, v)
	}
	b = append(b, '\n')
	w := l.w
	if l.high != nil && level >= Warn {
		w = l.high
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w.Write(b)
}
