package daemon

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

// TestMovesLogged: three tunnels that follow wan's new address are
// logged in one line at info level, each one's command at debug level;
// a tunnel that moves alone keeps its own line (TestMoves has one whose
// MTU changes with its address).
func TestMovesLogged(t *testing.T) {
	cfg := "[global]\nfirewall = false\n"
	for i, remote := range []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"} {
		cfg += "[tunnel.t" + string(rune('1'+i)) + "]\nmode = \"ipip\"\nlocal = \"wan\"\nremote = \"" + remote + "\"\n"
	}
	cfg += "[tunnel.lone]\nmode = \"gre\"\nlocal = \"lan\"\nremote = \"198.51.100.9\"\n"
	var buf syncbuf.Buffer
	h := startLogging(t, cfg, logfmt.New(&buf, logfmt.Debug))
	defer h.stop()
	start := len(buf.String())
	h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.99/24"))
	h.k.SetAddrs("lan", netip.MustParsePrefix("192.168.1.9/24"))
	h.event(watch.Addr)
	var info, debug []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()[start:]), "\n") {
		l = l[strings.Index(l, "level="):]
		switch {
		case strings.HasPrefix(l, "level=INFO"):
			info = append(info, l)
		case strings.HasPrefix(l, "level=DEBUG msg=changed"):
			debug = append(debug, l)
		}
	}
	want := []string{
		`level=INFO msg=changed object="tunnel \"lone\"" cmd="ip link change lone mtu 1476 type gre local 192.168.1.9 remote 198.51.100.9 ttl 64 pmtudisc" reason="event: address"`,
		`level=INFO msg="tunnels followed the address" tunnels="t1 t2 t3" from=192.0.2.7 to=192.0.2.99 reason="event: address"`,
	}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("info lines (-want +got):\n%s", diff)
	}
	if len(debug) != 3 || !strings.Contains(debug[0], `cmd="ip link change t1 mtu 1480 type ipip local 192.0.2.99 remote 198.51.100.2`) {
		t.Errorf("debug lines of the moves: %q", debug)
	}
}

// TestMoves groups only the operations that change a tunnel's local
// address alone, and only MovesLogged or more of one move.
func TestMoves(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	link := func(name string, local netip.Addr, mtu int) *model.Link {
		return &model.Link{Name: name, Mode: model.ModeIPIP, Local: local, Remote: netip.MustParseAddr("198.51.100.2"), MTU: mtu, Up: true, EncapLimit: -1}
	}
	change := func(name string, from, to netip.Addr, mtuFrom, mtuTo int) plan.Op {
		return plan.Op{Kind: plan.LinkChange, Old: link(name, from, mtuFrom), Link: link(name, to, mtuTo)}
	}
	got := moves([]plan.Op{
		change("t1", a, b, 1480, 1480),
		{Kind: plan.LinkUp, Name: "t1"},
		change("t2", a, b, 1480, 1480),
		change("t3", a, b, 1480, 1400), // and its MTU
		change("t4", a, c, 1480, 1480), // alone to c
		change("t5", a, a, 1480, 1400), // its MTU only
		change("t6", a, b, 1480, 1480),
	})
	want := map[move][]string{{from: a, to: b}: {"t1", "t2", "t6"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(move{}), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("moves (-want +got):\n%s", diff)
	}
}
