package vmharness

import (
	"strconv"
	"strings"
)

// TailLines is how many lines of the cleaned guest console a GuestError
// carries.
const TailLines = 60

// Marker lines the generated /init prints around the workload. The nonce is
// random per run, so a workload that prints marker-like text (or a source
// file containing these constants) cannot fake a result.
const (
	beginMarker = "TUNNELD-VM-BEGIN"
	endMarker   = "TUNNELD-VM-END"
)

// cleanLine removes what a serial console adds around text: carriage
// returns, ANSI/VT100 escape sequences (the x86 BIOS sends several before
// the first newline) and other control characters except tab. The trailing
// newline, if any, is dropped too.
func cleanLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == 0x1b:
			i = skipEscape(s, i)
		case ch == '\t':
			b.WriteByte(ch)
		case ch < 0x20 || ch == 0x7f:
			// \r, \n, NUL, BEL and the like.
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// skipEscape returns the index of the last byte of the escape sequence that
// starts with the ESC at s[i].
func skipEscape(s string, i int) int {
	j := i + 1
	if j >= len(s) {
		return i
	}
	switch s[j] {
	case '[': // CSI: parameters 0x30–0x3f, intermediates 0x20–0x2f, final 0x40–0x7e.
		j++
		for j < len(s) && s[j] >= 0x20 && s[j] <= 0x3f {
			j++
		}
		if j < len(s) && s[j] >= 0x40 && s[j] <= 0x7e {
			return j
		}
		return j - 1
	case ']': // OSC: ends with BEL or ESC \.
		for j++; j < len(s); j++ {
			if s[j] == 0x07 {
				return j
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 1
			}
		}
		return len(s) - 1
	default: // ESC, intermediates 0x20–0x2f, final 0x30–0x7e (ESC c, ESC ( B, ESC 7).
		for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
			j++
		}
		if j < len(s) && s[j] >= 0x30 && s[j] <= 0x7e {
			return j
		}
		return j - 1
	}
}

// parseEndMarker reports the workload's exit status if the cleaned line
// carries the end marker for nonce. The marker may follow other text on the
// same line (kernel messages are not line-synchronised with user space).
func parseEndMarker(line, nonce string) (status int, ok bool) {
	key := endMarker + " " + nonce + " status="
	i := strings.Index(line, key)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 3 {
		return 0, false
	}
	v, err := strconv.Atoi(rest[:n])
	if err != nil {
		return 0, false
	}
	return v, true
}

// hasBeginMarker reports whether the cleaned line says the workload started.
func hasBeginMarker(line, nonce string) bool {
	return strings.Contains(line, beginMarker+" "+nonce)
}

// tailBuffer keeps the last n lines written to it.
type tailBuffer struct {
	n     int
	lines []string
	next  int
	full  bool
}

func newTailBuffer(n int) *tailBuffer {
	return &tailBuffer{n: n, lines: make([]string, n)}
}

func (t *tailBuffer) add(line string) {
	if t.n == 0 {
		return
	}
	t.lines[t.next] = line
	t.next = (t.next + 1) % t.n
	if t.next == 0 {
		t.full = true
	}
}

// get returns the kept lines, oldest first.
func (t *tailBuffer) get() []string {
	if !t.full {
		return append([]string(nil), t.lines[:t.next]...)
	}
	out := make([]string, 0, t.n)
	out = append(out, t.lines[t.next:]...)
	return append(out, t.lines[:t.next]...)
}
