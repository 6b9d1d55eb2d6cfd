package vmharness

import (
	"slices"
	"testing"
)

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{"amd64": AMD64, "x86_64": AMD64, "mipsle": MIPSLE, "MIPSEL": MIPSLE, "mips": MIPS} {
		got, err := ParseArch(in)
		if err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseArch("arm64"); err == nil {
		t.Error("ParseArch(arm64) succeeded")
	}
	for _, a := range Arches() {
		if _, err := lookupGuest(a); err != nil {
			t.Errorf("no guest for %s", a)
		}
	}
}

func TestGoEnv(t *testing.T) {
	if got := MIPSLE.GoEnv(); !slices.Contains(got, "GOMIPS=softfloat") || !slices.Contains(got, "GOARCH=mipsle") || !slices.Contains(got, "CGO_ENABLED=0") {
		t.Errorf("mipsle GoEnv = %q", got)
	}
	if got := AMD64.GoEnv(); !slices.Contains(got, "GOARCH=amd64") {
		t.Errorf("amd64 GoEnv = %q", got)
	}
}
