package cli

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPrintable: control characters but a newline and a tab, C1 controls
// and bytes that are not UTF-8 are written as \xNN; the rest, other
// languages' letters included, as it is.
func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"up\n\tlocal 192.0.2.1\n", "up\n\tlocal 192.0.2.1\n"},
		{"\x1b[2Jred\r\x00\x7f", `\x1b[2Jred\x0d\x00\x7f`},
		{"csi \u009b1m", `csi \xc2\x9b1m`},
		{"bad \xff\xfe end", `bad \xff\xfe end`},
		{"tunnel Zürich ✓ \ufffd", "tunnel Zürich ✓ \ufffd"},
	} {
		var b bytes.Buffer
		w := &printable{w: &b}
		w.Write([]byte(tt.in))
		w.Flush()
		if diff := cmp.Diff(tt.want, b.String()); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.in, diff)
		}
	}
}
