package linux

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedBatchFailuresMatched: in batches that ask only their
// last request for an acknowledgement, every failure is blamed on its own
// operation (in the middle of a batch, at a batch's end, at the very
// end), with the kernel's message, and everything else is applied.
func TestPrivilegedBatchFailuresMatched(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"eth0", "peer0"} {
		if err := netnstest.LinkUp(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := netnstest.AddAddr("eth0", netip.MustParsePrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	const n = 600
	bad := []int{0, 50, maxBatch - 1, maxBatch, 400, n - 1}
	var p plan.Plan
	for i := range n {
		r := model.Route{Table: 100, Dst: netip.MustParsePrefix(fmt.Sprintf("10.70.%d.%d/32", i/256, i%256)), Dev: "eth0"}
		if slices.Contains(bad, i) {
			r.Via = netip.MustParseAddr("203.0.113.1") // not on eth0's link
		}
		p.Ops = append(p.Ops, plan.Op{Kind: plan.RouteAdd, Route: &r})
	}
	err := k.Apply(ctx, p)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply = %v, want an ApplyError", err)
	}
	var got []int
	for _, f := range ae.Failed {
		i := slices.IndexFunc(p.Ops, func(op plan.Op) bool { return op.Route == f.Op.Route })
		got = append(got, i)
		if !strings.Contains(f.Err.Error(), "network is unreachable: Nexthop has invalid gateway") {
			t.Errorf("failure %d: %v", i, f)
		}
	}
	if !slices.Equal(got, bad) {
		t.Errorf("failed operations %v, want %v", got, bad)
	}
	have, _, err := k.Observe(ctx, model.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if len(have.Routes) != n-len(bad) {
		t.Errorf("%d routes in the kernel, want %d", len(have.Routes), n-len(bad))
	}
	for _, r := range have.Routes {
		if r.Via.IsValid() {
			t.Errorf("a failed route is there: %+v", r)
		}
	}
	// The socket is left clean: a plain request still works.
	if _, err := k.listLinks(nil); err != nil {
		t.Errorf("after the batches: %v", err)
	}
}

// TestPrivilegedBatchAllFail: when every request of full batches fails,
// each failure still comes back (the errors, each carrying a copy of its
// request, fit in the socket's buffer) and the socket is left clean for
// the next request.
func TestPrivilegedBatchAllFail(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var p plan.Plan
	for i := range n {
		// eth0 is down and has no address: every gateway is unreachable.
		r := model.Route{Table: 100, Dst: netip.MustParsePrefix(fmt.Sprintf("10.71.%d.%d/32", i/256, i%256)), Dev: "eth0",
			Via: netip.MustParseAddr("203.0.113.1"), Metric: 100000 + uint32(i)}
		p.Ops = append(p.Ops, plan.Op{Kind: plan.RouteAdd, Route: &r})
	}
	err := k.Apply(ctx, p)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply = %v, want an ApplyError", err)
	}
	if len(ae.Failed) != n {
		t.Fatalf("Apply = %d failures, want %d (%v)", len(ae.Failed), n, firstLine(err))
	}
	for _, f := range ae.Failed {
		if !errors.Is(f.Err, unix.ENETUNREACH) {
			t.Fatalf("%v, want every failure to be the kernel's answer", f)
		}
	}
	if _, _, err := k.Observe(ctx, model.Scope{}); err != nil {
		t.Errorf("after the batches: %v", err)
	}
}

func firstLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// TestPrivilegedBatchOverflow: when the socket's buffer cannot hold a
// batch's answers (made tiny here), the lost ones are reported as lost,
// never as done, and the socket is left clean for the next request.
func TestPrivilegedBatchOverflow(t *testing.T) {
	k := open(t)
	if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
		t.Fatal(err)
	}
	if err := k.nl.SetReadBuffer(1); err != nil { // the kernel's minimum
		t.Fatal(err)
	}
	const n = 3 * maxBatch
	var p plan.Plan
	for i := range n {
		r := model.Route{Table: 100, Dst: netip.MustParsePrefix(fmt.Sprintf("10.72.%d.%d/32", i/256, i%256)), Dev: "eth0",
			Via: netip.MustParseAddr("203.0.113.1")}
		p.Ops = append(p.Ops, plan.Op{Kind: plan.RouteAdd, Route: &r})
	}
	err := k.Apply(ctx, p)
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply = %v, want an ApplyError", err)
	}
	lost := 0
	for _, f := range ae.Failed {
		switch {
		case errors.Is(f.Err, errAnswerLost):
			lost++
		case !errors.Is(f.Err, unix.ENETUNREACH):
			t.Errorf("%v, want the kernel's answer or a lost one", f)
		}
	}
	if len(ae.Failed) != n || lost == 0 {
		t.Errorf("%d failures of which %d lost, want %d failures, some lost (did the buffer overflow?)", len(ae.Failed), lost, n)
	}
	if _, _, err := k.Observe(ctx, model.Scope{}); err != nil {
		t.Errorf("after the overflow: %v", err)
	}
}
