package nft

import (
	"os"
	"testing"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/internal/scaletest"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// scaleFilter is the table of n IPIP tunnels with tunneld's filter, the
// shape of pkg/engine's scale benchmarks.
func scaleFilter(tb testing.TB, n int) *model.Filter {
	tb.Helper()
	c, err := config.Parse("scale.toml", []byte(scaletest.Config(n, true, false)))
	if err != nil {
		tb.Fatal(err)
	}
	f := desired.Build(c, model.Inputs{}, model.State{}).State.Filter
	if f == nil {
		tb.Fatal("no table")
	}
	return f
}

// BenchmarkKernelRead1000 dumps and reads back the table of 1000 tunnels
// (what Read does after any change to the ruleset), in a fresh network
// namespace; its rules' expressions are matched once, before the loop
// (Conn.matched). Privileged: TUNNELD_PRIVILEGED=1 as root. Compare
// builds side by side (two test binaries, taking turns).
func BenchmarkKernelRead1000(b *testing.B) {
	if os.Getenv("TUNNELD_PRIVILEGED") != "1" || os.Geteuid() != 0 {
		b.Skip("privileged benchmark: set TUNNELD_PRIVILEGED=1 and run as root")
	}
	var nsf *os.File
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		var err error
		nsf, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	defer nsf.Close()
	c, err := Open(int(nsf.Fd()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	f := scaleFilter(b, 1000)
	if err := c.Replace(f); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, ch := range f.Chains {
		n += len(ch.Rules)
	}
	b.ReportAllocs()
	for b.Loop() {
		var g *model.Filter
		err := c.do(func() error {
			var err error
			g, err = c.readOnce(nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if !g.Equal(f) {
			b.Fatal("drift")
		}
	}
	b.ReportMetric(float64(n), "rules")
}
