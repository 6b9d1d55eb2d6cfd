package engine

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestSameEndpointsNamed: the kernel refuses a second tunnel of one kind
// with the same endpoints (and GRE input key) with EEXIST, which the
// Linux seam can only word as "the name is taken …, or another tunnel has
// the same endpoints". Converge has the observation at hand: it names the
// tunnel tunneld sees with those endpoints (observed, or made earlier in
// the same plan), or the foreign device that has them (the observation
// carries a foreign tunnel's endpoints: a tester's message listed 32
// candidates for that one), and else says where one it cannot see may
// be: a device of the kind whose endpoints it lacks, or one moved into
// another network namespace, which stays registered here. A change in place to endpoints
// another tunnel has fails the same way.
func TestSameEndpointsNamed(t *testing.T) {
	// b follows eth0 (203.0.113.10): the configuration cannot tell
	// that it ends with a's endpoints (with the same literal ones, it
	// refuses the second).
	const a = "[tunnel.a]\nmode = \"gre\"\nlocal = \"203.0.113.10\"\nremote = \"198.51.100.2\"\n"
	const b = "[tunnel.b]\nmode = \"gre\"\nlocal = \"eth0\"\nremote = \"198.51.100.2\"\n"
	const unseen = `tunnel "b": the kernel holds another gre tunnel with the same endpoints (local 203.0.113.10 remote 198.51.100.2), one tunneld does not see: `
	const moved = `one moved into another network namespace (ip link set NAME netns …) stays registered here: find it with "ip -all netns exec ip -d link show type gre" (or nsenter into a container's) and delete it there (ip -n NS link del NAME), unless a device named b appeared since tunneld looked: file exists`
	other := model.Link{Mode: model.ModeGRE, Local: netip.MustParseAddr("203.0.113.10"), Remote: netip.MustParseAddr("198.51.100.2"), PMTUDisc: true, TTL: 64}
	const bMoves = "[tunnel.b]\nmode = \"gre\"\nlocal = \"eth0\"\nremote = \"198.51.100.3\"\n"
	tests := []struct {
		name string
		// first is applied before conf, when given.
		first, conf string
		// before is what the kernel holds besides world(): foreign
		// tunnels, with a device (here) or without (moved away); a
		// device called bare… is one of the kind whose endpoints the
		// observation lacks, gre7 a tunnel with other endpoints.
		before map[string]bool
		want   string
	}{
		{"two configured tunnels, one made in the same plan", "", a + b, nil,
			`tunnel "b": tunnel "a" has the same endpoints (gre local 203.0.113.10 remote 198.51.100.2), and the kernel keeps one tunnel per endpoint pair (give GRE tunnels different keys): file exists`},
		{"b changed to a's endpoints", a + bMoves, a + b, nil,
			`tunnel "b": tunnel "a" has the same endpoints (gre local 203.0.113.10 remote 198.51.100.2), and the kernel keeps one tunnel per endpoint pair (give GRE tunnels different keys): file exists`},
		{"a gre key of its own is no clash", "", a + b + "key = 5\n", nil, ""},
		{"a foreign gre device here, with the endpoints", "", b, map[string]bool{"gre9": true},
			`tunnel "b": the gre tunnel gre9, which tunneld does not own, has the same endpoints (local 203.0.113.10 remote 198.51.100.2), and the kernel keeps one tunnel per endpoint pair: delete it (ip link del gre9, or remove the OpenWrt interface that made it) or give this tunnel other endpoints (or another key): file exists`},
		{"foreign gre devices, their endpoints unknown", "", b, map[string]bool{"moved": false, "bare8": true, "bare9": true},
			unseen + `perhaps bare8, bare9, gre devices tunneld does not own, or ` + moved},
		{"a foreign gre device with other endpoints is not named", "", b, map[string]bool{"moved": false, "gre7": true},
			unseen + moved},
		{"one moved into another namespace", "", b, map[string]bool{"moved": false},
			unseen + moved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func(conf string) *config.Config {
				c, err := config.Parse("t.toml", []byte("[global]\nfirewall = false\n"+conf))
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			k := world()
			if tt.first != "" {
				if _, err := Converge(ctx, k, parse(tt.first), nil); err != nil {
					t.Fatal(err)
				}
			}
			for name, here := range tt.before {
				if strings.HasPrefix(name, "bare") {
					// A device of the kind whose endpoints the
					// observation lacks.
					k.AddDevice(model.Device{Name: name, Kind: "gre", MTU: 1476})
					continue
				}
				l := other
				l.Name = name
				if name == "gre7" {
					l.Remote = netip.MustParseAddr("198.51.100.7")
				}
				k.Tunnels[name] = l
				if here {
					k.AddDevice(model.Device{Name: name, Kind: "gre", MTU: 1476})
				}
			}
			_, err := Converge(ctx, k, parse(tt.conf), nil)
			// The first failure is the tunnel's creation or change (the
			// fake kernel fails what follows it, where Linux skips it).
			got := ""
			if err != nil {
				got, _, _ = strings.Cut(err.Error(), "\n")
				if !errors.Is(err, syscall.EEXIST) {
					t.Errorf("errors.Is(err, EEXIST) = false for %v", err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSameEndpointsKeyHint: the wording of an EEXIST between two of
// tunneld's tunnels says to give them different keys for gre alone:
// ipip, sit and ip6tnl tunnels have no key to tell them apart (a tester
// took the hint to be printed for ip6tnl too).
func TestSameEndpointsKeyHint(t *testing.T) {
	const hint = "(give GRE tunnels different keys)"
	for _, mode := range model.Modes {
		local, remote := "192.0.2.1", "192.0.2.2"
		if mode.OuterIPv6() {
			local, remote = "2001:db8::1", "2001:db8::2"
		}
		a := model.Link{Name: "a", Mode: mode, Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote)}
		b := a
		b.Name = "b"
		got := sameEndpoints(b, plan.LinkChange, map[string]model.Link{"a": a}, nil)
		if !strings.HasPrefix(got, `tunnel "a" has the same endpoints`) || strings.Contains(got, hint) != (mode == model.ModeGRE) {
			t.Errorf("%s: %s", mode, got)
		}
	}
}
