package engine

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// refusedConf is the tester's: a gre tunnel and routes through it, in
// main and in a table a rule for the LAN reaches.
const refusedConf = `
[tables]
vpn = 100
[tunnel.tG]
mode = "%s"
local = "203.0.113.10"
remote = "192.0.2.4"
[[route]]
to = "10.70.0.0/24"
dev = "tG"
[[route]]
to = "default"
dev = "tG"
table = "vpn"
[[rule]]
iif = "eth1"
table = "vpn"
`

// TestRefusedTunnelRoutesUnreachable: a tunnel whose creation (or
// re-creation in another mode) or setting up the kernel refuses is not
// up like any other: the converge that met the refusal plans again with
// it marked so (model.Inputs.Refused) and applies that, so that the
// routes through it stand as unreachable routes when it returns (with
// the refusal as its error) instead of being absent, which let LAN
// traffic for the tunnel fall through to main and out by the WAN
// unencapsulated (a tester saw it with a foreign gre device holding the
// endpoints). A second converge with the obstacle still there changes
// nothing and fails the same way; once it is gone the routes come back
// in place. A refused change of the tunnel's endpoints leaves it as it
// was, up with its old ones, and the routes through it stay (their
// traffic is encapsulated still; no route is absent).
func TestRefusedTunnelRoutesUnreachable(t *testing.T) {
	unreachable, routed := refusedConfRoutes()
	foreign := func(name string, remote string, here bool) func(k *fakekernel.Kernel) {
		return func(k *fakekernel.Kernel) {
			k.Tunnels[name] = model.Link{Name: name, Mode: model.ModeGRE, Local: netip.MustParseAddr("203.0.113.10"), Remote: netip.MustParseAddr(remote), PMTUDisc: true, TTL: 64}
			if here {
				k.AddDevice(model.Device{Name: name, Kind: "gre", MTU: 1476})
			}
		}
	}
	gone := func(name string) func(k *fakekernel.Kernel) {
		return func(k *fakekernel.Kernel) {
			delete(k.Tunnels, name)
			if _, ok := k.Devices[name]; ok {
				k.DelDevice(name)
			}
		}
	}
	refuseUp := func(k *fakekernel.Kernel) {
		k.SetFail(func(op plan.Op) error {
			if op.Kind == plan.LinkUp && op.Name == "tG" {
				return syscall.EPERM
			}
			return nil
		})
	}
	refuseFilter := func(k *fakekernel.Kernel) {
		k.SetFail(func(op plan.Op) error {
			if op.Kind == plan.FilterReplace {
				return syscall.ENOENT // no nft_masq, say
			}
			return nil
		})
	}
	tests := []struct {
		name string
		// first, when given, is applied before: the mode and remote
		// of the tunnel then.
		first, firstRemote string
		obstacle, clear    func(k *fakekernel.Kernel)
		// want are tunneld's routes with the obstacle; reason tG's
		// status's (its prefix; "" for up).
		want   []model.Route
		reason string
	}{
		{name: "a foreign gre device has the endpoints", obstacle: foreign("foo", "192.0.2.4", true), clear: gone("foo"),
			want: unreachable, reason: "creating it failed: the gre tunnel foo, which tunneld does not own, has the same endpoints"},
		{name: "a tunnel moved into another namespace has them", obstacle: foreign("moved", "192.0.2.4", false), clear: gone("moved"),
			want: unreachable, reason: "creating it failed: the kernel holds another gre tunnel with the same endpoints"},
		{name: "no gre driver", obstacle: func(k *fakekernel.Kernel) { k.Drivers = map[string]bool{"ipip": true} },
			clear: func(k *fakekernel.Kernel) { k.Drivers = nil },
			want:  unreachable, reason: "creating it failed: kernel has no gre support"},
		{name: "re-created from ipip, refused", first: "ipip", firstRemote: "192.0.2.4",
			obstacle: foreign("foo", "192.0.2.4", true), clear: gone("foo"),
			want: unreachable, reason: "creating it failed: the gre tunnel foo, which tunneld does not own, has the same endpoints"},
		{name: "setting it up refused", obstacle: refuseUp, clear: func(k *fakekernel.Kernel) { k.SetFail(nil) },
			want: unreachable, reason: "setting it up failed: operation not permitted"},
		// Both seams set no tunnel up once the plan's table failed
		// (kernel.ErrUnguarded): a tester's kernel without nft_masq
		// came up with its tunnels forwarding, unfiltered.
		{name: "its nftables table could not be written", obstacle: refuseFilter, clear: func(k *fakekernel.Kernel) { k.SetFail(nil) },
			want: unreachable, reason: "setting it up failed: not set up: tunneld's nftables table, which guards it, could not be written"},
		// Left up between its old endpoints, it sent to a peer the
		// configuration no longer names (a tester's, with a reload
		// moving a remote to a foreign tunnel's).
		{name: "a change of its endpoints refused", first: "gre", firstRemote: "192.0.2.5",
			obstacle: foreign("foo", "192.0.2.4", true), clear: gone("foo"),
			want: unreachable, reason: "moving it to its endpoints failed: the gre tunnel foo, which tunneld does not own, has the same endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func(mode, remote string) *config.Config {
				conf := strings.Replace(refusedConf, "%s", mode, 1)
				conf = strings.Replace(conf, "192.0.2.4", remote, 1)
				c, err := config.Parse("t.toml", []byte(conf))
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			c := parse("gre", "192.0.2.4")
			k := world()
			if tt.first != "" {
				if _, err := Converge(ctx, k, parse(tt.first, tt.firstRemote), nil); err != nil {
					t.Fatal(err)
				}
			}
			tt.obstacle(k)
			rep, err := Converge(ctx, k, c, nil)
			if err == nil {
				t.Fatal("converge with the obstacle worked")
			}
			if diff := cmp.Diff(tt.want, sortedRoutes(ownRoutes(k)), dumpOpts); diff != "" {
				t.Errorf("tunneld's routes (-want +got):\n%s", diff)
			}
			var st desired.TunnelStatus
			for _, ts := range rep.Last.Want.Tunnels {
				if ts.Name == "tG" {
					st = ts
				}
			}
			if tt.reason == "" {
				if !st.Up || st.Reason != "" || len(st.Held) > 0 {
					t.Errorf("tG's status %+v, want up", st)
				}
			} else {
				if st.Up || !strings.HasPrefix(st.Reason, tt.reason) {
					t.Errorf("tG's status: up %v, reason %q, want down: %q…", st.Up, st.Reason, tt.reason)
				}
				if diff := cmp.Diff(unreachable, sortedRoutes(st.Held), dumpOpts); diff != "" {
					t.Errorf("tG's held routes (-want +got):\n%s", diff)
				}
				if d, ok := k.Devices["tG"]; ok && d.Up {
					t.Errorf("tG is up in the kernel: %+v", k.Tunnels["tG"])
				}
			}
			again, err2 := Converge(ctx, k, c, nil)
			if len(again.Applied) > 0 {
				t.Errorf("second converge changed:\n%v", again.Applied)
			}
			if err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second converge's error:\n%v\nwant the first's:\n%v", err2, err)
			}
			if errors.Is(err, syscall.EEXIST) != errors.Is(err2, syscall.EEXIST) {
				t.Errorf("errno differs: %v, then %v", err, err2)
			}
			if diff := cmp.Diff(tt.want, sortedRoutes(ownRoutes(k)), dumpOpts); diff != "" {
				t.Errorf("tunneld's routes after the second converge (-want +got):\n%s", diff)
			}
			tt.clear(k)
			if _, err := Converge(ctx, k, c, nil); err != nil {
				t.Fatalf("converge without the obstacle: %v", err)
			}
			if diff := cmp.Diff(routed, sortedRoutes(ownRoutes(k)), dumpOpts); diff != "" {
				t.Errorf("tunneld's routes without the obstacle (-want +got):\n%s", diff)
			}
			if s, err := Look(ctx, k, c, nil); err != nil || !s.Plan.Empty() {
				t.Errorf("then (%v):\n%s", err, s.Plan)
			}
		})
	}
}

// sortedRoutes is rs sorted in model.CompareRoute's order.
func sortedRoutes(rs []model.Route) []model.Route {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b model.Route) int { return model.CompareRoute(&a, &b) })
	return rs
}

// TestRefusedRounds: a converge that meets a refusal stays within its
// rounds: with the refusal lasting, the creation is tried once a round,
// MaxRounds times, and no more (the rounds after the first plan with
// the tunnel not up, which changes nothing more once the unreachable
// routes are in). When the last round finds the refusal over (the
// kernel creates the tunnel at its last try), one more round puts the
// routes through it in place of the unreachable ones, rather than leave
// them refused with the tunnel up until the next converge.
func TestRefusedRounds(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(strings.Replace(refusedConf, "%s", "gre", 1)))
	if err != nil {
		t.Fatal(err)
	}
	unreachable, routed := refusedConfRoutes()
	for _, tt := range []struct {
		name string
		// refusals is how many creations the kernel refuses.
		refusals, tries int
		want            []model.Route
	}{
		{"lasting", 100, MaxRounds, unreachable},
		{"over at the last round's try", MaxRounds - 1, MaxRounds, routed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := world()
			tries := 0
			k.Fail = func(op plan.Op) error {
				if op.Kind != plan.LinkAdd || op.Link.Name != "tG" {
					return nil
				}
				tries++
				if tries <= tt.refusals {
					return syscall.EPERM
				}
				return nil
			}
			if _, err := Converge(ctx, k, c, nil); err == nil {
				t.Error("no error")
			}
			if tries != tt.tries {
				t.Errorf("%d creations tried, want %d", tries, tt.tries)
			}
			if diff := cmp.Diff(tt.want, sortedRoutes(ownRoutes(k)), dumpOpts); diff != "" {
				t.Errorf("tunneld's routes (-want +got):\n%s", diff)
			}
		})
	}
}

// refusedConfRoutes are refusedConf's two routes through tG, in
// model.CompareRoute's order: as the unreachable routes that stand for
// them while tG is not up, and as themselves.
func refusedConfRoutes() (unreachable, routed []model.Route) {
	p := netip.MustParsePrefix
	unreachable = []model.Route{
		{Table: 100, Dst: p("0.0.0.0/0"), Type: model.RouteUnreachable},
		{Table: model.TableMain, Dst: p("10.70.0.0/24"), Type: model.RouteUnreachable},
	}
	routed = []model.Route{
		{Table: 100, Dst: p("0.0.0.0/0"), Dev: "tG"},
		{Table: model.TableMain, Dst: p("10.70.0.0/24"), Dev: "tG"},
	}
	return unreachable, routed
}
