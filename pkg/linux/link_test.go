package linux

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestPrivilegedDecodeLink: the lean link decoder reads every link of a
// namespace (veths with traffic counters and an alias, a bridge, and the
// four tunnel kinds where the kernel has them) as rtnetlink's full
// decoder does.
func TestPrivilegedDecodeLink(t *testing.T) {
	k := open(t)
	foreign(t)
	if err := netnstest.AddAddr("eth0", mustPrefix("2001:db8::10/64")); err != nil {
		t.Fatal(err)
	}
	rt, err := rtnetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	alias := "uplink, not tunneld's"
	err = rt.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{Name: "br0", Info: &rtnetlink.LinkInfo{Kind: "bridge"}}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Log("no bridge driver (the test VM's kernel): no bridge compared")
	} else if err != nil {
		t.Fatal(err)
	}
	if err := setAlias(k, "eth1", alias); err != nil {
		t.Fatal(err)
	}
	_, err = engine.Converge(ctx, k, parse(t, allKinds), nil)
	var nd *kernel.NoDriverError
	if err != nil && !errors.As(err, &nd) {
		t.Fatal(err)
	}
	tunnels, links, sawAlias := 0, 0, false
	err = k.dump(unix.RTM_GETLINK, linkDump{}, func() {}, func(b []byte) error {
		links++
		got, err := decodeLink(b)
		if err != nil {
			return err
		}
		var m rtnetlink.LinkMessage
		if err := m.UnmarshalBinary(b); err != nil {
			return err
		}
		a := m.Attributes
		want := observedLink{index: m.Index, name: a.Name, mtu: int(a.MTU), up: m.Flags&unix.IFF_UP != 0,
			running: m.Flags&(unix.IFF_RUNNING|unix.IFF_LOWER_UP) != 0}
		if a.Alias != nil {
			want.alias = *a.Alias
		}
		if s := a.Stats64; s != nil {
			want.stats = model.Stats{RxPackets: s.RXPackets, TxPackets: s.TXPackets, RxBytes: s.RXBytes, TxBytes: s.TXBytes,
				RxErrors: s.RXErrors, TxErrors: s.TXErrors, RxDropped: s.RXDropped, TxDropped: s.TXDropped}
		}
		if a.Info != nil {
			want.kind = a.Info.Kind
			if tunnelKinds[want.kind] {
				want.data = a.Info.Data
				tunnels++
			}
		}
		sawAlias = sawAlias || got.alias == alias
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(observedLink{}), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("link %s (-rtnetlink +decodeLink):\n%s", a.Name, diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d links compared, %d of them tunnels", links, tunnels)
	if !sawAlias {
		t.Errorf("no link with the alias %q", alias)
	}
}

// setAlias sends the request addLink uses to mark a link as tunneld's.
func setAlias(k *Kernel, name, alias string) error {
	data, err := aliasMsg{name, alias}.MarshalBinary()
	if err != nil {
		return err
	}
	answers := make([]error, 1)
	k.exchange([]netlink.Message{{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request}, Data: data}}, answers)
	return answers[0]
}

// TestPrivilegedTornCreateMarked: a tunnel left without tunneld's alias (a
// process killed between the creation and the alias datagram) is read as
// unmarked, marked by the next converge, and removed once the
// configuration drops it. Without the ipip driver (this host) it skips;
// in the VMs it must run.
func TestPrivilegedTornCreateMarked(t *testing.T) {
	k := open(t)
	foreign(t)
	c := parse(t, withTunnel)
	rep := converge(t, k, c)
	if err := setAlias(k, "moe", ""); err != nil {
		t.Fatal(err)
	}
	// What the kill leaves: the record of the tunnel being created.
	i := slices.IndexFunc(rep.Applied, func(op plan.Op) bool { return op.Kind == plan.LinkAdd && op.Link.Name == "moe" })
	if i < 0 {
		t.Fatalf("moe was not created: %v", rep.Applied)
	}
	if err := k.saveCreating(map[string]creatingEntry{"moe": newCreatingEntry(*rep.Applied[i].Link)}); err != nil {
		t.Fatal(err)
	}
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := model.LinkNamed(have.Links, "moe"); !ok || !have.Links[i].Unmarked {
		t.Fatalf("moe without its alias is not read as unmarked: %+v", have.Links)
	}
	rep = converge(t, k, c)
	var kinds []plan.Kind
	for _, op := range rep.Applied {
		kinds = append(kinds, op.Kind)
	}
	if diff := cmp.Diff([]plan.Kind{plan.LinkMark}, kinds); diff != "" {
		t.Errorf("converge after the alias was lost (-want +got kinds):\n%s", diff)
	}
	links, err := k.listLinks(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.name == "moe" && l.alias != model.LinkAlias {
			t.Errorf("moe's alias is %q, want %q", l.alias, model.LinkAlias)
		}
	}
	converge(t, k, parse(t, withoutTunnels))
	if _, err := net.InterfaceByName("moe"); err == nil {
		t.Error("moe is still there after the configuration dropped it")
	}
}
