package cli

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
)

// TestResolveAll: the commands look every peer name up through
// Env.Lookup, keep each name's addresses in order (v4-mapped ones as
// IPv4), and report a failed lookup on stderr, leaving its name out.
func TestResolveAll(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(`
[tunnel.a]
mode = "ipip"
local = "192.0.2.1"
remote = "peer-a.example"
[tunnel.b]
mode = "ipip"
local = "192.0.2.1"
remote = "peer-b.example"
`))
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string][]netip.Addr{
		"peer-a.example": {netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("::ffff:198.51.100.2")},
	}
	var errb bytes.Buffer
	env := &Env{Stderr: &errb, Context: context.Background(), Lookup: func(_ context.Context, name string) ([]netip.Addr, error) {
		if a, ok := answers[name]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}}
	got := resolveAll(env, c)
	want := map[string][]netip.Addr{"peer-a.example": {netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.9")}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if want := "tunneld: resolve peer-b.example: no such host\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
}
