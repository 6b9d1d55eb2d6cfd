package daemon

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/plan"
)

// gatedKernel is the Linux seam with a gate before Apply: once armed, the
// next plan waits until its context ends, then goes to the seam, which
// gets the cancelled context as when a stop comes in the middle of it.
type gatedKernel struct {
	*linux.Kernel
	armed   atomic.Bool
	entered chan struct{}
}

func (g *gatedKernel) Apply(ctx context.Context, p plan.Plan) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-ctx.Done()
	}
	return g.Kernel.Apply(ctx, p)
}

// TestPrivilegedStopCutsAReloadShort runs the real daemon in a fresh
// namespace and stops it (SIGTERM) while the converge of a reload
// (SIGHUP) is applying: the seam's cancelled operations are no failure
// (a tester saw `level=ERROR msg="converge failed" reason=reload
// err="context canceled"`), and the teardown leaves nothing of tunneld's.
func TestPrivilegedStopCutsAReloadShort(t *testing.T) {
	netnstest.Enter(t)
	for _, err := range []error{
		netnstest.Veth("eth0", "peer0", nil), netnstest.LinkUp("eth0"), netnstest.LinkUp("peer0"),
		netnstest.AddAddr("eth0", netip.MustParsePrefix("192.0.2.10/24")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	lk, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	other, err := linux.Open(linux.Options{StateDir: t.TempDir()}) // reads state from another socket
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	k := &gatedKernel{Kernel: lk, entered: make(chan struct{})}
	var mu sync.Mutex
	file := privConfig
	var log syncbuf.Buffer
	converged := make(chan struct{}, 1)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(Deps{
		Kernel: k, Reload: reload, Log: logfmt.New(&log, logfmt.Info),
		Load: func() (*config.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			return config.Parse("t.toml", []byte(file))
		},
		OnConverge: func(Facts) {
			select {
			case converged <- struct{}{}:
			default:
			}
		},
	})
	go func() {
		defer cancel()
		select {
		case <-converged:
		case <-time.After(10 * time.Second):
			t.Error("no first convergence within 10s")
			return
		}
		mu.Lock()
		file = strings.Replace(privConfig, `to = "10.51.0.0/16"`, `to = "10.52.0.0/16"`, 1)
		mu.Unlock()
		k.armed.Store(true)
		reload <- struct{}{}
		select {
		case <-k.entered:
		case <-time.After(10 * time.Second):
			t.Error("the reload's converge did not apply within 10s")
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Errorf("Run returned %v", err)
	}
	if diff := cmp.Diff([]string(nil), levelLines(log.String(), "WARN")); diff != "" {
		t.Errorf("warn and error lines (-want +got):\n%s\nthe log:\n%s", diff, log.String())
	}
	if want := `level=INFO msg="convergence cut short: tunneld is stopping" reason=reload`; !strings.Contains(log.String(), want) {
		t.Errorf("no %q in the log:\n%s", want, log.String())
	}
	s, _, err := other.Observe(context.Background(), model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Routes)+len(s.Rules) != 0 || s.Filter != nil {
		t.Errorf("after the stop: routes %v rules %v filter %v", s.Routes, s.Rules, s.Filter)
	}
}
