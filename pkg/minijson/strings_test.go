package minijson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/minijson"
)

// TestEveryRune: each rune, each byte that is not UTF-8 on its own, and
// each \uXXXX escape is written and read as encoding/json does.
func TestEveryRune(t *testing.T) {
	var runes []string
	for r := rune(0); r <= utf8.MaxRune; r += 0x1000 {
		var b strings.Builder
		for c := r; c < r+0x1000; c++ {
			b.WriteRune(c) // surrogates as U+FFFD
		}
		runes = append(runes, b.String())
	}
	for c := 0x80; c < 0x100; c++ {
		runes = append(runes, string([]byte{'a', byte(c), 'b', byte(c)}))
	}
	runes = append(runes, "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80", "\xe2\x80", "\xf0\x9f\x98")
	for _, s := range runes {
		want, _ := json.Marshal(map[string]string{s: s})
		got, err := minijson.Marshal(map[string]string{s: s})
		if err != nil || !bytes.Equal(want, got) {
			t.Errorf("Marshal(%.20q) = %.80q, %v; want %.80q", s, got, err, want)
		}
	}
	var esc strings.Builder
	esc.WriteString(`["`)
	for r := range 0x10000 {
		fmt.Fprintf(&esc, `\u%04x\u%04X`, r, r)
		if r%64 == 0 {
			esc.WriteString(`","`)
		}
	}
	esc.WriteString(`"]`)
	var want, got []string
	if err := json.Unmarshal([]byte(esc.String()), &want); err != nil {
		t.Fatal(err)
	}
	if err := minijson.Unmarshal([]byte(esc.String()), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("every escape (-want +got):\n%s", diff)
	}
}
