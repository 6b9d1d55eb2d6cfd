package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// withFirewall writes the seed's colo.toml with firewall set to on into
// a temporary file.
func withFirewall(t *testing.T, dir string, on bool) string {
	t.Helper()
	b, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "[global]\n", fmt.Sprintf("[global]\nfirewall = %v\n", on), 1)
	file := filepath.Join(dir, "colo.toml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestKernelNeedsFilter: the kernel is opened needing nftables only when
// the configuration has the filter on, and never for down, which has
// nothing to remove where there is no nf_tables, nor for apply and run,
// where the filter's failure keeps the tunnels down
// (TestFilterOnWithoutNFTables).
func TestKernelNeedsFilter(t *testing.T) {
	for _, tt := range []struct {
		cmd      string
		firewall bool
		want     bool
	}{
		{"plan", true, true},
		{"plan", false, false},
		{"apply", true, false},
		{"apply", false, false},
		{"status", true, false},
		{"status", false, false},
		{"run", true, false},
		{"run", false, false},
		{"down", true, false},
		{"down", false, false},
	} {
		t.Run(fmt.Sprintf("%s firewall=%v", tt.cmd, tt.firewall), func(t *testing.T) {
			file := withFirewall(t, t.TempDir(), tt.firewall)
			c, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cmd == "run" {
				cancel() // converge, then stop at once
			}
			defer cancel()
			var out, errb syncbuf.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Context: ctx, StateDir: t.TempDir(),
				Kernel: func(needFilter bool) (kernel.Kernel, error) {
					got = append(got, needFilter)
					return emptyKernel(c), nil
				}}
			args := []string{tt.cmd, "-c", file}
			if tt.cmd == "status" {
				args = append(args, "-socket", filepath.Join(t.TempDir(), "none"))
			}
			if code := Main(env, args); code != 0 {
				t.Errorf("exit %d:\n%s", code, errb.String())
			}
			if diff := cmp.Diff([]bool{tt.want}, got); diff != "" {
				t.Errorf("needFilter (-want +got):\n%s", diff)
			}
		})
	}
}

// noNFTables is the in-memory kernel opened without nftables where the
// kernel has no nf_tables: it cannot turn the filter on.
type noNFTables struct {
	*fakekernel.Kernel
	required int
}

func (k *noNFTables) RequireFilter() error {
	k.required++
	return &kernel.NoNFTablesError{Err: fmt.Errorf("nftables: not available: netlink receive: %w", syscall.EINVAL)}
}

const noNFTablesErr = "nftables: not available: netlink receive: invalid argument: kernel has no nf_tables, " +
	"which firewall = true (the default) needs: load module nf_tables (on OpenWrt install kmod-nft-core) or set firewall = false in [global]"

// TestReloader: a reload that turns the filter on where the kernel has
// no nf_tables is refused with the kernel's words; one that leaves it
// off does not ask for nf_tables.
func TestReloader(t *testing.T) {
	for _, tt := range []struct {
		name     string
		firewall bool
		k        func() kernel.Kernel
		want     string // the error, "" for none
	}{
		{"filter off", false, func() kernel.Kernel { return &noNFTables{Kernel: fakekernel.New()} }, ""},
		{"filter on, no nf_tables", true, func() kernel.Kernel { return &noNFTables{Kernel: fakekernel.New()} }, noNFTablesErr},
		{"filter on, a kernel that always has it", true, func() kernel.Kernel { return fakekernel.New() }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := withFirewall(t, t.TempDir(), tt.firewall)
			k := tt.k()
			c, err := reloader(file, k)()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if (err == nil) != (c != nil) {
				t.Errorf("configuration %v with error %v", c, err)
			}
			if nk, ok := k.(*noNFTables); ok && !tt.firewall && nk.required != 0 {
				t.Errorf("nf_tables asked for with the filter off")
			}
		})
	}
}

// TestRunReloadFilterOnWithoutNFTables: the daemon started with the
// filter off on a kernel without nf_tables, reloaded (SIGHUP) with it
// on, refuses the reload, saying why, and keeps running without it.
func TestRunReloadFilterOnWithoutNFTables(t *testing.T) {
	dir := t.TempDir()
	file := withFirewall(t, dir, false)
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	k := &noNFTables{Kernel: emptyKernel(c)}
	d := startRun(t, file, func(bool) (kernel.Kernel, error) { return k, nil })
	d.wait("ready", func() bool { return strings.Contains(d.out.String(), "READY=1") })
	withFirewall(t, dir, true)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.wait("reload refused", func() bool { return strings.Count(d.out.String(), "READY=1") == 2 })
	if !strings.Contains(d.errb.String(), `level=ERROR msg="reload refused" err="`+noNFTablesErr+`"`) {
		t.Errorf("no reload refused line in the log:\n%s", d.errb.String())
	}
	k.Observe(context.Background(), model.Scope{}) // take the lock: the loop may be applying
	if k.Filter() != nil {
		t.Errorf("a filter was made")
	}
	d.stop()
	if k.required != 1 {
		t.Errorf("RequireFilter called %d times, want 1", k.required)
	}
}

// TestFilterOnWithoutNFTables: apply and run with the filter on, where
// the kernel has no nf_tables, fail closed: the table's failure (the
// Linux seam's, emulated) keeps the tunnel down and its route
// unreachable, apply exits 1 with the kernel's words, and the daemon
// runs on, trying again, until nf_tables is there (a module installed):
// then the tunnel comes up. A tester's kernel without kmod-nft-core got
// nothing set up, its routes leaking by the WAN, and the daemon exited.
func TestFilterOnWithoutNFTables(t *testing.T) {
	conf := "[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.42\"\nremote = \"192.0.2.1\"\naddress = \"10.0.0.1/30\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n"
	var noNFT sync.Mutex // guards missing
	missing := true
	failing := func(k *fakekernel.Kernel) {
		k.SetFail(func(op plan.Op) error {
			noNFT.Lock()
			defer noNFT.Unlock()
			if op.Kind == plan.FilterReplace && missing {
				return &kernel.NoNFTablesError{Err: fmt.Errorf("nftables: not available: netlink receive: %w", syscall.EINVAL)}
			}
			return nil
		})
	}
	// open is main's: a kernel without nf_tables is an error where
	// the command needs nftables.
	open := func(k *fakekernel.Kernel) func(bool) (kernel.Kernel, error) {
		return func(needFilter bool) (kernel.Kernel, error) {
			if needFilter {
				return nil, &kernel.NoNFTablesError{Err: fmt.Errorf("nftables: not available: netlink receive: %w", syscall.EINVAL)}
			}
			return k, nil
		}
	}
	unreachable := func(k *fakekernel.Kernel) bool {
		return slices.ContainsFunc(k.Routes, func(r fakekernel.Route) bool {
			return r.Dst == netip.MustParsePrefix("10.9.0.0/16") && r.Type == model.RouteUnreachable
		})
	}
	t.Run("apply", func(t *testing.T) {
		file, _, k := configured(t, conf)
		failing(k)
		var out, errb bytes.Buffer
		env := &Env{Stdout: &out, Stderr: &errb, StateDir: t.TempDir(), Kernel: open(k)}
		if code := Main(env, []string{"apply", "-c", file}); code != 1 {
			t.Errorf("apply: exit %d, want 1", code)
		}
		for _, want := range []string{noNFTablesErr, "routes: 10.9.0.0/16 table main unreachable until moe is up"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("no %q in apply's errors:\n%s", want, errb.String())
			}
		}
		if k.Devices["moe"] != nil && k.Devices["moe"].Up || !unreachable(k) {
			t.Errorf("moe up without its filter, or its route not unreachable: %+v\n%v", k.Devices["moe"], k.Routes)
		}
	})
	// status shows the tunnels, down, with the lack first among its
	// warnings: a tester's printed the kernel's error alone, while
	// the daemon ran on.
	t.Run("status", func(t *testing.T) {
		file, _, fk := configured(t, conf)
		failing(fk)
		var errb bytes.Buffer
		env := &Env{Stdout: &errb, Stderr: &errb, StateDir: t.TempDir(), Kernel: open(fk)}
		Main(env, []string{"apply", "-c", file})
		k := &noNFTables{Kernel: fk}
		out := statusText(t, file, k, filepath.Join(t.TempDir(), "none"))
		for _, want := range []string{"tunnel moe (ipip): down", "warning: " + noNFTablesErr + ": no tunnel is set up until it is there"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in status:\n%s", want, out)
			}
		}
		if k.required != 1 {
			t.Errorf("RequireFilter called %d times, want 1", k.required)
		}
	})
	t.Run("run", func(t *testing.T) {
		file, _, k := configured(t, conf)
		failing(k)
		d := startRun(t, file, open(k))
		// seen says whether moe is up and its route unreachable, from
		// an observation's copies: the loop may be applying.
		seen := func() (up, unreachable bool) {
			have, in, err := k.Observe(context.Background(), model.Scope{})
			if err != nil {
				t.Fatal(err)
			}
			return in.Devices["moe"].Up, slices.ContainsFunc(have.Routes, func(r model.Route) bool {
				return r.Dst == netip.MustParsePrefix("10.9.0.0/16") && r.Type == model.RouteUnreachable
			})
		}
		d.wait("ready", func() bool { return strings.Contains(d.out.String(), "READY=1") })
		d.wait("the route unreachable", func() bool { _, u := seen(); return u })
		if up, _ := seen(); up {
			t.Errorf("moe up without its filter")
		}
		noNFT.Lock()
		missing = false
		noNFT.Unlock()
		d.wait("moe up once nf_tables is there", func() bool { up, u := seen(); return up && !u })
		d.stop()
	})
}

// daemonRun is `tunneld run` started in the test (startRun).
type daemonRun struct {
	t         *testing.T
	out, errb syncbuf.Buffer
	code      chan int
	cancel    context.CancelFunc
}

// startRun starts `tunneld run -c file` with open as its kernel, its
// notifications written to out.
func startRun(t *testing.T, file string, open func(bool) (kernel.Kernel, error)) *daemonRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d := &daemonRun{t: t, code: make(chan int, 1), cancel: cancel}
	env := &Env{Stdout: &d.out, Stderr: &d.errb, Context: ctx, StateDir: t.TempDir(),
		Kernel: open,
		Notify: func(state string) { d.out.Write([]byte(state + "\n")) }}
	go func() { d.code <- Main(env, []string{"run", "-c", file}) }()
	return d
}

// wait waits up to 10 s for done, failing the test if the daemon exits
// meanwhile.
func (d *daemonRun) wait(what string, done func() bool) {
	d.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !done(); time.Sleep(5 * time.Millisecond) {
		select {
		case c := <-d.code:
			d.t.Fatalf("%s: the daemon exited %d:\n%s", what, c, d.errb.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within 10s:\n%s", what, d.errb.String())
		}
	}
}

// stop stops the daemon and checks that it exits 0.
func (d *daemonRun) stop() {
	d.t.Helper()
	d.cancel()
	if c := <-d.code; c != 0 {
		d.t.Errorf("exit %d:\n%s", c, d.errb.String())
	}
}
