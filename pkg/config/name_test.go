package config

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// sscanfQuoted is what name() used before unquotePrefix: fmt's scanner.
func sscanfQuoted(s string) (string, bool) {
	var out string
	_, err := fmt.Sscanf(s, "%q", &out)
	return out, err == nil
}

type unquoted struct {
	Out string
	OK  bool
}

// The quoted path components unquotePrefix reads, and what fmt.Sscanf
// with %q made of them.
var unquoteCases = []string{
	`"moe"`,
	`"a b"`,
	`"a.b"`,
	`"a[0]"`,
	`"say \"hi\""`,
	`"back\\slash"`,
	`"tab\there"`,
	`"nl\n"`,
	`"\x41\u00e9\U0001F600\101"`,
	`"é ü 世界"`,
	`""`,
	`"ends"trailing`,
	`"ends".next`,
	`"\\"`,
	`"\\\""`,
	`"unterminated`,
	`"unterminated\"`,
	`"bad \q escape"`,
	`"bad \x4 hex"`,
	`"raw` + "\n" + `newline"`,
	"`raw string`",
	`'c'`,
	`moe`,
	``,
	`"`,
}

func TestUnquotePrefixAgreesWithSscanf(t *testing.T) {
	for _, s := range unquoteCases {
		t.Run(s, func(t *testing.T) {
			var want unquoted
			if len(s) > 0 && s[0] == '"' { // name() only asks for these
				want.Out, want.OK = sscanfQuoted(s)
			}
			var got unquoted
			got.Out, got.OK = unquotePrefix(s)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("unquotePrefix(%q) (-want +got):\n%s", s, diff)
			}
		})
	}
}

// TestTableName: a section's name comes back from its path, quoted or
// not, as it was written.
func TestTableName(t *testing.T) {
	for _, name := range []string{"moe", "Moe-1_x", "a b", "a.b", "a[0]", `q"uote`, `back\slash`, "tab\t", "é", "\xff\xfe", ""} {
		t.Run(name, func(t *testing.T) {
			p := keyPath("tunnel").key(name)
			tb := &table{path: p}
			if diff := cmp.Diff(name, tb.name()); diff != "" {
				t.Errorf("name() of %s (-want +got):\n%s", p, diff)
			}
			nested := &table{path: p.key("x")}
			if got := string(parent(nested.path)); got != string(p) {
				t.Errorf("parent(%s) = %s, want %s", nested.path, got, p)
			}
		})
	}
}

func FuzzUnquotePrefix(f *testing.F) {
	for _, s := range unquoteCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// fmt's scanner reads invalid UTF-8 as U+FFFD; the path
		// components name() reads are strconv.Quote's, which are valid.
		if len(s) == 0 || s[0] != '"' || !utf8.ValidString(s) {
			return
		}
		var want, got unquoted
		want.Out, want.OK = sscanfQuoted(s)
		got.Out, got.OK = unquotePrefix(s)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("unquotePrefix(%q) (-want +got):\n%s", s, diff)
		}
	})
}
