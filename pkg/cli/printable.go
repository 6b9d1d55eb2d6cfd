package cli

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// printable writes what status prints to w once it is whole, with every
// control character but a newline or a tab, every C1 control and every
// byte that is not UTF-8 written as \xNN: the daemon's facts come from a
// socket in the state directory, and a tester's fake daemon there made
// status clear the screen and colour its lines with a last error of
// escape sequences (kernel strings, an alias, are quoted where they are
// printed already).
type printable struct {
	w   io.Writer
	buf bytes.Buffer
}

// Write keeps p for Flush.
func (p *printable) Write(b []byte) (int, error) { return p.buf.Write(b) }

// Flush writes what was kept, escaped, to the underlying writer.
func (p *printable) Flush() {
	b := p.buf.Bytes()
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1,
			r < 0x20 && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f:
			for _, c := range b[:n] {
				out = fmt.Appendf(out, `\x%02x`, c)
			}
		default:
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	p.w.Write(out)
	p.buf.Reset()
}
