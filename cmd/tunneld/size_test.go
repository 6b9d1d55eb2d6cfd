package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unwanted are standard packages the router binary does without, each
// replaced by a small piece of tunneld because it cost flash (see
// BENCHMARKS.md, "Sizes"). A symbol of one of them in the binary means
// something links it again.
var unwanted = []struct{ prefix, why string }{
	{"regexp.", "about 140 KB for mipsle; pkg/config words the TOML library's messages with strings"},
	{"log/slog.", "pkg/logfmt writes the same lines"},
	{"encoding/json.(*encodeState)", "pkg/minijson writes the status socket's JSON"},
	{"encoding/json.(*decodeState)", "pkg/minijson reads the sysctl record"},
	{"golang.org/x/net/dns/dnsmessage.", "pkg/resolve walks DNS answers itself"},
	{"text/template.", "nothing needs templates"},
	{"net/http.", "nothing speaks HTTP"},
	{"crypto/", "crypto/sha256 alone is about 196 KB for mipsle (its FIPS module); config.Sum, which tells an edited file from the loaded one, is FNV-1a"},
	{"fmt.(*ss)", "fmt's scanner (Sscanf and friends), about 32 KB for mipsle; pkg/config unquotes quoted section names with strconv"},
	{"slices.pdqsortCmpFunc[go.shape.struct", "slices.SortFunc instantiated for a struct type, about 11 KB for mipsle each; sort.Sort through a small sort.Interface (model.SortForeignRules) gives the very same order"},
}

// TestUnwantedPackages builds the mipsle binary, as `make cross` does,
// and checks that none of the unwanted packages is linked into it.
func TestUnwantedPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a cross binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tunneld")
	build := exec.Command(gobin, "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=mipsle", "GOMIPS=softfloat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(gobin, "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		sym := strings.Join(f[2:], " ")
		for _, u := range unwanted {
			if strings.HasPrefix(sym, u.prefix) && seen[u.prefix] == "" {
				seen[u.prefix] = sym
			}
		}
	}
	for _, u := range unwanted {
		if sym := seen[u.prefix]; sym != "" {
			t.Errorf("the binary links %s (symbol %s); it should not: %s", strings.TrimSuffix(u.prefix, "."), sym, u.why)
		}
	}
}
