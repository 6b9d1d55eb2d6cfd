package cli

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// coloFile is the seed configuration the daemon tests run.
const coloFile = "../../testdata/seeds/002_ff25396f952da8ec/colo.toml"

// coloDaemon is the environment of a `tunneld run` of coloFile against
// the in-memory kernel with the devices it names, in a state directory of
// its own: stdout gets the line "ready" at READY=1. cancel stops it.
func coloDaemon(t *testing.T) (env *Env, out, errb *syncbuf.Buffer, cancel func()) {
	t.Helper()
	c, err := config.Load(coloFile)
	if err != nil {
		t.Fatal(err)
	}
	k := emptyKernel(c)
	// colo's pinned local address, on a device of its own.
	k.AddDevice(model.Device{Name: "wan", MTU: 1500, Up: true, Running: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}})
	ctx, cancel := context.WithCancel(context.Background())
	out, errb = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	env = &Env{Stdout: out, Stderr: errb, Context: ctx, StateDir: t.TempDir(),
		Kernel: func(bool) (kernel.Kernel, error) { return k, nil },
		Notify: func(state string) {
			if state == "READY=1" {
				out.Write([]byte("ready\n"))
			}
		}}
	return env, out, errb, cancel
}

// runDaemon runs `tunneld run` with args against the in-memory kernel
// until stop returns, then stops it; it returns the exit code and stderr.
func runDaemon(t *testing.T, stop func(stderr string) bool, args ...string) (int, string) {
	t.Helper()
	code, _, stderr := runDaemonIn(t, false, stop, args...)
	return code, stderr
}

// runDaemonIn is runDaemon, with stderr as systemd's journal when journal
// is set; it returns stdout too (with the line "ready" at READY=1).
func runDaemonIn(t *testing.T, journal bool, stop func(stderr string) bool, args ...string) (int, string, string) {
	t.Helper()
	env, out, errb, cancel := coloDaemon(t)
	defer cancel()
	env.Journal = journal
	state := env.StateDir
	code := make(chan int, 1)
	go func() { code <- Main(env, append([]string{"run", "-c", coloFile}, args...)) }()
	for deadline := time.Now().Add(10 * time.Second); !stop(errb.String()) || !strings.Contains(out.String(), "ready"); time.Sleep(5 * time.Millisecond) {
		select {
		case c := <-code:
			return c, out.String(), errb.String()
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tunneld run %q: not ready within 10s:\n%s", args, errb.String())
		}
	}
	cancel()
	select {
	case c := <-code:
		// The status socket is gone when run returns.
		if diff := cmp.Diff([]string(nil), dirNames(t, state)); diff != "" {
			t.Errorf("state directory after tunneld run %q stopped (-want +got):\n%s", args, diff)
		}
		return c, out.String(), errb.String()
	case <-time.After(10 * time.Second):
		t.Fatalf("tunneld run %q did not stop within 10s:\n%s", args, errb.String())
	}
	return 0, "", ""
}

// convergedLine is what pkg/bench reads from the debug log.
var convergedLine = regexp.MustCompile(`msg=converged reason=("[^"]*"|\S+) ops=(\d+) took=(\S+)`)

// TestRunLog: `tunneld run -log-level L` logs slog's text format at L and
// above; the level's name is read in any case.
func TestRunLog(t *testing.T) {
	code, log := runDaemon(t, func(log string) bool { return convergedLine.MatchString(log) }, "-log-level", "DEBUG")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	m := convergedLine.FindStringSubmatch(log)
	if _, err := time.ParseDuration(m[3]); err != nil || m[1] != "start" || m[2] != "8" {
		t.Errorf("converged: reason %s, ops %s, took %s (%v)", m[1], m[2], m[3], err)
	}
	stamp := `time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `
	for _, want := range []string{
		stamp + `level=DEBUG msg=converged reason=start ops=8 took=\S+ read=\S+ apply=\S+\n`,
		stamp + `level=INFO msg=changed object="tunnel \\"Moe\\"" cmd="ip link add Moe mtu 1480 type ipip local 192.0.2.2 remote 192.0.2.42 ttl 64 pmtudisc\\nip link set Moe alias tunneld" reason=start\n`,
		stamp + `level=INFO msg=removed object="tunnel \\"Moe\\"" cmd="ip link del Moe"\n`,
		stamp + `level=INFO msg="stopped; everything tunneld owned is removed"\n$`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(log) {
			t.Errorf("no line matching %s in the log:\n%s", want, log)
		}
	}
	for _, line := range strings.SplitAfter(log, "\n") {
		if line != "" && !regexp.MustCompile(`^`+stamp+`level=(DEBUG|INFO|WARN|ERROR) msg=.*\n$`).MatchString(line) {
			t.Errorf("line not in slog's text format: %q", line)
		}
	}
	// At warn level a run without trouble logs nothing but the file's
	// warning (seed 002's colo filters no source from Moe).
	code, log = runDaemon(t, func(string) bool { return true }, "-log-level", "Warn")
	if code != 0 || !regexp.MustCompile(`^`+stamp+`level=WARN msg=".*no source filtering for IPv4.*"\n$`).MatchString(log) {
		t.Errorf("-log-level Warn: exit %d, log:\n%s", code, log)
	}
}

// TestRunBadLogLevel: an unknown level is a usage error (exit 2) that
// says so.
func TestRunBadLogLevel(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(&Env{Stdout: &out, Stderr: &errb}, []string{"run", "-log-level", "verbose"})
	if want := "tunneld: -log-level: unknown level \"verbose\" (want debug, info, warn or error)\n"; code != 2 || errb.String() != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), want)
	}
}

// TestRunBadConfigLeavesNothing: `tunneld run` with an invalid
// configuration prints its errors and exits 1 without opening the kernel
// and without leaving a status socket (or anything else) in the state
// directory.
func TestRunBadConfigLeavesNothing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(file, []byte("[global]\nip_forward = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	opened := 0
	var out, errb syncbuf.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, StateDir: state,
		Kernel: func(bool) (kernel.Kernel, error) { opened++; return fakekernel.New(), nil }}
	code := Main(env, []string{"run", "-c", file})
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	want := file + ":2:14: global.ip_forward: must be true or false, not the integer 3\n"
	if diff := cmp.Diff(want, errb.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if opened != 0 {
		t.Errorf("the kernel was opened %d times", opened)
	}
	// Look twice: right away, and after a goroutine left behind had the
	// time to create the socket.
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		time.Sleep(wait)
		if diff := cmp.Diff([]string(nil), dirNames(t, state)); diff != "" {
			t.Errorf("state directory after %v (-want +got):\n%s", wait, diff)
		}
	}
}

// dirNames lists a directory's entries (nil for none, or no directory).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestRunEarlyHUP: a SIGHUP that comes while `tunneld run` is still
// starting (here: as it opens the kernel, after loading its file) does
// not end it, and is a reload once the daemon runs. Its default action
// killed the daemon (a tester saw exit 129 within its first 40 ms, from
// a reload sent right after the start); without the fix this test's
// process dies of it.
func TestRunEarlyHUP(t *testing.T) {
	env, _, errb, cancel := coloDaemon(t)
	defer cancel()
	open := env.Kernel
	env.Kernel = func(filter bool) (kernel.Kernel, error) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Error(err)
		}
		time.Sleep(50 * time.Millisecond) // delivered meanwhile
		return open(filter)
	}
	code := make(chan int, 1)
	go func() { code <- Main(env, []string{"run", "-c", coloFile}) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), "configuration reloaded"); time.Sleep(5 * time.Millisecond) {
		select {
		case c := <-code:
			t.Fatalf("exit %d before the reload:\n%s", c, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload within 10s:\n%s", errb.String())
		}
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit %d:\n%s", c, errb.String())
	}
}

// TestRunConfigFileAbsolute: a daemon given its file by a relative path
// names it by its absolute one in its facts, which status without -c
// reads from any directory.
func TestRunConfigFileAbsolute(t *testing.T) {
	if filepath.IsAbs(coloFile) {
		t.Fatalf("coloFile %s is absolute: the test shows nothing", coloFile)
	}
	env, out, errb, cancel := coloDaemon(t)
	code := make(chan int, 1)
	go func() { code <- Main(env, []string{"run", "-c", coloFile}) }()
	defer func() {
		cancel()
		<-code
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "ready"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no ready within 10s:\n%s", errb.String())
		}
	}
	f, err := daemon.Query(filepath.Join(env.StateDir, daemon.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(coloFile)
	if f.ConfigFile != want {
		t.Errorf("the daemon's file %q, want %q", f.ConfigFile, want)
	}
}
