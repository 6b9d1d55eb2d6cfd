package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that the loader never panics and that every error it
// returns carries a position inside the input.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/seeds/*/*.toml")
	variants, _ := filepath.Glob("../../testdata/seeds/*/*/*.toml")
	examples, _ := filepath.Glob("../../testdata/examples/*.toml")
	seeds = append(seeds, variants...)
	seeds = append(seeds, examples...)
	seeds = append(seeds, "../../testdata/reference.toml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(moe + "ttl = \"x\"\n[[route]]\nto = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %v is not a non-empty Errors", err)
		}
		lines := 1
		for _, b := range data {
			if b == '\n' {
				lines++
			}
		}
		for _, e := range es {
			if e.Line < 1 || e.Line > lines || e.Col < 1 {
				t.Fatalf("error %q has position %d:%d outside the input (%d lines)", e, e.Line, e.Col, lines)
			}
		}
	})
}
