package linux

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedExpiredRoute: an IPv6 route whose lifetime ran out (a
// router advertisement's default route once the router stopped sending
// them) is read as expired, which the kernel no longer takes while it
// lists it until its garbage collection, and Lookup passes it by: a
// tester's status said up through one.
func TestPrivilegedExpiredRoute(t *testing.T) {
	k := open(t)
	// The collection comes at gc_interval after the route's addition:
	// a minute keeps the expired route listed for the test.
	if err := os.WriteFile("/proc/sys/net/ipv6/route/gc_interval", []byte("60"), 0); err != nil {
		t.Fatal(err)
	}
	if err := netnstest.VethUp("wan0", "wan0peer"); err != nil {
		t.Fatal(err)
	}
	def := netip.MustParsePrefix("::/0")
	if err := netnstest.AddRoute(netnstest.Route{Table: model.TableMain, Dst: def, Via: netip.MustParseAddr("fe80::1"), Dev: "wan0", Proto: 9, Expires: 1}); err != nil {
		t.Fatal(err)
	}
	defaultRoute := func() (model.UnderlayRoute, bool) {
		t.Helper()
		_, in, err := k.Observe(ctx, engine.Scope(parse(t, "[global]\nfirewall = false\n")))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(in.Routes, func(r model.UnderlayRoute) bool { return r.Dst == def })
		if i < 0 {
			return model.UnderlayRoute{}, false
		}
		return in.Routes[i], true
	}
	remote := netip.MustParseAddr("2001:db8:b::1")
	if r, ok := defaultRoute(); !ok || r.Expired {
		t.Fatalf("before its lifetime ran out: %+v, listed %v; want listed, not expired", r, ok)
	}
	time.Sleep(2 * time.Second)
	r, ok := defaultRoute()
	if !ok {
		t.Fatal("the expired route is no longer listed: the kernel collected it before the test could read it")
	}
	if !r.Expired {
		t.Errorf("after its lifetime ran out: %+v, want expired", r)
	}
	if u, found := model.Lookup([]model.UnderlayRoute{r}, remote); found {
		t.Errorf("Lookup took the expired route %+v", u)
	}
}
