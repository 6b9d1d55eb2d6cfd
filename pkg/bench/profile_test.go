package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/cli"
	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/linux"
)

// TestProfile converges 1000 tunnels and profiles the config load, the
// apply and the no-op re-read, and the re-read of one tunnel's namespace
// (what the daemon does after an event), printing the time per phase and each CPU
// profile (base64, for `go tool pprof` on the host: the guest has no go
// tool). The work runs in a child process started inside a fresh
// namespace, so that, as in `tunneld apply`, no goroutine is locked to
// its thread (a locked thread turns every goroutine switch into a futex
// hand-off and would misplace the time).
func TestProfile(t *testing.T) {
	if os.Getenv("TUNNELD_BENCH_CHILD") == "1" {
		profileChild(t)
		return
	}
	s := setup(t)
	if os.Getenv("TUNNELD_BENCH_PROFILE") != "1" {
		t.Skip("set TUNNELD_BENCH_PROFILE=1")
	}
	cfg := writeConfig(t, 1000, false) // names every mode's tunnels, for release
	for _, mode := range []string{"engine", "engine-filter", "cli", "reread"} {
		ns := underlay(t)
		t.Setenv("TUNNELD_BENCH_CHILD", "1")
		t.Setenv("TUNNELD_BENCH_MODE", mode)
		_, out := run(t, ns, os.Args[0], "-test.run=^TestProfile$", "-test.count=1")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "PROFILE ") || strings.HasPrefix(l, "PPROF ") {
				fmt.Println(l)
			}
		}
		release(t, ns, s.bin, cfg)
	}
}

func profileChild(t *testing.T) {
	// Finer allocation samples than the default, for the allocation
	// profile repeatLook prints (pprof -sample_index=alloc_space).
	runtime.MemProfileRate = 16 << 10
	mode := os.Getenv("TUNNELD_BENCH_MODE")
	fw := mode == "engine-filter"
	name := map[bool]string{false: "", true: "-filter"}[fw]
	prof := func(phase string, f func()) {
		var buf bytes.Buffer
		pprof.StartCPUProfile(&buf)
		start := time.Now()
		f()
		took := time.Since(start)
		pprof.StopCPUProfile()
		fmt.Printf("PROFILE %s%s: %s\n", phase, name, took)
		fmt.Printf("PPROF %s%s %s\n", phase, name, base64.StdEncoding.EncodeToString(buf.Bytes()))
	}
	path := writeConfig(t, 1000, fw)
	if mode == "cli" {
		// What `tunneld apply` does, bar the process start.
		prof("cli-apply", func() {
			code := cli.Main(&cli.Env{StateDir: t.TempDir(), Stdout: os.Stdout, Stderr: os.Stderr, Context: context.Background(),
				Kernel: func(bool) (kernel.Kernel, error) { return linux.Open(linux.Options{StateDir: t.TempDir()}) }}, []string{"apply", "-c", path})
			if code != 0 {
				t.Fatalf("apply: exit %d", code)
			}
		})
		return
	}
	if mode == "reread" {
		rereadChild(t, prof)
		return
	}
	k, c := converged(t, path, prof)
	defer k.Close()
	ctx := context.Background()
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
	// Ten more, for a profile with enough samples.
	repeatLook(t, prof, "look-x10", "look"+name, k, c, 10)
}

// converged loads the configuration at path and converges the calling
// thread's namespace to it, each step run by step (which may profile it).
func converged(t *testing.T, path string, step func(string, func())) (*linux.Kernel, *config.Config) {
	var c *config.Config
	step("load", func() {
		var err error
		if c, err = config.Load(path); err != nil {
			t.Fatal(err)
		}
	})
	k, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	step("converge", func() {
		if _, err := engine.Converge(context.Background(), k, c, nil); err != nil {
			k.Close()
			t.Fatal(err)
		}
	})
	return k, c
}

// repeatLook re-reads n times as one profiled phase and prints the time
// of each re-read.
func repeatLook(t *testing.T, prof func(string, func()), phase, label string, k *linux.Kernel, c *config.Config, n int) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	prof(phase, func() {
		for range n {
			if _, err := engine.Look(context.Background(), k, c, nil); err != nil {
				t.Fatal(err)
			}
		}
	})
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	fmt.Printf("PROFILE %s, each of %d: %s, %d allocations, %d KiB allocated, %d GC cycles in all\n", label, n, took/time.Duration(n),
		(after.Mallocs-before.Mallocs)/uint64(n), (after.TotalAlloc-before.TotalAlloc)/uint64(n)/1024, after.NumGC-before.NumGC)
	var buf bytes.Buffer
	pprof.Lookup("allocs").WriteTo(&buf, 0)
	fmt.Printf("PPROF %s-allocs %s\n", label, base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// rereadChild profiles 200 re-reads of a namespace with one tunnel.
func rereadChild(t *testing.T, prof func(string, func())) {
	k, c := converged(t, writeConfig(t, 1, false), func(_ string, f func()) { f() })
	defer k.Close()
	repeatLook(t, prof, "reread-1-tunnel", "reread-1-tunnel", k, c, 200)
}
