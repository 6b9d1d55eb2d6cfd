package cli

import (
	"bytes"
	"io"
)

// errLines writes to w with "<3>", syslog's err priority, at the start of
// every line, which systemd's journal takes as the line's priority and
// removes: the commands write only errors and warnings on stderr.
type errLines struct {
	w   io.Writer
	mid bool // the last write ended inside a line
}

func (e *errLines) Write(p []byte) (int, error) {
	b := make([]byte, 0, len(p)+8)
	for rest := p; len(rest) > 0; {
		if !e.mid {
			b = append(b, "<3>"...)
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			b = append(b, rest...)
			e.mid = true
			break
		}
		b = append(b, rest[:i+1]...)
		rest = rest[i+1:]
		e.mid = false
	}
	if _, err := e.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
