package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTooDeep: arrays and inline tables nested up to maxNesting pass the
// scan, one more is refused at the bracket that went too deep; brackets
// inside every kind of string and inside comments do not count, and
// neither do the quotes and backslashes that do not end a string.
func TestTooDeep(t *testing.T) {
	open := func(n int) string { return strings.Repeat("[", n) }
	shut := func(n int) string { return strings.Repeat("]", n) }
	inline := func(n int) string { return strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) }
	const msg = "nested deeper than 16 arrays and inline tables: tunneld's configuration needs at most 3"
	at := func(line, col int) *Error { return &Error{File: "t.toml", Line: line, Col: col, Msg: msg} }
	for _, tt := range []struct {
		name, src string
		want      *Error
	}{
		{"arrays at the limit", "x = " + open(16) + shut(16), nil},
		{"arrays one more", "x = " + open(17) + shut(17), at(1, 21)},
		{"inline tables at the limit", "x = " + inline(16), nil},
		{"inline tables one more", "x = " + inline(17), at(1, 53)},
		{"mixed, on later lines", "[global]\nx = [\n  {a = " + open(14) + "\n" + open(1) + shut(16) + "}]\n", at(4, 1)},
		{"headers and sections", "[global]\n[[route]]\n[tunnel.\"a[\"]\n" + "x = " + open(16) + shut(16) + "\n[[route]]\nx = " + open(16), nil},
		{"closing brackets too many", "x = ]]]]\ny = " + open(16), nil},
		{"column in runes", "x = [\"é\", " + open(16), at(1, 26)},

		{"basic string", `x = ["` + open(20) + `", ` + open(15), nil},
		{"basic string, escaped quote", `x = ["\"` + open(20) + `", ` + open(15), nil},
		{"basic string, escaped backslash ends it", `x = ["\\", ` + open(16), at(1, 27)},
		{"basic string, unclosed, ends at its line", `x = "` + open(20) + "\ny = " + open(17), at(2, 21)},
		{"basic string, unclosed, a backslash at its end", "x = \"a\\\ny = " + open(17), at(2, 21)},
		{"hash in a basic string is no comment", `x = ["#", ` + open(16), at(1, 26)},
		{"literal string", `x = ['` + open(20) + `', ` + open(15), nil},
		{"literal string, backslash escapes nothing", `x = ['\', ` + open(16), at(1, 26)},
		{"multi-line basic string", "x = [\"\"\"\n" + open(20) + ` "" " \"""` + "\n" + open(20) + "\n\"\"\", " + open(15), nil},
		{"multi-line basic string, then the line after", "x = \"\"\"\n" + open(20) + "\n\"\"\"\ny = " + open(17), at(4, 21)},
		{"multi-line basic string ending in quotes", `x = ["""a""""` + ", " + open(16), at(1, 31)},
		{"multi-line literal string", "x = ['''\n" + open(20) + " '' ' \\'''\n, " + open(16), at(3, 18)},
		{"multi-line literal string ending in quotes", `x = ['''a''''` + ", " + open(16), at(1, 31)},
		{"comment", "# " + open(40) + "\nx = " + open(16) + " # " + open(40) + "\n" + shut(16), nil},
		{"comment, then the next line", "# " + open(40) + "\nx = " + open(17), at(2, 21)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tooDeep("t.toml", tt.src)); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

// TestParseTooDeep: Parse refuses a deeply nested file with the scan's
// error alone, before the TOML library's memory, which grows with the
// square of the depth, is spent on it (a tester's 8 000 nested arrays,
// 16 KB, took 112 MB; 50 000 inline tables were killed at 24 GB).
func TestParseTooDeep(t *testing.T) {
	for _, tt := range []struct {
		src string
		col int
	}{
		{"[global]\nx = " + strings.Repeat("[", 8000) + strings.Repeat("]", 8000) + "\n", 21},
		{"[global]\nx = " + strings.Repeat("{a=", 4000) + "1" + strings.Repeat("}", 4000) + "\n", 53},
	} {
		_, err := Parse("t.toml", []byte(tt.src))
		want := Errors{{File: "t.toml", Line: 2, Col: tt.col, Msg: "nested deeper than 16 arrays and inline tables: tunneld's configuration needs at most 3"}}
		if diff := cmp.Diff(error(want), err); diff != "" {
			t.Errorf("%.20q… (-want +got):\n%s", tt.src, diff)
		}
	}
}
