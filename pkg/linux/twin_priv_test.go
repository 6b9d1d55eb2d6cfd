package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// keyRoutes lists the namespace's routes to dst in table 1000, in the
// kernel's order (the order its replace and lookup go by), as "proto P
// TYPE metric M via G dev D", a multipath route with each of its
// nexthops.
func keyRoutes(t *testing.T, dst string) []string {
	t.Helper()
	types := map[uint8]string{unix.RTN_UNICAST: "unicast", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_BLACKHOLE: "blackhole", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw"}
	dev := func(i uint32) string {
		if i == 0 {
			return "-"
		}
		ifc, err := net.InterfaceByIndex(int(i))
		if err != nil {
			t.Fatal(err)
		}
		return ifc.Name
	}
	gw := func(ip net.IP) string {
		if ip == nil {
			return "-"
		}
		a, _ := netip.AddrFromSlice(ip)
		return a.Unmap().String()
	}
	var out []string
	for _, r := range routesOf(t, dst) {
		if r.Attributes.Table != 1000 {
			continue
		}
		s := fmt.Sprintf("proto %d %s metric %d", r.Protocol, types[r.Type], r.Attributes.Priority)
		if r.Type == unix.RTN_UNICAST {
			s += fmt.Sprintf(" via %s dev %s", gw(r.Attributes.Gateway), dev(r.Attributes.OutIface))
		}
		if r.Attributes.Src != nil {
			s += " src " + gw(r.Attributes.Src)
		}
		for _, nh := range r.Attributes.Multipath {
			s += fmt.Sprintf(" nexthop via %s dev %s", gw(nh.Gateway), dev(nh.Hop.IfIndex))
		}
		out = append(out, s)
	}
	return out
}

// foreignOf leaves tunneld's routes (protocol 116) out of rs.
func foreignOf(rs []string) []string {
	var out []string
	for _, r := range rs {
		if !strings.HasPrefix(r, fmt.Sprintf("proto %d ", model.RouteProtocol)) {
			out = append(out, r)
		}
	}
	return out
}

// twinFamily is one family's case for TestPrivilegedForeignRouteTwins:
// tunneld's routes, all in table 1000 with metric 5, and for each the
// foreign twin an admin adds beside it.
type twinFamily struct {
	name  string
	twins []twin
}

// twin is one of tunneld's routes, before (conf) and after (changed) a
// change that makes the plan replace it, as the configuration says it
// and as the kernel lists it (ours, oursChanged); and the foreign route
// with its key (ip route prepend|append DST ARGS table 1000 metric 5
// proto static). refused is the end of the error for a change tunneld
// refuses, as the kernel could only make it by joining tunneld's route
// to the foreign one: tunneld's route then stays as it was. again and
// oursAgain are a second change, if any.
type twin struct {
	dst, conf, changed, again    string
	ours, oursChanged, oursAgain string
	args                         string
	refused                      string
}

// twinConf is the configuration of the routes whose twins are ts, each
// as conf (stage 0), changed (1) or again (2, changed for those without
// a second change) says.
func twinConf(ts []twin, stage int) string {
	s := "[tables]\nfar = 1000\n"
	for _, tw := range ts {
		r := []string{tw.conf, tw.changed, or(tw.again, tw.changed)}[stage]
		s += fmt.Sprintf("[[route]]\nto = %q\ntable = \"far\"\nmetric = 5\n%s\n", tw.dst, r)
	}
	return s
}

// or is a, or b if a is empty.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var twinFamilies = []twinFamily{{
	// IPv4 keeps routes of one key as aliases in a list: prepend puts
	// the twin first, append after tunneld's. Its replace takes the
	// first alias of the key.
	name: "ipv4",
	twins: []twin{{
		dst: "10.50.0.0/16", args: "via 198.51.100.1 dev eth1",
		conf: "via = \"192.0.2.1\"\ndev = \"eth0\"", changed: "via = \"192.0.2.2\"\ndev = \"eth0\"",
		ours: "proto 116 unicast metric 5 via 192.0.2.1 dev eth0", oursChanged: "proto 116 unicast metric 5 via 192.0.2.2 dev eth0",
	}, {
		dst: "10.51.0.0/16", args: "dev eth1",
		conf: "dev = \"eth0\"", changed: "via = \"192.0.2.1\"\ndev = \"eth0\"",
		ours: "proto 116 unicast metric 5 via - dev eth0", oursChanged: "proto 116 unicast metric 5 via 192.0.2.1 dev eth0",
	}, {
		dst: "10.52.0.0/16", args: "unreachable",
		conf: "type = \"unreachable\"", changed: "type = \"blackhole\"",
		ours: "proto 116 unreachable metric 5", oursChanged: "proto 116 blackhole metric 5",
	}},
}, {
	// IPv6 puts a route after those of its key and metric, prepended or
	// appended, unless the two are duplicates (refused) or both have a
	// gateway (they become one multipath route: see
	// TestPrivilegedForeignRouteTwinMultipath). Its replace takes the
	// first route of the key whose ECMP-ability (a gateway) is the new
	// route's, else the first: a change from a device to a gateway, or
	// back, is what could reach the twin.
	name: "ipv6",
	twins: []twin{{
		dst: "2001:db8:50::/48", args: "via 2001:db8:b::1 dev eth1",
		conf: "dev = \"eth0\"", changed: "via = \"2001:db8:a::1\"\ndev = \"eth0\"",
		ours:    "proto 116 unicast metric 5 via - dev eth0",
		refused: "(via 2001:db8:b::1 dev eth1 proto static), and the kernel would merge tunneld's new route with it into one multipath route: tunneld's route is left as it was: " + kernel.ErrForeign.Error(),
	}, {
		// The change puts tunneld's route after the foreign one;
		// the second, a source only, is a route the kernel would
		// refuse as the duplicate of tunneld's before: that goes
		// first.
		dst: "2001:db8:51::/48", args: "dev eth1",
		conf: "via = \"2001:db8:a::1\"\ndev = \"eth0\"", changed: "dev = \"eth0\"", again: "dev = \"eth0\"\nsrc = \"2001:db8:a::10\"",
		ours: "proto 116 unicast metric 5 via 2001:db8:a::1 dev eth0", oursChanged: "proto 116 unicast metric 5 via - dev eth0",
		oursAgain: "proto 116 unicast metric 5 via - dev eth0 src 2001:db8:a::10",
	}, {
		dst: "2001:db8:52::/48", args: "dev eth1",
		conf: "type = \"unreachable\"", changed: "type = \"blackhole\"",
		ours: "proto 116 unreachable metric 5", oursChanged: "proto 116 blackhole metric 5",
	}, {
		dst: "2001:db8:53::/48", args: "dev eth1",
		conf: "via = \"2001:db8:a::1\"\ndev = \"eth0\"", changed: "dev = \"eth1\"",
		ours:    "proto 116 unicast metric 5 via 2001:db8:a::1 dev eth0",
		refused: "(dev eth1 proto static), and the kernel would refuse tunneld's new route as its duplicate: tunneld's route is left as it was: " + kernel.ErrForeign.Error(),
	}},
}}

// twinSetup enters a fresh namespace with foreign's devices and state,
// and IPv6 addresses on eth0 and eth1, once the kernel has their local
// routes (it adds those from a work queue, a moment later).
func twinSetup(t *testing.T) (*Kernel, func() string) {
	t.Helper()
	k := open(t)
	snap := foreign(t)
	for dev, a := range map[string]string{"eth0": "2001:db8:a::10/64", "eth1": "2001:db8:b::10/64"} {
		if err := netnstest.AddAddr(dev, netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s := snap()
		if strings.Contains(s, "route table 255 2001:db8:a::10/128 ") && strings.Contains(s, "route table 255 2001:db8:b::10/128 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no local routes for the IPv6 addresses:\n%s", s)
		}
	}
	return k, snap
}

// twinCmd is the ip(8) command that adds (verb prepend or append) or
// deletes (del) tw's foreign route.
func twinCmd(verb string, tw twin) []string {
	cmd := []string{"route", verb}
	args := strings.Fields(tw.args)
	if len(args) > 0 && args[0] != "via" && args[0] != "dev" {
		cmd, args = append(cmd, args[0]), args[1:] // a type
	}
	cmd = append(append(cmd, tw.dst), args...)
	return append(cmd, "table", "1000", "metric", "5", "proto", "static")
}

// TestPrivilegedForeignRouteTwins: an admin's route with the table,
// destination and metric of one of tunneld's, put beside it with ip route
// prepend or append (IPv4 keeps both as aliases, in that order; IPv6 puts
// a route that makes no multipath route with tunneld's after it either
// way), survives tunneld changing its route (a replace: another gateway,
// device, type or source), removing it from the configuration (a delete)
// and down, exactly as it was made and, for IPv4, where it was (first or
// second). tunneld's route is as configured throughout, and its plan
// empty once converged; but an IPv6 change the kernel could only make by
// joining tunneld's route to the foreign one is refused, with an error
// that names it, every round, and tunneld's route stays as it was.
// Without the seam's care, the kernel's replace takes the foreign route
// (IPv4 prepended; IPv6 where the change gives or takes a gateway).
func TestPrivilegedForeignRouteTwins(t *testing.T) {
	for _, fam := range twinFamilies {
		for _, how := range []string{"prepend", "append"} {
			t.Run(fam.name+"/"+how, func(t *testing.T) {
				k, snap := twinSetup(t)
				before := snap()
				c, changed, again := parse(t, twinConf(fam.twins, 0)), parse(t, twinConf(fam.twins, 1)), parse(t, twinConf(fam.twins, 2))
				// The first route leaves the configuration (a delete);
				// down deletes the others.
				removed := parse(t, twinConf(fam.twins[1:], 2))
				converge(t, k, c)
				var foreign [][]string
				for _, tw := range fam.twins {
					ipCmd(t, twinCmd(how, tw)...)
					rs := keyRoutes(t, tw.dst)
					foreign = append(foreign, foreignOf(rs))
					if len(foreign[len(foreign)-1]) != 1 {
						t.Fatalf("routes to %s after ip route %s: %q", tw.dst, how, rs)
					}
					t.Logf("routes to %s after ip route %s: %q", tw.dst, how, rs)
				}
				// check compares the routes of each twin's key with
				// the twin as made and tunneld's route as ours says
				// ("": none).
				check := func(when string, ours func(tw twin) string) {
					t.Helper()
					for i, tw := range fam.twins {
						rs := keyRoutes(t, tw.dst)
						if diff := cmp.Diff(foreign[i], foreignOf(rs)); diff != "" {
							t.Errorf("%s, the foreign route to %s changed (-made +now):\n%s\nall: %q", when, tw.dst, diff, rs)
						}
						var got, want []string
						for _, r := range rs {
							if !slices.Contains(foreign[i], r) {
								got = append(got, r)
							}
						}
						if o := ours(tw); o != "" {
							want = []string{o}
						}
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("%s, tunneld's route to %s (-want +got):\n%s\nall: %q", when, tw.dst, diff, rs)
						}
						// IPv4 keeps the aliases' order, which
						// decides which of them a lookup takes.
						if fam.name == "ipv4" && len(got) > 0 {
							order := append(slices.Clone(foreign[i]), want...)
							if how == "append" {
								order = append(want, foreign[i]...)
							}
							if !slices.Equal(order, rs) {
								t.Errorf("%s, the routes to %s are %q, want %q", when, tw.dst, rs, order)
							}
						}
					}
				}
				// look checks the plan for c: empty, but for the
				// replaces of the routes whose change is refused.
				look := func(when string, c *config.Config, refused []twin) {
					t.Helper()
					s, err := engine.Look(ctx, k, c, nil)
					if err != nil {
						t.Fatal(err)
					}
					var left []string
					for _, op := range s.Plan.Ops {
						left = append(left, op.Object())
					}
					var want []string
					for _, tw := range refused {
						want = append(want, "route "+tw.dst+" table 1000 metric 5")
					}
					if diff := cmp.Diff(want, left); diff != "" {
						t.Errorf("%s, the plan (-want +got):\n%s\n%s", when, diff, s.Plan)
					}
				}
				// converged checks what converging c did: each refused
				// change failed as it says, nothing else did.
				converged := func(when string, c *config.Config, refused []twin) {
					t.Helper()
					_, err := engine.Converge(ctx, k, c, nil)
					var ae *kernel.ApplyError
					if len(refused) == 0 && err != nil || len(refused) > 0 && !errors.As(err, &ae) {
						t.Errorf("%s: %v", when, err)
						return
					}
					if ae == nil {
						return
					}
					var got []string
					for _, f := range ae.Failed {
						got = append(got, f.Error())
					}
					var want []string
					for _, tw := range refused {
						want = append(want, "route "+tw.dst+" table 1000 metric 5: a route not owned by tunneld has the same table, destination and metric "+tw.refused)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s, the failures (-want +got):\n%s", when, diff)
					}
					if !errors.Is(err, kernel.ErrForeign) {
						t.Errorf("%s: %v is not kernel.ErrForeign", when, err)
					}
				}
				var refused []twin
				for _, tw := range fam.twins {
					if tw.refused != "" {
						refused = append(refused, tw)
					}
				}
				changedTo := func(tw twin) string {
					if tw.refused != "" {
						return tw.ours
					}
					return tw.oursChanged
				}

				check("with the twins", func(tw twin) string { return tw.ours })
				look("with the twins", c, nil)

				converged("the change", changed, refused)
				check("after the change", changedTo)
				look("after the change", changed, refused)

				converged("the second change", again, refused)
				changedAgain := func(tw twin) string { return or(tw.oursAgain, changedTo(tw)) }
				check("after the second change", changedAgain)
				look("after the second change", again, refused)

				converged("the removal", removed, slices.DeleteFunc(slices.Clone(refused), func(tw twin) bool { return tw.dst == fam.twins[0].dst }))
				check("after the removal", func(tw twin) string {
					if tw.dst == fam.twins[0].dst {
						return ""
					}
					return changedAgain(tw)
				})

				if _, err := engine.Down(ctx, k, removed); err != nil {
					t.Errorf("down: %v", err)
				}
				check("after down", func(twin) string { return "" })
				for _, tw := range fam.twins {
					ipCmd(t, twinCmd("del", tw)...)
				}
				if after := snap(); after != before {
					t.Errorf("after down and the twins' removal, the namespace differs:\n%s", cmp.Diff(before, after))
				}
			})
		}
	}
}

// TestPrivilegedForeignRouteTwinMultipath: an admin's IPv6 route with a
// gateway, put beside one of tunneld's that has one too (ip -6 route
// prepend or append, the same either way), becomes one multipath route
// with it: the kernel lists tunneld's (its protocol, its nexthop first)
// with the admin's nexthop in it. tunneld reads its nexthop as its route:
// the plan is empty; a change to another gateway (the kernel would merge
// the new route with the admin's again, and a replace would take both)
// is refused, naming the admin's nexthop; a change to a device makes
// tunneld's route one of its own and leaves the admin's alone, as made;
// down (or, as it, a removal) takes tunneld's nexthop out and leaves the
// admin's route as made.
func TestPrivilegedForeignRouteTwinMultipath(t *testing.T) {
	tw := twin{dst: "2001:db8:60::/48", args: "via 2001:db8:b::1 dev eth1",
		conf: "via = \"2001:db8:a::1\"\ndev = \"eth0\"", changed: "via = \"2001:db8:a::2\"\ndev = \"eth0\"", again: "dev = \"eth0\""}
	const (
		merged = "proto 116 unicast metric 5 via - dev - nexthop via 2001:db8:a::1 dev eth0 nexthop via 2001:db8:b::1 dev eth1"
		theirs = "proto 4 unicast metric 5 via 2001:db8:b::1 dev eth1"
	)
	for _, how := range []string{"prepend", "append"} {
		for _, then := range []string{"change", "down"} {
			t.Run(how+"/"+then, func(t *testing.T) {
				k, snap := twinSetup(t)
				before := snap()
				c := parse(t, twinConf([]twin{tw}, 0))
				converge(t, k, c)
				ipCmd(t, twinCmd(how, tw)...)
				routes := func(when string, want ...string) {
					t.Helper()
					if got := keyRoutes(t, tw.dst); !slices.Equal(got, want) {
						t.Errorf("%s, the routes to %s are %q, want %q", when, tw.dst, got, want)
					}
				}
				routes("merged", merged)
				s, err := engine.Look(ctx, k, c, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Plan.Empty() {
					t.Errorf("merged, the plan:\n%s", s.Plan)
				}
				if then == "change" {
					_, err := engine.Converge(ctx, k, parse(t, twinConf([]twin{tw}, 1)), nil)
					want := "route 2001:db8:60::/48 table 1000 metric 5: a route not owned by tunneld has the same table, destination and metric (nexthop via 2001:db8:b::1 dev eth1 merged into tunneld's), and the kernel would merge tunneld's new route with it into one multipath route: tunneld's route is left as it was: " + kernel.ErrForeign.Error()
					if err == nil || err.Error() != want {
						t.Errorf("another gateway: %v, want %s", err, want)
					}
					routes("after another gateway", merged)
					if _, err := engine.Converge(ctx, k, parse(t, twinConf([]twin{tw}, 2)), nil); err != nil {
						t.Errorf("a device: %v", err)
					}
					routes("after a device", theirs, "proto 116 unicast metric 5 via - dev eth0")
				}
				if _, err := engine.Down(ctx, k, c); err != nil {
					t.Fatal(err)
				}
				routes("after down", theirs)
				ipCmd(t, twinCmd("del", tw)...)
				if after := snap(); after != before {
					t.Errorf("after down and the admin's route's removal, the namespace differs:\n%s", cmp.Diff(before, after))
				}
			})
		}
	}
}

// TestPrivilegedOwnRouteTwins: two of tunneld's routes with one key, as a
// restart finds them after a crash between the add and the delete of a
// replace beside a foreign route (here made with ip route append proto
// 116), leave one on the next converge, the configured one, with the
// foreign route beside them untouched; the converge after it is empty.
func TestPrivilegedOwnRouteTwins(t *testing.T) {
	const dst = "10.53.0.0/16"
	for _, tc := range []struct {
		name string
		// made are the routes to dst in table 1000, metric 5, made with
		// ip route append, in order, with their protocol.
		made []string
	}{
		{"the configured one second", []string{"via 198.51.100.1 dev eth1 proto static", "via 192.0.2.1 dev eth0 proto 116", "via 192.0.2.2 dev eth0 proto 116"}},
		{"the configured one first", []string{"via 192.0.2.2 dev eth0 proto 116", "via 198.51.100.1 dev eth1 proto static", "via 192.0.2.1 dev eth0 proto 116"}},
		{"neither configured", []string{"via 192.0.2.1 dev eth0 proto 116", "via 192.0.2.3 dev eth0 proto 116"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := twinSetup(t)
			for _, m := range tc.made {
				ipCmd(t, append([]string{"route", "append", dst}, append(strings.Fields(m), "table", "1000", "metric", "5")...)...)
			}
			before := keyRoutes(t, dst)
			c := parse(t, "[tables]\nfar = 1000\n[[route]]\nto = \""+dst+"\"\ntable = \"far\"\nmetric = 5\nvia = \"192.0.2.2\"\ndev = \"eth0\"\n")
			converge(t, k, c)
			want := []string{"proto 116 unicast metric 5 via 192.0.2.2 dev eth0"}
			for _, r := range before {
				if !strings.HasPrefix(r, "proto 116 ") {
					want = append(want, r)
				}
			}
			got := keyRoutes(t, dst)
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("routes to %s after the converge (-want +got):\n%s\nbefore: %q", dst, diff, before)
			}
			s, err := engine.Look(ctx, k, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Plan.Empty() {
				t.Errorf("the converge after it plans:\n%s", s.Plan)
			}
		})
	}
}

// TestPrivilegedForeignRouteTwinPutBack: where IPv6 must delete tunneld's
// route before adding the changed one (the new route would otherwise
// join it: both have a gateway) because a foreign route of the key comes
// first (an admin's, appended, and tunneld's route changed since), and
// the add then fails (a source address the box doesn't have, a
// gateway it has no route to), tunneld's route is put back as it was; the
// change's error is the kernel's reason, and the next look plans the same
// change again, nothing else. Without the put-back, tunneld's route is
// gone.
func TestPrivilegedForeignRouteTwinPutBack(t *testing.T) {
	const dst = "2001:db8:54::/48"
	conf := func(extra string) *config.Config {
		return parse(t, "[tables]\nfar = 1000\n[[route]]\nto = \""+dst+"\"\ntable = \"far\"\nmetric = 5\ndev = \"eth0\"\n"+extra)
	}
	for _, tc := range []struct {
		name, change, reason string
	}{
		{"a source the box doesn't have", "via = \"2001:db8:a::1\"\nsrc = \"2001:db8:a::99\"\n", "invalid argument"},
		{"a gateway with no route to it", "via = \"2001:db8:c::1\"\n", "no route to host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := twinSetup(t)
			// tunneld's route through a device, the foreign one
			// added after it, then tunneld's changed to a gateway:
			// the kernel puts it after the foreign one.
			converge(t, k, conf(""))
			ipCmd(t, "route", "append", dst, "dev", "eth1", "table", "1000", "metric", "5", "proto", "static")
			c := conf("via = \"2001:db8:a::1\"\n")
			converge(t, k, c)
			want := []string{"proto 4 unicast metric 5 via - dev eth1", "proto 116 unicast metric 5 via 2001:db8:a::1 dev eth0"}
			if diff := cmp.Diff(want, keyRoutes(t, dst)); diff != "" {
				t.Fatalf("routes to %s before the change (-want +got):\n%s", dst, diff)
			}
			changed := conf(tc.change)
			_, err := engine.Converge(ctx, k, changed, nil)
			var ae *kernel.ApplyError
			if !errors.As(err, &ae) || len(ae.Failed) != 1 {
				t.Fatalf("the change: %v, want one failure", err)
			}
			msg := ae.Failed[0].Error()
			t.Logf("the change's error: %s", msg)
			if !strings.HasPrefix(msg, "route "+dst+" table 1000 metric 5: ") || !strings.Contains(msg, tc.reason) || strings.Contains(msg, "put back") {
				t.Errorf("the change's error: %s", msg)
			}
			if diff := cmp.Diff(want, keyRoutes(t, dst)); diff != "" {
				t.Errorf("routes to %s after the failed change (-want +got):\n%s", dst, diff)
			}
			s, err := engine.Look(ctx, k, changed, nil)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, op := range s.Plan.Ops {
				left = append(left, op.Object())
			}
			if diff := cmp.Diff([]string{"route " + dst + " table 1000 metric 5"}, left); diff != "" {
				t.Errorf("the plan after the failed change (-want +got):\n%s\n%s", diff, s.Plan)
			}
		})
	}
}
