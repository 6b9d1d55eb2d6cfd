package cli

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// emptyKernel is an in-memory kernel holding what emptyObservation
// describes: lo and the devices the configuration names.
func emptyKernel(c *config.Config) *fakekernel.Kernel {
	k := fakekernel.New()
	for _, name := range namedDevices(c) {
		if name == "" || c.TunnelByName(name) != nil {
			continue
		}
		if _, ok := k.Devices[name]; !ok {
			k.AddDevice(model.Device{Name: name, MTU: 1500, Up: true, Running: true})
		}
	}
	return k
}

// holding adds to k a device wan with the address p, which a tunnel's
// pinned local address is, and a default route of its family by it, so
// that status does not say that no device of the box can send from it,
// nor that table main has no route to the remote.
func holding(k *fakekernel.Kernel, p string) *fakekernel.Kernel {
	k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix(p)}})
	return routed(k, "wan", p)
}

// routed adds to k a default route by dev, via the first address of the
// subnet of p (an address of dev's, whose family it takes).
func routed(k *fakekernel.Kernel, dev, p string) *fakekernel.Kernel {
	sub := netip.MustParsePrefix(p).Masked()
	k.AddForeignRoute(model.Route{Table: model.TableMain, Dst: netip.PrefixFrom(sub.Addr(), 0).Masked(), Via: sub.Addr().Next(), Dev: dev}, 3)
	return k
}

// configured writes conf to a file in a temporary directory and returns
// the file, its configuration and the emptyKernel for it.
func configured(t *testing.T, conf string) (string, *config.Config, *fakekernel.Kernel) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tunneld.toml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, c, emptyKernel(c)
}

// TestEmptyObservation checks, for every seed configuration, that the
// pure observation `plan --from-empty` uses is what the in-memory kernel
// reports when it holds the same devices.
func TestEmptyObservation(t *testing.T) {
	files, err := filepath.Glob("../../testdata/seeds/*/*.toml")
	variants, _ := filepath.Glob("../../testdata/seeds/*/*/*.toml") // a section's variant, in a subdirectory
	files = append(files, variants...)
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed configs: %v", err)
	}
	examples, _ := filepath.Glob("../../testdata/examples/*.toml")
	files = append(files, examples...)
	files = append(files, "../../testdata/reference.toml")
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../../testdata/"), func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			wantHave, wantIn, err := emptyKernel(c).Observe(context.Background(), engine.Scope(c))
			if err != nil {
				t.Fatal(err)
			}
			have, in := emptyObservation(c)
			if diff := cmp.Diff(wantHave, have, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIn, in, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("inputs (-want +got):\n%s", diff)
			}
		})
	}
}
