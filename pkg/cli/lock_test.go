package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/statelock"
)

const lockFile = "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"

// startDaemon runs `tunneld run` on k with the state directory state
// until the test ends; it returns once the daemon is ready.
func startDaemon(t *testing.T, k kernel.Kernel, state string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Context: ctx, StateDir: state,
		Kernel: func(bool) (kernel.Kernel, error) { return k, nil },
		Notify: func(state string) {
			if state == "READY=1" {
				out.Write([]byte("ready\n"))
			}
		}}
	code := make(chan int, 1)
	go func() { code <- Main(env, []string{"run", "-c", lockFile}) }()
	t.Cleanup(func() {
		cancel()
		if c := <-code; c != 0 {
			t.Errorf("the first daemon: exit %d:\n%s", c, errb.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "ready"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first daemon is not ready within 10s:\n%s", errb.String())
		}
	}
}

// TestOneDaemonPerStateDir: while a daemon runs, a second `run`, and
// apply and down, with the same state directory refuse at once, in one
// line naming the daemon, without changing the kernel; the daemon's
// status socket keeps answering.
func TestOneDaemonPerStateDir(t *testing.T) {
	c, err := config.Load(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	state := t.TempDir()
	startDaemon(t, k, state)
	pid := os.Getpid()
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"run"}, fmt.Sprintf("tunneld: state directory %s: a daemon is already running (pid %d): not starting another\n", state, pid)},
		{[]string{"apply"}, fmt.Sprintf("tunneld: state directory %s: a daemon is running (pid %d) and keeps the kernel as its configuration says: "+
			"edit the file and reload it (systemctl reload tunneld, service tunneld reload or kill -HUP %d)\n", state, pid, pid)},
		{[]string{"down"}, fmt.Sprintf("tunneld: state directory %s: a daemon is running (pid %d) and would put back what down removes: "+
			"stop it instead (systemctl stop tunneld or service tunneld stop)\n", state, pid)},
	} {
		t.Run(tt.args[0], func(t *testing.T) {
			writes := k.Writes
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var out, errb syncbuf.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Context: ctx, StateDir: state,
				Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			code := Main(env, append(tt.args, "-c", lockFile))
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if ctx.Err() != nil {
				t.Errorf("it ran until stopped")
			}
			if diff := cmp.Diff(tt.stderr, errb.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			k.Observe(context.Background(), model.Scope{}) // take the lock: the daemon may be applying
			if k.Writes != writes {
				t.Errorf("the kernel was written %d times", k.Writes-writes)
			}
			if _, err := daemon.Query(filepath.Join(state, daemon.SocketName)); err != nil {
				t.Errorf("the first daemon's status socket: %v", err)
			}
		})
	}
}

// TestLockHeldByApply: apply and down hold the lock while they work:
// another command finding it held says who holds it.
func TestLockHeldByApply(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "tunneld.lock"), []byte("4242 apply\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(state, "tunneld.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	want := fmt.Sprintf("tunneld: state directory %s: tunneld apply (pid 4242) is changing the kernel: try again when it is done\n", state)
	for _, cmd := range []string{"run", "apply", "down"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var out, errb bytes.Buffer
		code := Main(&Env{Stdout: &out, Stderr: &errb, StateDir: state, Context: ctx, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }},
			[]string{cmd, "-c", lockFile})
		cancel()
		if code != 1 || k.Writes != 0 {
			t.Errorf("%s: exit %d, %d writes; want 1, 0", cmd, code, k.Writes)
		}
		if diff := cmp.Diff(want, errb.String()); diff != "" {
			t.Errorf("%s: stderr (-want +got):\n%s", cmd, diff)
		}
	}
}

// TestStatusWithABadFile: while the file on disk does not parse (a bad
// edit the daemon refused to reload), status prints its errors and exits
// 1, and still shows what the running daemon says: its tunnels, of the
// configuration it runs, and its facts.
func TestStatusWithABadFile(t *testing.T) {
	c, err := config.Load(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	startDaemon(t, holding(emptyKernel(c), "192.0.2.2/24"), state)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[global]\nip_forward = \"yes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(&Env{Stdout: &out, Stderr: &errb, StateDir: state}, []string{"status", "-c", bad})
	if code != 1 || !strings.HasPrefix(errb.String(), bad+":2:14: global.ip_forward: must be true or false") {
		t.Errorf("exit %d, stderr %q: want 1 and the file's error", code, errb.String())
	}
	got := out.String()
	if !strings.HasPrefix(got, "configuration: the file cannot be read") || !strings.Contains(got, "\ntunnel Moe: up\n") ||
		!strings.Contains(got, "\ndaemon: running since ") || strings.Contains(got, "drift") {
		t.Errorf("stdout %q: want the daemon's tunnels and facts, no drift", got)
	}
}

// wipeTest is a daemon of the wiped-state-directory tests: `tunneld run`
// of file on k in state, until stopped.
type wipeTest struct {
	out, errb syncbuf.Buffer
	code      chan int
	cancel    context.CancelFunc
}

// wipeConfig writes a configuration that resyncs every second, with the
// extra sections given, and returns its path and an in-memory kernel.
func wipeConfig(t *testing.T, extra string) (string, kernel.Kernel) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(file, []byte("[global]\nfirewall = false\nresync_interval = \"1s\"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, emptyKernel(c)
}

// runWiped starts `tunneld run` and waits until it is ready.
func runWiped(t *testing.T, k kernel.Kernel, state, file string) *wipeTest {
	t.Helper()
	return runWipedEnv(t, k, state, file, nil)
}

// runWipedEnv is runWiped with the Env edited by edit (when not nil).
func runWipedEnv(t *testing.T, k kernel.Kernel, state, file string, edit func(*Env)) *wipeTest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &wipeTest{code: make(chan int, 1), cancel: cancel}
	env := &Env{Stdout: &r.out, Stderr: &r.errb, Context: ctx, StateDir: state,
		Kernel: func(bool) (kernel.Kernel, error) { return k, nil },
		Notify: func(s string) {
			if s == "READY=1" {
				r.out.Write([]byte("ready\n"))
			}
		}}
	if edit != nil {
		edit(env)
	}
	go func() { r.code <- Main(env, []string{"run", "-c", file}) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.out.String(), "ready"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a daemon is not ready within 10s:\n%s", r.errb.String())
		}
	}
	return r
}

// lost waits for the daemon to stop by itself, having lost its state
// directory to another run (exit 1).
func (r *wipeTest) lost(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.code:
		if c != 1 {
			t.Errorf("the first daemon: exit %d, want 1", c)
		}
	case <-time.After(10 * time.Second):
		r.cancel()
		t.Fatalf("the first daemon did not stop:\n%s", r.errb.String())
	}
}

// stop stops the daemon and checks that it exited 0.
func (r *wipeTest) stop(t *testing.T, which string) {
	t.Helper()
	r.cancel()
	if c := <-r.code; c != 0 {
		t.Errorf("%s: exit %d:\n%s", which, c, r.errb.String())
	}
}

// TestRunKeepsWipedStateDir: a state directory wiped while the daemon
// runs gets its lock and status socket back at the next resync: a second
// run is refused again, naming the daemon, and status reaches it (a
// tester's wipe left both gone for good, and a second daemon started).
func TestRunKeepsWipedStateDir(t *testing.T) {
	file, k := wipeConfig(t, "")
	state := t.TempDir()
	d := runWiped(t, k, state, file)
	defer d.stop(t, "the daemon")
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(state, daemon.SocketName)
	// The socket's file is there from its bind, a moment before it
	// listens (a loaded machine refused this test's query in between):
	// the query is asked until the deadline too.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, errLock := os.Stat(filepath.Join(state, statelock.FileName))
		_, errQuery := daemon.Query(sock)
		if errLock == nil && errQuery == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock (%v) and status socket (%v) not back within 10s:\n%s", errLock, errQuery, d.errb.String())
		}
	}
	var errb2 syncbuf.Buffer
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	env2 := &Env{Stdout: &syncbuf.Buffer{}, Stderr: &errb2, Context: ctx2, StateDir: state,
		Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if c := Main(env2, []string{"run", "-c", file}); c != 1 || !strings.Contains(errb2.String(), "a daemon is already running") {
		t.Errorf("a second run: exit %d, %q; want it refused", c, errb2.String())
	}
	if !strings.Contains(d.errb.String(), "the state directory's lock was gone") || !strings.Contains(d.errb.String(), "the status socket was gone") {
		t.Errorf("the daemon's log does not say what it put back:\n%s", d.errb.String())
	}
}

// TestRunLosesStateDir: when a second run took the state directory after
// a wipe, before the first took it back, the first stops at its next
// convergence without the teardown, and leaves the second's lock and
// socket where they are (a tester's first daemon fought the second for
// good, and at its stop removed what the second kept, lock and socket
// included).
func TestRunLosesStateDir(t *testing.T) {
	file, k := wipeConfig(t, "[[rule]]\nfrom = \"10.0.0.0/24\"\ntable = 100\n")
	state := t.TempDir()
	first := runWiped(t, k, state, file)
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	second := runWiped(t, k, state, file)
	defer second.stop(t, "the second daemon")
	first.lost(t)
	if log := first.errb.String(); !strings.Contains(log, "another tunneld took the state directory") || strings.Contains(log, "removed") {
		t.Errorf("the first daemon's log, want it stopped without the teardown:\n%s", log)
	}
	for _, name := range []string{statelock.FileName, daemon.SocketName} {
		if _, err := os.Stat(filepath.Join(state, name)); err != nil {
			t.Errorf("the second daemon's %s: %v", name, err)
		}
	}
	if _, err := daemon.Query(filepath.Join(state, daemon.SocketName)); err != nil {
		t.Errorf("status cannot reach the second daemon: %v", err)
	}
}

// TestApplyKeepsLockAcrossLookups: a state directory wiped while apply
// looks up remote names, and taken by a `tunneld run` meanwhile, ends
// apply before it changes anything (a tester's apply went on changing
// the kernel beside the new daemon); wiped with no one taking it, apply
// takes its lock back, warns, and applies.
func TestApplyKeepsLockAcrossLookups(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.toml")
	conf := "[global]\nfirewall = false\n[tunnel.t0]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"peer.example\"\n"
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		taken   bool
		code    int
		errs    string
		tunnels int
	}{
		{"taken by a run", true, 1, "took it while apply looked up remote names (the directory wiped?): it keeps the kernel now; apply changed nothing\n", 0},
		{"wiped only", false, 0, "tunneld: warning: the state directory's lock was gone (the directory wiped?): taken again\n", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := emptyKernel(c)
			state := t.TempDir()
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, Kernel: func(bool) (kernel.Kernel, error) { return k, nil },
				Lookup: func(context.Context, string) ([]netip.Addr, error) {
					if err := os.RemoveAll(state); err != nil {
						t.Error(err)
					}
					if tt.taken {
						l, err := statelock.Acquire(state, "run")
						if err != nil {
							t.Error(err)
						} else {
							t.Cleanup(func() { l.Release() })
						}
					}
					return []netip.Addr{netip.MustParseAddr("198.51.100.7")}, nil
				}}
			code := Main(env, []string{"apply", "-c", file})
			if code != tt.code || !strings.Contains(errb.String(), tt.errs) {
				t.Errorf("apply: exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.errs)
			}
			if n := len(k.Tunnels); n != tt.tunnels {
				t.Errorf("%d tunnels in the kernel after apply, want %d:\n%s", n, tt.tunnels, out.String())
			}
		})
	}
}

// TestSecondTunneldInNamespace: with the namespace's lock on (the
// binary's), a tunneld with another state directory in the same network
// namespace is refused, naming the daemon and its state directory: the
// two would undo each other's routes, rules, table and sysctls (a second
// instance started beside the first and fought it).
func TestSecondTunneldInNamespace(t *testing.T) {
	old := statelock.NamespaceName
	statelock.NamespaceName = fmt.Sprintf("@tunneld-cli-test-%d", os.Getpid())
	defer func() { statelock.NamespaceName = old }()
	// The daemon as root is (this process may not be).
	procStatus(t, "Name:\ttunneld\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n", nil)
	file, k := wipeConfig(t, "")
	first := runWipedEnv(t, k, t.TempDir(), file, func(e *Env) { e.NamespaceLock = true })
	defer first.stop(t, "the daemon")
	other := t.TempDir()
	for _, cmd := range []string{"run", "apply", "down"} {
		var errb bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb, StateDir: other, NamespaceLock: true, Context: context.Background(),
			Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, []string{cmd, "-c", file})
		want := fmt.Sprintf("tunneld: this network namespace is kept by tunneld run (pid %d) with state directory ", os.Getpid())
		if code != 1 || !strings.HasPrefix(errb.String(), want) || !strings.Contains(errb.String(), "(one tunneld per network namespace: TUNNELD_STATE_DIR is for instances in separate ones)") {
			t.Errorf("%s with another state directory: exit %d, stderr %q; want 1 and %q…", cmd, code, errb.String(), want)
		}
		if _, err := os.Stat(filepath.Join(other, statelock.FileName)); err == nil {
			t.Errorf("%s left its state directory's lock file behind", cmd)
		}
	}
}

// TestStatusDaemonAfterWipe: with the state directory wiped under a
// quiet daemon, status names the daemon that holds the network
// namespace, and says its socket comes back at its next convergence (a
// tester's status said no daemon ran, while run named it).
func TestStatusDaemonAfterWipe(t *testing.T) {
	old := statelock.NamespaceName
	statelock.NamespaceName = fmt.Sprintf("@tunneld-cli-status-test-%d", os.Getpid())
	defer func() { statelock.NamespaceName = old }()
	file := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(file, []byte("[global]\nfirewall = false\nresync_interval = \"1h\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	state := t.TempDir()
	d := runWipedEnv(t, k, state, file, func(e *Env) { e.NamespaceLock = true })
	defer d.stop(t, "the daemon")
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: state, NamespaceLock: true, Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
	if code := Main(env, []string{"status", "-c", file}); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errb.String())
	}
	want := fmt.Sprintf("daemon: a daemon runs in this network namespace (tunneld run (pid %d), state directory %s), but its status socket %s is gone (the state directory wiped?)",
		os.Getpid(), state, filepath.Join(state, daemon.SocketName))
	if !strings.Contains(out.String(), want) {
		t.Errorf("status does not name the daemon; want %q in:\n%s", want, out.String())
	}
}

// procStatus makes statelock read status as every process's
// /proc/PID/status, and holders as the processes holding a socket (nil:
// /proc's).
func procStatus(t *testing.T, status string, holders func(string) []int) {
	oldStatus, oldHolders := statelock.ReadStatus, statelock.SocketHolders
	t.Cleanup(func() { statelock.ReadStatus, statelock.SocketHolders = oldStatus, oldHolders })
	statelock.ReadStatus = func(int) ([]byte, error) { return []byte(status), nil }
	if holders != nil {
		statelock.SocketHolders = holders
	}
}

// TestForeignNamespaceHolder: the network namespace's lock held by a
// process without CAP_NET_ADMIN (a tester's uid 65534 bound the name and
// kept apply and run off, "another tunneld" said) is gone on without:
// apply and down warn once, run logs it once. One that cannot be
// identified still keeps them off, saying who holds the name as far as
// known and how to find it, not "another tunneld"; one bound and not
// listening is gone on without too. The holder is this process's socket;
// /proc is injected.
func TestForeignNamespaceHolder(t *testing.T) {
	old := statelock.NamespaceName
	statelock.NamespaceName = fmt.Sprintf("@tunneld-cli-foreign-test-%d", os.Getpid())
	defer func() { statelock.NamespaceName = old }()
	fd := bindName(t, statelock.NamespaceName)
	// Listening, and answering nothing: bound alone, it is no tunneld
	// whoever it is (the "bound only" case).
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(statelock.NamespaceName, "@")
	warning := fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which has no CAP_NET_ADMIN and so is not a tunneld: going on without it; find it with `ss -xap | grep %s`",
		statelock.NamespaceName, os.Getpid(), name)
	t.Run("no capability", func(t *testing.T) {
		procStatus(t, "Name:\tpython3\nUid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n", func(string) []int { return []int{os.Getpid()} })
		file, k := wipeConfig(t, "")
		for _, cmd := range []string{"apply", "down"} {
			var errb bytes.Buffer
			env := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb, StateDir: t.TempDir(), NamespaceLock: true, Context: context.Background(),
				Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			code := Main(env, []string{cmd, "-c", file})
			if diff := cmp.Diff("tunneld: warning: "+warning+"\n", errb.String()); code != 0 || diff != "" {
				t.Errorf("%s: exit %d, stderr (-want +got):\n%s", cmd, code, diff)
			}
		}
		d := runWipedEnv(t, k, t.TempDir(), file, func(e *Env) { e.NamespaceLock = true })
		d.stop(t, "the daemon")
		if got := d.errb.String(); strings.Count(got, warning) != 1 || !strings.Contains(got, `level=WARN msg="`+warning+`"`) {
			t.Errorf("run's log does not warn once of the holder (%q):\n%s", warning, got)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		procStatus(t, "", func(string) []int { return nil })
		file, k := wipeConfig(t, "")
		// Its credentials (SO_PEERCRED), its status unreadable: it may
		// be a tunneld.
		want := fmt.Sprintf("tunneld: this network namespace's lock %s is held by pid %d (uid %d), which does not answer as a tunneld does: find it with `ss -xap | grep %s`, and stop it or try again when it is gone\n",
			statelock.NamespaceName, os.Getpid(), os.Geteuid(), name)
		for _, cmd := range []string{"run", "apply", "down"} {
			var errb bytes.Buffer
			state := t.TempDir()
			env := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb, StateDir: state, NamespaceLock: true, Context: context.Background(),
				Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
			code := Main(env, []string{cmd, "-c", file})
			if diff := cmp.Diff(want, errb.String()); code != 1 || diff != "" {
				t.Errorf("%s: exit %d, stderr (-want +got):\n%s", cmd, code, diff)
			}
			if _, err := os.Stat(filepath.Join(state, statelock.FileName)); err == nil {
				t.Errorf("%s left its state directory's lock file behind", cmd)
			}
		}
	})
	// Bound and not listened on, which no tunneld does: a user that is
	// not root cannot see who holds it, and a tester's service user
	// (CAP_NET_ADMIN only) was kept off by anyone's bind.
	t.Run("bound only", func(t *testing.T) {
		procStatus(t, "", func(string) []int { return nil })
		statelock.NamespaceName += "-bound"
		bindName(t, statelock.NamespaceName)
		unknown := "a process this user cannot identify (root can)"
		if os.Geteuid() == 0 {
			unknown = "a process that /proc does not show"
		}
		want := fmt.Sprintf("tunneld: warning: the network namespace's lock %s is held by %s, which does not listen on it as every tunneld does, and so is not one: going on without it; find it with `ss -xap | grep %s`\n",
			statelock.NamespaceName, unknown, strings.TrimPrefix(statelock.NamespaceName, "@"))
		file, k := wipeConfig(t, "")
		var errb bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &errb, StateDir: t.TempDir(), NamespaceLock: true, Context: context.Background(),
			Kernel: func(bool) (kernel.Kernel, error) { return k, nil }}
		code := Main(env, []string{"apply", "-c", file})
		if diff := cmp.Diff(want, errb.String()); code != 0 || diff != "" {
			t.Errorf("apply: exit %d, stderr (-want +got):\n%s", code, diff)
		}
	})
}

// bindName binds a unix socket of this process's to the abstract name
// ("@…"), not listening, until the test ends, and returns it.
func bindName(t *testing.T, name string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	return fd
}
