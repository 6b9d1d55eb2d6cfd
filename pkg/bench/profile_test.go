package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestProfile converges 1000 tunnels in this process and profiles the
// apply and the no-op re-read, printing the top of each CPU profile (and
// the time per phase) to find where the time goes.
func TestProfile(t *testing.T) {
	setup(t)
	if os.Getenv("TUNNELD_BENCH_PROFILE") != "1" {
		t.Skip("set TUNNELD_BENCH_PROFILE=1")
	}
	netnstest.Enter(t)
	if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
		t.Fatal(err)
	}
	netnstest.LinkUp("eth0")
	netnstest.AddAddr("eth0", mustPrefix("192.0.0.1/16"))
	c, err := config.Load(writeConfig(t, 1000, true))
	if err != nil {
		t.Fatal(err)
	}
	k, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	prof := func(name string, f func()) {
		var buf bytes.Buffer
		pprof.StartCPUProfile(&buf)
		start := time.Now()
		f()
		took := time.Since(start)
		pprof.StopCPUProfile()
		fmt.Printf("PROFILE %s: %s\n", name, took)
		// The guest has no go tool: the profile goes to the console, for
		// `go tool pprof` on the host.
		fmt.Printf("PPROF %s %s\n", name, base64.StdEncoding.EncodeToString(buf.Bytes()))
	}
	ctx := context.Background()
	prof("converge", func() {
		if _, err := engine.Converge(ctx, k, c, nil); err != nil {
			t.Fatal(err)
		}
	})
	prof("observe", func() {
		if _, _, err := k.Observe(ctx, engine.Scope(c)); err != nil {
			t.Fatal(err)
		}
	})
	prof("look", func() {
		if _, err := engine.Look(ctx, k, c, nil); err != nil {
			t.Fatal(err)
		}
	})
}
