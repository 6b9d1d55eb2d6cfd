package linux

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/nft"
	"github.com/tunneld/tunneld/pkg/plan"
)

// withOpenNFT makes Open and RequireFilter see f's nf_tables.
func withOpenNFT(t *testing.T, f func() (*nft.Conn, error)) {
	t.Helper()
	orig := openNFT
	openNFT = f
	t.Cleanup(func() { openNFT = orig })
}

// The errors nft.Open gives without nf_tables, and without permission.
var (
	errNoNFTables = fmt.Errorf("nftables: %w: netlink receive: %w", nft.ErrUnavailable, syscall.EINVAL)
	errNoNetlink  = fmt.Errorf("nftables: %w: socket: %w", nft.ErrUnavailable, syscall.EPROTONOSUPPORT)
	errDenied     = fmt.Errorf("nftables: netlink receive: %w", syscall.EPERM)
)

const hint = "kernel has no nf_tables, which firewall = true (the default) needs: " +
	"load module nf_tables (on OpenWrt install kmod-nft-core) or set firewall = false in [global]"

// TestOpenWithoutNFTables: a kernel without nf_tables is no error when
// the configuration has the filter off (FilterOptional); with it on, the
// error says what to install. Any other failure of nf_tables (no
// permission) is an error either way.
func TestOpenWithoutNFTables(t *testing.T) {
	for _, tt := range []struct {
		name     string
		err      error
		optional bool
		want     string // the error, "" for none
	}{
		{"no nf_tables, filter off", errNoNFTables, true, ""},
		{"no nfnetlink, filter off", errNoNetlink, true, ""},
		{"no nf_tables, filter on", errNoNFTables, false, "nftables: not available: netlink receive: invalid argument: " + hint},
		{"no nfnetlink, filter on", errNoNetlink, false, "nftables: not available: socket: protocol not supported: " + hint},
		{"no permission, filter off", errDenied, true, "nftables: netlink receive: operation not permitted"},
		{"no permission, filter on", errDenied, false, "nftables: netlink receive: operation not permitted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			withOpenNFT(t, func() (*nft.Conn, error) { return nil, tt.err })
			k, err := Open(Options{StateDir: t.TempDir(), FilterOptional: tt.optional})
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				defer k.Close()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Open error (-want +got):\n%s", diff)
			}
			if err != nil {
				if wantNo := errors.Is(tt.err, nft.ErrUnavailable); errors.Is(err, kernel.ErrNoNFTables) != wantNo {
					t.Errorf("errors.Is(err, kernel.ErrNoNFTables) = %v, want %v", !wantNo, wantNo)
				}
				return
			}
			if k.nft != nil {
				t.Error("a nftables connection without nf_tables")
			}
			// Without nf_tables there is no table to read or remove;
			// one to make is an error, never silently skipped.
			if c, err := k.FilterCounters(); c != nil || err != nil {
				t.Errorf("FilterCounters = %v, %v", c, err)
			}
			if err := k.direct(plan.Op{Kind: plan.FilterDel}, nil, nil); err != nil {
				t.Errorf("removing the table: %v", err)
			}
			if err := k.direct(plan.Op{Kind: plan.FilterReplace}, nil, nil); err == nil || err.Error() != tt.err.Error()+": "+hint {
				t.Errorf("making the table: %v, want %q", err, tt.err.Error()+": "+hint)
			}
			// A reload that turns the filter on: still no nf_tables.
			if err := k.RequireFilter(); err == nil || err.Error() != tt.err.Error()+": "+hint {
				t.Errorf("RequireFilter: %v, want %q", err, tt.err.Error()+": "+hint)
			}
		})
	}
}

const masquerade = `
[global]
firewall = %v

[[masquerade]]
src = ["192.168.104.0/24"]
oif = "eth3"
`

// TestPrivilegedFilterOffRemovesTable: with the filter off and nf_tables
// there, Open (FilterOptional) opens it all the same, and the table an
// earlier configuration with the filter on left is removed.
func TestPrivilegedFilterOffRemovesTable(t *testing.T) {
	netnstest.Enter(t)
	dir := t.TempDir()
	k1, err := Open(Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Converge(ctx, k1, parse(t, fmt.Sprintf(masquerade, true)), nil); err != nil {
		t.Fatal(err)
	}
	k1.Close()
	k2, err := Open(Options{StateDir: dir, FilterOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	if _, err := engine.Converge(ctx, k2, parse(t, fmt.Sprintf(masquerade, false)), nil); err != nil {
		t.Fatal(err)
	}
	c, err := nft.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if f, err := c.Read(); f != nil || err != nil {
		t.Errorf("the table is still there (%v):\n%s", err, f)
	}
}

// TestPrivilegedRequireFilterOpensLater: a daemon started without
// nf_tables and reloaded with the filter on once it is there (a module
// installed since) opens it then, and makes the table.
func TestPrivilegedRequireFilterOpensLater(t *testing.T) {
	netnstest.Enter(t)
	withOpenNFT(t, func() (*nft.Conn, error) { return nil, errNoNFTables })
	k, err := Open(Options{StateDir: t.TempDir(), FilterOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	openNFT = func() (*nft.Conn, error) { return nft.Open(0) }
	if err := k.RequireFilter(); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Converge(ctx, k, parse(t, fmt.Sprintf(masquerade, true)), nil); err != nil {
		t.Fatal(err)
	}
	if f, err := k.nft.Read(); f == nil || err != nil {
		t.Errorf("no table (%v)", err)
	}
}

// TestPrivilegedFilterOnWithoutNFTables: a configuration with the filter
// on, where the kernel has no nf_tables (apply and run open it without:
// FilterOptional), fails closed: the table's failure keeps the tunnel
// down and the route through it unreachable (a tester's kernel without
// kmod-nft-core got nothing set up, its routes leaking by the WAN, and
// the daemon exited). Once nf_tables is there (a module installed), the
// next convergence opens it and sets everything up.
func TestPrivilegedFilterOnWithoutNFTables(t *testing.T) {
	netnstest.Enter(t)
	foreign(t)
	withOpenNFT(t, func() (*nft.Conn, error) { return nil, errNoNFTables })
	k, err := Open(Options{StateDir: t.TempDir(), FilterOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	c := parse(t, withTunnel)
	if !c.Global.Firewall {
		t.Fatal("the configuration has the filter off")
	}
	_, err = engine.Converge(ctx, k, c, nil)
	if !errors.Is(err, kernel.ErrNoNFTables) {
		t.Fatalf("converge: %v, want the kernel's lack of nf_tables", err)
	}
	if d, ok := deviceNamed(t, k, "moe"); ok && d.Up {
		t.Errorf("moe is up without its filter")
	}
	have, _, err := k.Observe(ctx, engine.Scope(c))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(have.Routes, func(r model.Route) bool {
		return r.Dst == netip.MustParsePrefix("10.71.0.0/16") && r.Type == model.RouteUnreachable
	}) {
		t.Errorf("no unreachable route stands for moe's: %+v", have.Routes)
	}
	openNFT = func() (*nft.Conn, error) { return nft.Open(0) }
	converge(t, k, c)
	if d, ok := deviceNamed(t, k, "moe"); !ok || !d.Up {
		t.Errorf("moe is not up once nf_tables is there: %+v", d)
	}
}
