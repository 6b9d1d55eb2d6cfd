package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
	"github.com/tunneld/tunneld/pkg/watch"
)

var (
	wanA   = netip.MustParseAddr("192.0.2.7")
	wanB   = netip.MustParseAddr("192.0.2.99")
	peerA  = netip.MustParseAddr("198.51.100.2")
	peerB  = netip.MustParseAddr("198.51.100.3")
	cmpIPs = cmpopts.EquateComparable(netip.Addr{})
)

func link(name string, local, remote netip.Addr, up bool) *model.Link {
	return &model.Link{Name: name, Mode: model.ModeSIT, Local: local, Remote: remote, TTL: 64, MTU: 1480, Up: up}
}

// TestHookCalls: which applied operations run a tunnel's hook, and why.
func TestHookCalls(t *testing.T) {
	mtu := link("he", wanA, peerA, true)
	mtu.MTU = 1472
	tests := []struct {
		name string
		ops  []plan.Op
		want []hookCall
	}{
		{"created and set up", []plan.Op{
			{Kind: plan.LinkAdd, Link: link("he", wanA, peerA, true)},
			{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "he", Prefix: netip.MustParsePrefix("2001:db8:1::2/64")}},
			{Kind: plan.LinkUp, Link: link("he", wanA, peerA, true), Name: "he"}},
			[]hookCall{{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA}}},
		{"created down: its local device has no address", []plan.Op{
			{Kind: plan.LinkAdd, Link: link("he", netip.Addr{}, peerA, false)}}, nil},
		{"created, but setting it up failed", []plan.Op{
			{Kind: plan.LinkAdd, Link: link("he", wanA, peerA, true)}}, nil},
		{"set up again", []plan.Op{
			{Kind: plan.LinkUp, Link: link("he", wanA, peerA, true), Name: "he"}},
			[]hookCall{{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA}}},
		{"the WAN address changed", []plan.Op{
			{Kind: plan.LinkChange, Link: link("he", wanB, peerA, true), Old: link("he", wanA, peerA, true)}},
			[]hookCall{{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA}}},
		{"the remote's DNS answer changed", []plan.Op{
			{Kind: plan.LinkChange, Link: link("he", wanA, peerB, true), Old: link("he", wanA, peerA, true)},
			{Kind: plan.FilterReplace, Filter: &model.Filter{}}},
			[]hookCall{{Tunnel: "he", Reason: "moved", Local: wanA, Remote: peerB, OldLocal: wanA, OldRemote: peerA}}},
		{"moved and set up again: the WAN came back with another address", []plan.Op{
			{Kind: plan.LinkChange, Link: link("he", wanB, peerA, true), Old: link("he", wanA, peerA, false)},
			{Kind: plan.LinkUp, Link: link("he", wanB, peerA, true), Name: "he"}},
			[]hookCall{{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA}}},
		{"moved while down (the short way): the LinkUp after it runs it", []plan.Op{
			{Kind: plan.LinkChange, Link: link("he", wanB, peerA, true), Old: link("he", wanA, peerA, false)}}, nil},
		{"moved to any as it goes down", []plan.Op{
			{Kind: plan.LinkChange, Link: link("he", netip.Addr{}, peerA, false), Old: link("he", wanA, peerA, true)},
			{Kind: plan.LinkDown, Link: link("he", netip.Addr{}, peerA, false), Name: "he"}}, nil},
		{"another parameter changed", []plan.Op{
			{Kind: plan.LinkChange, Link: mtu, Old: link("he", wanA, peerA, true)}}, nil},
		{"set down", []plan.Op{
			{Kind: plan.LinkDown, Link: link("he", wanA, peerA, false), Name: "he"}}, nil},
		{"removed", []plan.Op{
			{Kind: plan.LinkDel, Link: link("he", wanA, peerA, true)}}, nil},
		{"recreated for another mode", []plan.Op{
			{Kind: plan.LinkDel, Link: link("he", wanA, peerA, true)},
			{Kind: plan.LinkAdd, Link: link("he", wanA, peerA, true)},
			{Kind: plan.LinkUp, Link: link("he", wanA, peerA, true), Name: "he"}},
			[]hookCall{{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA}}},
		{"a fallback device set up has no link", []plan.Op{{Kind: plan.LinkUp, Name: "sit0"}}, nil},
		{"two tunnels, in the order of the operations", []plan.Op{
			{Kind: plan.LinkChange, Link: link("b", wanB, peerA, true), Old: link("b", wanA, peerA, true)},
			{Kind: plan.LinkAdd, Link: link("a", wanB, peerB, true)},
			{Kind: plan.LinkUp, Link: link("a", wanB, peerB, true), Name: "a"}},
			[]hookCall{
				{Tunnel: "b", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA},
				{Tunnel: "a", Reason: "up", Local: wanB, Remote: peerB}}},
		{"routes and addresses only", []plan.Op{
			{Kind: plan.AddrAdd, Addr: &model.Addr{Link: "he", Prefix: netip.MustParsePrefix("2001:db8:1::2/64")}},
			{Kind: plan.RouteAdd, Route: &model.Route{Dst: netip.MustParsePrefix("::/0"), Dev: "he"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, hookCalls(tt.ops), cmpIPs); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookCallThen: the one run that stands for a call not yet run and
// one after it.
func TestHookCallThen(t *testing.T) {
	wanC := netip.MustParseAddr("192.0.2.100")
	moved := func(old, now netip.Addr) hookCall {
		return hookCall{Tunnel: "he", Reason: "moved", Local: now, Remote: peerA, OldLocal: old, OldRemote: peerA}
	}
	up := hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA}
	tests := []struct {
		name        string
		first, next hookCall
		want        hookCall
	}{
		{"moved twice: from the first old to the last new", moved(wanA, wanB), moved(wanB, wanC), moved(wanA, wanC)},
		{"up, then moved: up, at the new address", up, moved(wanA, wanB), hookCall{Tunnel: "he", Reason: "up", Local: wanB, Remote: peerA}},
		{"moved, then up again", moved(wanA, wanB), up, up},
		{"start, then moved", hookCall{Tunnel: "he", Reason: "start", Local: wanA, Remote: peerA}, moved(wanA, wanB),
			hookCall{Tunnel: "he", Reason: "start", Local: wanB, Remote: peerA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.first.then(tt.next), cmpIPs); diff != "" {
				t.Errorf("call (-want +got):\n%s", diff)
			}
		})
	}
}

// envScript is a hook that writes its environment to DIR/env.N, N
// counting its runs from 1, then N to DIR/count, and prints a line.
const envScript = `#!/bin/sh
n=$(($(cat "%[1]s/count" 2>/dev/null || echo 0) + 1))
env >"%[1]s/env.$n"
echo $n >"%[1]s/count"
echo "run $n for $TUNNELD_TUNNEL"
`

// script writes a shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// hookEnv reads the environment a run wrote to dir/env.n, without what
// the shell adds itself.
func hookEnv(t *testing.T, dir string, n int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "env."+strconv.Itoa(n)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, _, _ := strings.Cut(l, "="); k != "PWD" && k != "SHLVL" && k != "_" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// hookNow is the clock of a hookRig's runner.
var hookNow = time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)

// hookRig is a hooks runner whose runs are told on a channel, whose log
// is kept, and whose retries wait on timers the test fires (see fire).
type hookRig struct {
	t   *testing.T
	h   *hooks
	log syncbuf.Buffer
	// ran gets the facts of each run that ended, started those of each
	// run as it starts (HookRun.Running set).
	ran, started chan HookRun

	mu sync.Mutex
	// timers are the timers the runner armed, in order.
	timers []*fakeTimer
	// forgot are the tunnels whose last run the runner forgot.
	forgot []string
}

// fakeTimer is a timer of a hookRig: it fires when the test says.
type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
	fired   bool
}

// Stop stops the timer; it reports whether it was armed.
func (ft *fakeTimer) Stop() bool {
	armed := !ft.stopped && !ft.fired
	ft.stopped = true
	return armed
}

func newHookRig(t *testing.T, timeout time.Duration, tunnels map[string]string) *hookRig {
	r := &hookRig{t: t, ran: make(chan HookRun, 100), started: make(chan HookRun, 100)}
	r.h = newHooks(logfmt.New(&r.log, logfmt.Info), func() time.Time { return hookNow }, timeout, func(tunnel string, run HookRun) {
		if run.Running.IsZero() {
			r.ran <- run
		} else {
			r.started <- run
		}
	})
	r.h.forget = func(tunnel string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.forgot = append(r.forgot, tunnel)
	}
	r.h.after = func(d time.Duration, f func()) hookStopper {
		r.mu.Lock()
		defer r.mu.Unlock()
		ft := &fakeTimer{d: d, f: f}
		r.timers = append(r.timers, ft)
		return ft
	}
	r.configure(tunnels)
	t.Cleanup(func() { r.h.stop(0) })
	return r
}

// armed are the waits of the timers armed and neither stopped nor fired.
// The runner stops timers with its lock held: so is it here.
func (r *hookRig) armed() []time.Duration {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, ft := range r.timers {
		if !ft.stopped && !ft.fired {
			out = append(out, ft.d)
		}
	}
	return out
}

// fire fires the one timer armed, and returns its wait.
func (r *hookRig) fire() time.Duration {
	r.t.Helper()
	r.h.mu.Lock()
	r.mu.Lock()
	var armed []*fakeTimer
	for _, ft := range r.timers {
		if !ft.stopped && !ft.fired {
			armed = append(armed, ft)
		}
	}
	if len(armed) != 1 {
		r.mu.Unlock()
		r.h.mu.Unlock()
		r.t.Fatalf("%d timers armed, want 1; log:\n%s", len(armed), r.log.String())
	}
	armed[0].fired = true
	r.mu.Unlock()
	r.h.mu.Unlock()
	armed[0].f()
	return armed[0].d
}

// lastTimer is the timer the runner armed last.
func (r *hookRig) lastTimer() *fakeTimer {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.timers) == 0 {
		r.t.Fatal("no timer armed")
	}
	return r.timers[len(r.timers)-1]
}

// drain returns the runs told so far that were not taken.
func (r *hookRig) drain() []HookRun {
	var out []HookRun
	for {
		select {
		case run := <-r.ran:
			out = append(out, run)
		default:
			return out
		}
	}
}

// configure gives the runner a configuration with the tunnels' hooks.
func (r *hookRig) configure(tunnels map[string]string) {
	c := &config.Config{}
	for name, hook := range tunnels {
		c.Tunnels = append(c.Tunnels, &config.Tunnel{Name: name, Hook: hook})
	}
	r.h.configure(c)
}

// next waits for the next run to end.
func (r *hookRig) next() HookRun {
	r.t.Helper()
	select {
	case run := <-r.ran:
		return run
	case <-time.After(20 * time.Second):
		r.t.Fatalf("no hook run ended within 20s; log:\n%s", r.log.String())
	}
	return HookRun{}
}

// lines is the log without its times.
func (r *hookRig) lines() []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.log.String()), "\n") {
		if i := strings.Index(l, " level="); i >= 0 {
			l = l[i+1:]
		}
		if i := strings.Index(l, " took="); i >= 0 {
			rest := l[i+len(" took="):]
			if j := strings.IndexByte(rest, ' '); j >= 0 {
				l = l[:i] + " took=T" + rest[j:]
			} else {
				l = l[:i] + " took=T"
			}
		}
		out = append(out, l)
	}
	return out
}

// TestHookRuns: a hook runs with its environment, and its output is
// logged at info level with its exit status.
func TestHookRuns(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA},
		hookCall{Tunnel: "other", Reason: "up", Local: wanB}) // no hook
	run := r.next()
	if diff := cmp.Diff(HookRun{Path: path, Reason: "moved", Status: "exit status 0", Try: 1}, run, cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	want := movedEnv
	if diff := cmp.Diff(want, hookEnv(t, dir, 1)); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanB}) // remote any
	r.next()
	want = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.99", "TUNNELD_REASON=up", "TUNNELD_REMOTE=", "TUNNELD_TUNNEL=he"}
	if diff := cmp.Diff(want, hookEnv(t, dir, 2)); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	wantLog := []string{
		fmt.Sprintf(`level=INFO msg="tunnel \"he\": hook %s: exit status 0" reason=moved took=T output="run 1 for he"`, path),
		fmt.Sprintf(`level=INFO msg="tunnel \"he\": hook %s: exit status 0" reason=up took=T output="run 2 for he"`, path),
	}
	if diff := cmp.Diff(wantLog, r.lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestHookFails: a hook that fails, or cannot start, is logged at warn
// level with its output, bounded, and when it is tried again.
func TestHookFails(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body string
		want       HookRun
		log        string
	}{
		{"exit status", "#!/bin/sh\necho 'update failed: badauth' >&2\nexit 3\n",
			HookRun{Reason: "up", Status: "exit status 3", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: exit status 3" reason=up took=T retry_in=30s output="update failed: badauth"`},
		{"killed by a signal", "#!/bin/sh\nkill -TERM $$\n",
			HookRun{Reason: "up", Status: "signal: terminated", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: signal: terminated" reason=up took=T retry_in=30s`},
		{"output bounded", "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' x\n",
			HookRun{Reason: "up", Status: "exit status 0", Try: 1},
			`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=up took=T output="` + strings.Repeat("x", 4096) + `\n(904 more bytes)"`},
		{"not executable", "",
			HookRun{Reason: "up", Status: "cannot start: permission denied", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: permission denied" reason=up took=T retry_in=30s`},
		{"missing", "-",
			HookRun{Reason: "up", Status: "cannot start: no such file or directory", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: no such file or directory" reason=up took=T retry_in=30s`},
		// The kernel's ENOEXEC and ENOENT (for a file that is there)
		// said nothing of the #! line a tester's hooks lacked or
		// named wrong.
		{"no shebang", "echo hi\n",
			HookRun{Reason: "up", Status: "cannot start: no #! line", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: no #! line" reason=up took=T retry_in=30s`},
		{"interpreter missing", "#!/nonexistent/bash\necho hi\n",
			HookRun{Reason: "up", Status: "cannot start: its interpreter /nonexistent/bash does not exist", Try: 1, Retry: hookNow.Add(HookRetry)},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: its interpreter /nonexistent/bash does not exist" reason=up took=T retry_in=30s`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".sh")
			switch tt.body {
			case "-":
			case "":
				if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			default:
				script(t, dir, filepath.Base(path), tt.body)
			}
			r := newHookRig(t, time.Minute, map[string]string{"he": path})
			r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
			tt.want.Path = path
			if diff := cmp.Diff(tt.want, r.next(), cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
				t.Errorf("run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{strings.Replace(tt.log, "PATH", path, 1)}, r.lines()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookExecProblem: what the kernel would refuse to exec, by the
// file's first line, and what it would run.
func TestHookExecProblem(t *testing.T) {
	dir := t.TempDir()
	elf, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, body string
		why, fix   string
	}{
		{"sh", "#!/bin/sh\necho hi\n", "", ""},
		{"space and argument", "#! /bin/sh -e\n", "", ""},
		{"env", "#!/usr/bin/env sh\n", "", ""},
		{"elf", string(elf), "", ""},
		{"no shebang", "echo hi\n", "no #! line", "start it with #!/bin/sh: the kernel runs a script only by its #! line"},
		{"empty", "", "no #! line", "start it with #!/bin/sh: the kernel runs a script only by its #! line"},
		{"interpreter missing", "#!/nonexistent/bash\necho hi\n", "its interpreter /nonexistent/bash does not exist", "OpenWrt has /bin/sh; change the #! line"},
		{"interpreter missing, no newline", "#!/nonexistent/bash", "its interpreter /nonexistent/bash does not exist", "OpenWrt has /bin/sh; change the #! line"},
		{"interpreter a directory", "#!/\n", "its interpreter / is a directory", "change the #! line"},
		{"interpreter not executable", "#!" + filepath.Join(dir, "notexec") + "\n", "its interpreter " + filepath.Join(dir, "notexec") + " is not executable", "change the #! line"},
		{"relative interpreter", "#!sh\n", "its interpreter sh is not an absolute path", "give the interpreter's full path: #!/bin/sh"},
		{"no interpreter", "#!\necho hi\n", "its #! line names no interpreter", "start it with #!/bin/sh"},
		{"windows line ends", "#!/bin/sh\r\necho hi\r\n", `its #! line ends in a carriage return (Windows line ends): the kernel looks for "/bin/sh\r"`, "convert it to Unix line ends: sed -i 's/\\r$//' PATH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.body), 0o755); err != nil {
				t.Fatal(err)
			}
			why, fix := HookExecProblem(path)
			if diff := cmp.Diff([2]string{tt.why, strings.Replace(tt.fix, "PATH", path, 1)}, [2]string{why, fix}); diff != "" {
				t.Errorf("HookExecProblem (-want +got):\n%s", diff)
			}
		})
	}
	if why, fix := HookExecProblem(filepath.Join(dir, "none")); why != "" || fix != "" {
		t.Errorf("a missing file: %q, %q, want nothing (the caller says it is missing)", why, fix)
	}
}

// TestHookTimeout: a hook still running after the timeout is killed with
// its process group, a child it started included.
func TestHookTimeout(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hang.sh", fmt.Sprintf("#!/bin/sh\nsleep 600 &\necho $! >%s/child\necho waiting\nwait\n", dir))
	r := newHookRig(t, 50*time.Millisecond, map[string]string{"he": path})
	r.upOnce(t, HookRun{Path: path, Reason: "up", Status: "killed after 50ms", Try: 1, Retry: hookNow.Add(HookRetry)},
		fmt.Sprintf(`level=WARN msg="tunnel \"he\": hook %s: killed after 50ms" reason=up took=T retry_in=30s output=waiting`, path))
	waitGone(t, childPid(t, dir))
}

// TestHookLeavesAChild: a hook that exits and leaves a child of its own
// session holding its output ends when it exits; its output is read
// until then, and for the drain after it.
func TestHookLeavesAChild(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "daemonizes.sh", fmt.Sprintf("#!/bin/sh\nsetsid sleep 600 &\necho $! >%s/child\necho bye\n", dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.drain = 10 * time.Millisecond
	r.upOnce(t, HookRun{Path: path, Reason: "up", Status: "exit status 0", Try: 1},
		fmt.Sprintf(`level=INFO msg="tunnel \"he\": hook %s: exit status 0" reason=up took=T output=bye`, path))
	_ = syscall.Kill(childPid(t, dir), syscall.SIGKILL)
}

// upOnce calls the "he" tunnel's hook for reason up and checks its run
// and its one log line.
func (r *hookRig) upOnce(t *testing.T, want HookRun, log string) {
	t.Helper()
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	if diff := cmp.Diff(want, r.next(), cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{log}, r.lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// childPid is the pid a test hook wrote to dir/child.
func childPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until the process pid has ended (it may be left a
// zombie, with no parent to reap it in a container).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs 10s after its hook was killed", pid)
		}
	}
}

// blockingScript is envScript that, when DIR/block exists (see
// blockNext), removes it and waits until a line can be read from
// DIR/fifo.
const blockingScript = envScript + `if [ -e "%[1]s/block" ]; then rm "%[1]s/block"; read x <"%[1]s/fifo"; fi
`

// release waits for a run of blockingScript to wait on its fifo
// (opening a fifo for writing waits for a reader) and lets it end.
func release(t *testing.T, dir string, between func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "fifo"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	between()
	fmt.Fprintln(f, "go")
	f.Close()
}

// blockNext makes the next run of blockingScript in dir wait on its
// fifo.
func blockNext(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "block"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHookCoalesces: calls while a tunnel's hook runs make one run after
// it, with the latest addresses; another tunnel's hook does not wait.
func TestHookCoalesces(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	blockNext(t, dir)
	path := script(t, dir, "hook.sh", fmt.Sprintf(blockingScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path, "other": script(t, other, "hook.sh", fmt.Sprintf(envScript, other))})
	wanC := netip.MustParseAddr("192.0.2.100")
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	release(t, dir, func() {
		r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA})
		r.h.call(hookCall{Tunnel: "other", Reason: "up", Local: wanA})
		if run := r.next(); run.Path != filepath.Join(other, "hook.sh") {
			t.Errorf("while he's hook runs, %s ran, not other's", run.Path)
		}
		r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanC, Remote: peerB, OldLocal: wanB, OldRemote: peerA})
	})
	for range 2 {
		if run := r.next(); run.Path != path || run.Status != "exit status 0" {
			t.Errorf("run = %+v", run)
		}
	}
	r.h.stop(time.Minute) // waits for runs under way: a third would be one
	if extra := len(r.ran); extra != 0 {
		t.Errorf("%d more runs, want 2 in all", extra)
	}
	want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.100", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
		"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.3", "TUNNELD_TUNNEL=he"}
	if diff := cmp.Diff(want, hookEnv(t, dir, 2)); diff != "" {
		t.Errorf("the second run's environment (-want +got):\n%s", diff)
	}
}

// TestHookReconfigured: the run after one under way takes the hook of the
// configuration as it is then; none when it was dropped, and the run
// that ends after its hook was dropped is logged but not shown: the
// tunnel's last run is forgotten.
func TestHookReconfigured(t *testing.T) {
	dir, newDir := t.TempDir(), t.TempDir()
	blockNext(t, dir)
	path := script(t, dir, "hook.sh", fmt.Sprintf(blockingScript, dir))
	newPath := script(t, newDir, "hook.sh", fmt.Sprintf(envScript, newDir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path, "moe": path})
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	release(t, dir, func() {
		r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA})
		r.configure(map[string]string{"he": newPath})
		r.h.call(hookCall{Tunnel: "moe", Reason: "up", Local: wanA}) // dropped: no run
	})
	for _, want := range []string{path, newPath} {
		if run := r.next(); run.Path != want {
			t.Errorf("run of %s, want %s", run.Path, want)
		}
	}
	if got := hookEnv(t, newDir, 1); !slices.Contains(got, "TUNNELD_LOCAL=192.0.2.99") {
		t.Errorf("the new hook's environment: %q", got)
	}
	blockNext(t, dir)
	r.configure(map[string]string{"he": path})
	r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanA, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
	release(t, dir, func() {
		r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
		r.configure(nil)
	})
	r.h.stop(time.Minute)
	if runs := r.drain(); len(runs) != 0 {
		t.Errorf("runs shown after the hook was dropped: %+v", runs)
	}
	if got := r.lines(); len(got) != 3 || !strings.Contains(got[2], "reason=moved") {
		t.Errorf("log, want the dropped hook's last run (moved) at the end:\n%s", strings.Join(got, "\n"))
	}
	if diff := cmp.Diff([]string{"moe", "he"}, r.forgot); diff != "" {
		t.Errorf("forgotten (-want +got):\n%s", diff)
	}
}

// TestHookStop: stopping waits for a hook under way for the grace, then
// kills it; no call after it runs one.
func TestHookStop(t *testing.T) {
	dir := t.TempDir()
	blockNext(t, dir)
	path := script(t, dir, "hook.sh", fmt.Sprintf(blockingScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	// The run is under way once it waits on the fifo: it is opened for
	// writing (so that the reader does not see its end) and kept open.
	f, err := os.OpenFile(filepath.Join(dir, "fifo"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA})
	r.h.stop(time.Millisecond)
	if diff := cmp.Diff(HookRun{Path: path, Reason: "up", Status: "killed: the daemon is stopping", Try: 1}, r.next(), cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	r.h.stop(time.Minute)
	if extra := len(r.ran); extra != 0 {
		t.Errorf("%d runs after the stop", extra)
	}
}

// failingScript is envScript that, in its first %[2]d runs, says so and
// exits 3 (a broker's update that failed).
const failingScript = envScript + `if [ $n -le %[2]d ]; then echo "update failed" >&2; exit 3; fi
`

// movedAB is the call for he's move from wanA to wanB.
var movedAB = hookCall{Tunnel: "he", Reason: "moved", Local: wanB, Remote: peerA, OldLocal: wanA, OldRemote: peerA}

// movedEnv is the environment of movedAB.
var movedEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.99", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
	"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=he"}

// TestHookRetry: a run that fails is run again, with the same environment
// (the same change, delivered again), after 30 s, then twice as long
// after each failure up to 10 min, until one works. A tester saw a hook
// that exited 3 after a WAN change never run again, and the broker kept
// sending to the old address.
func TestHookRetry(t *testing.T) {
	failed := func(status string, try int, wait time.Duration) HookRun {
		return HookRun{Reason: "moved", Status: status, Try: try, Retry: hookNow.Add(wait)}
	}
	worked := func(try int) HookRun { return HookRun{Reason: "moved", Status: "exit status 0", Try: try} }
	for _, tt := range []struct {
		name string
		// body is the script, formatted with its directory; "" for a
		// hook that is missing until the first retry is due, when it
		// is envScript.
		body    string
		timeout time.Duration
		want    []HookRun
		// log is the whole log (PATH for the hook's path); nil: not
		// checked.
		log []string
	}{
		{"backoff while it keeps failing", fmt.Sprintf(failingScript, "%[1]s", 100), time.Minute, []HookRun{
			failed("exit status 3", 1, 30*time.Second), failed("exit status 3", 2, time.Minute), failed("exit status 3", 3, 2*time.Minute),
			failed("exit status 3", 4, 4*time.Minute), failed("exit status 3", 5, 8*time.Minute), failed("exit status 3", 6, 10*time.Minute),
			failed("exit status 3", 7, 10*time.Minute)}, nil},
		{"a run that works ends the retries", fmt.Sprintf(failingScript, "%[1]s", 2), time.Minute, []HookRun{
			failed("exit status 3", 1, 30*time.Second), failed("exit status 3", 2, time.Minute), worked(3)}, []string{
			`level=WARN msg="tunnel \"he\": hook PATH: exit status 3" reason=moved took=T retry_in=30s output="run 1 for he\nupdate failed"`,
			`level=WARN msg="tunnel \"he\": hook PATH: exit status 3" reason=moved try=2 took=T retry_in=1m0s output="run 2 for he\nupdate failed"`,
			`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=moved try=3 took=T output="run 3 for he"`}},
		{"killed at the time limit", envScript + "if [ $n -eq 1 ]; then sleep 10; fi\n", 100 * time.Millisecond, []HookRun{
			failed("killed after 100ms", 1, 30*time.Second), worked(2)}, nil},
		{"could not start: missing until the retry", "", time.Minute, []HookRun{
			failed("cannot start: no such file or directory", 1, 30*time.Second), worked(2)}, []string{
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: no such file or directory" reason=moved took=T retry_in=30s`,
			`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=moved try=2 took=T output="run 1 for he"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "hook.sh")
			if tt.body != "" {
				script(t, dir, "hook.sh", fmt.Sprintf(tt.body, dir))
			}
			r := newHookRig(t, tt.timeout, map[string]string{"he": path})
			r.h.call(movedAB)
			var got []HookRun
			for i := range tt.want {
				if i > 0 {
					if tt.body == "" && i == 1 {
						script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
					}
					r.fire()
				}
				run := r.next()
				run.Path, run.At = "", time.Time{}
				got = append(got, run)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("runs (-want +got):\n%s", diff)
			}
			if armed, last := r.armed(), tt.want[len(tt.want)-1]; len(armed) != 0 && last.Retry.IsZero() {
				t.Errorf("a retry armed after the run that worked: %v", armed)
			}
			runs := len(tt.want)
			if tt.body == "" {
				runs-- // the first did not start
			}
			for n := 1; n <= runs; n++ {
				if diff := cmp.Diff(movedEnv, hookEnv(t, dir, n)); diff != "" {
					t.Errorf("run %d's environment (-want +got):\n%s", n, diff)
				}
			}
			if tt.log != nil {
				var want []string
				for _, l := range tt.log {
					want = append(want, strings.Replace(l, "PATH", path, 1))
				}
				if diff := cmp.Diff(want, r.lines()); diff != "" {
					t.Errorf("log (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestHookRetryDropped: the retry of a failed run is dropped when a newer
// run stands for it (a new change, which delivers the failed one's old
// addresses with its new ones), a reload removes or changes the hook, the
// tunnel goes down, or the daemon stops; a timer that fires as it is
// stopped runs nothing. A reload that keeps the hook keeps the retry.
func TestHookRetryDropped(t *testing.T) {
	wanC := netip.MustParseAddr("192.0.2.100")
	cleared := HookRun{Reason: "moved", Status: "exit status 3", Try: 1}
	for _, tt := range []struct {
		name string
		act  func(r *hookRig, dir string)
		// kept: the retry stays armed, and is fired.
		kept bool
		// shown are the runs shown after the failed one; env the
		// environment of a second run (nil: none).
		shown  []HookRun
		env    []string
		log    []string
		forgot []string
	}{
		{"a newer change", func(r *hookRig, _ string) {
			r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanC, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
		}, false, []HookRun{cleared, {Reason: "moved", Status: "exit status 0", Try: 1}},
			[]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.100", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
				"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=he"},
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: a newer run stands for it" reason=moved tries=1`,
				`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=moved took=T output="run 2 for he"`}, nil},
		// A move that waits for its address to settle stands for it
		// too: a retry due while it waited ran with the old address
		// (a tester's broker was told it).
		{"a move waiting to settle", func(r *hookRig, _ string) {
			r.h.mu.Lock()
			r.h.settle = HookSettle
			r.h.mu.Unlock()
			r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanC, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
		}, false, []HookRun{cleared}, nil,
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: a newer run stands for it" reason=moved tries=1`}, nil},
		// A move back, once settled, undoes the failed change: nothing
		// is due, and status is told so (a tester's said the hook
		// failed until the next change).
		{"a move back", func(r *hookRig, _ string) {
			r.h.mu.Lock()
			r.h.settle = HookSettle
			r.h.mu.Unlock()
			r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanA, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
			r.fire()
		}, false, []HookRun{cleared, {Reason: "moved", Status: "exit status 3", Try: 1, MovedBack: true}}, nil,
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: a newer run stands for it" reason=moved tries=1`,
				`level=INFO msg="tunnel \"he\": hook not run: the tunnel moved back to where it was" local=192.0.2.7`}, nil},
		{"a reload removes the hook", func(r *hookRig, _ string) { r.configure(nil) }, false, []HookRun{cleared}, nil,
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: the hook was removed" reason=moved tries=1`}, []string{"he"}},
		{"a reload changes the hook", func(r *hookRig, dir string) {
			r.configure(map[string]string{"he": script(t, dir, "other.sh", "#!/bin/sh\n")})
		}, false, []HookRun{cleared}, nil,
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: the hook was changed" reason=moved tries=1`}, nil},
		{"the tunnel goes down", func(r *hookRig, _ string) { r.h.tunnelsDown([]string{"other", "he"}) }, false, []HookRun{cleared}, nil,
			[]string{`level=INFO msg="tunnel \"he\": hook retry dropped: the tunnel is down" reason=moved tries=1`}, nil},
		{"the daemon stops", func(r *hookRig, _ string) { r.h.stop(time.Minute) }, false, nil, nil, nil, nil},
		{"a reload keeps the hook", func(r *hookRig, dir string) {
			r.configure(map[string]string{"he": filepath.Join(dir, "hook.sh"), "other": "/bin/true"})
			r.h.tunnelsDown([]string{"other"})
		}, true, []HookRun{{Reason: "moved", Status: "exit status 0", Try: 2}}, movedEnv,
			[]string{`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=moved try=2 took=T output="run 2 for he"`}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := script(t, dir, "hook.sh", fmt.Sprintf(failingScript, dir, 1))
			r := newHookRig(t, time.Minute, map[string]string{"he": path})
			r.h.call(movedAB)
			if run := r.next(); run.Retry.IsZero() {
				t.Fatalf("the failed run is not retried: %+v", run)
			}
			before := len(r.lines())
			timer := r.lastTimer()
			tt.act(r, dir)
			if tt.kept {
				r.fire()
			} else {
				r.h.mu.Lock()
				stopped := timer.stopped
				r.h.mu.Unlock()
				if !stopped {
					t.Error("the retry's timer was not stopped")
				}
				timer.f() // fired as it was stopped
			}
			r.h.stop(time.Minute) // waits for the runs under way
			var shown []HookRun
			for _, run := range r.drain() {
				run.Path, run.At = "", time.Time{}
				shown = append(shown, run)
			}
			if diff := cmp.Diff(tt.shown, shown); diff != "" {
				t.Errorf("runs shown (-want +got):\n%s", diff)
			}
			if tt.env != nil {
				if diff := cmp.Diff(tt.env, hookEnv(t, dir, 2)); diff != "" {
					t.Errorf("the second run's environment (-want +got):\n%s", diff)
				}
			} else if _, err := os.Stat(filepath.Join(dir, "env.2")); err == nil {
				t.Error("the hook ran again")
			}
			var want []string
			for _, l := range tt.log {
				want = append(want, strings.Replace(l, "PATH", path, 1))
			}
			if diff := cmp.Diff(want, r.lines()[before:], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.forgot, r.forgot); diff != "" {
				t.Errorf("forgotten (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookFailsWhileBusy: a run that fails while something happens to its
// tunnel arms no retry: a call due after it delivers its change (with the
// failed one's old addresses), a tunnel that went down is run again when
// it comes up, a changed hook runs for the reload.
func TestHookFailsWhileBusy(t *testing.T) {
	wanC := netip.MustParseAddr("192.0.2.100")
	for _, tt := range []struct {
		name string
		act  func(r *hookRig, dir string)
		// env is the environment of the second run (nil: none).
		env []string
	}{
		{"a call due after it", func(r *hookRig, _ string) {
			r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: wanC, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
		}, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.100", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
			"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=he"}},
		{"the tunnel went down", func(r *hookRig, _ string) { r.h.tunnelsDown([]string{"he"}) }, nil},
		{"the hook changed", func(r *hookRig, dir string) {
			r.configure(map[string]string{"he": script(t, dir, "other.sh", "#!/bin/sh\n")})
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			blockNext(t, dir)
			path := script(t, dir, "hook.sh", fmt.Sprintf(blockingScript+"if [ $n -eq 1 ]; then exit 3; fi\n", dir))
			r := newHookRig(t, time.Minute, map[string]string{"he": path})
			r.h.call(movedAB)
			release(t, dir, func() { tt.act(r, dir) })
			if run := r.next(); run.Status != "exit status 3" || !run.Retry.IsZero() {
				t.Errorf("the failed run: %+v, want exit status 3 and no retry", run)
			}
			r.h.stop(time.Minute)
			if armed := r.armed(); len(armed) != 0 {
				t.Errorf("retries armed: %v", armed)
			}
			if tt.env != nil {
				if diff := cmp.Diff(tt.env, hookEnv(t, dir, 2)); diff != "" {
					t.Errorf("the second run's environment (-want +got):\n%s", diff)
				}
			} else if _, err := os.Stat(filepath.Join(dir, "env.2")); err == nil {
				t.Error("the hook ran again")
			}
		})
	}
}

// hookConfig is baseConfig with a hook on moe.
func hookConfig(path string) string {
	return strings.Replace(baseConfig, `address = "10.0.0.1/30"`, `address = "10.0.0.1/30"`+"\nhook = \""+path+"\"", 1)
}

// waitRuns waits until the hook script in dir has run n times.
func waitRuns(t *testing.T, dir string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "count"))
		if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); got >= n {
			if got > n {
				t.Fatalf("the hook ran %d times, want %d", got, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook did not run %d times within 10s (%q)", n, b)
		}
	}
}

// retrySet stands in a HookRun a waitHookFact wants for any time of a
// retry.
var retrySet = time.Unix(1, 0)

// waitHookFact waits until the daemon's facts show want as moe's last
// hook run (without its time; any retry time as retrySet).
func waitHookFact(t *testing.T, d *Daemon, want HookRun) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got := d.Facts().Hooks["moe"]
		got.At = time.Time{}
		if !got.Retry.IsZero() {
			got.Retry = retrySet
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("moe's last hook run is %+v, want %+v", got, want)
		}
	}
}

// TestDaemonRunsHook: the daemon runs a tunnel's hook when it created
// it, and when the tunnel follows a new WAN address, by a converge or
// the short way.
func TestDaemonRunsHook(t *testing.T) {
	for _, tt := range []struct {
		name     string
		debounce time.Duration
		// follow: the hint names wan, which the tunnel follows.
		follow bool
	}{
		{"converge", time.Millisecond, false},
		// The debounce of an hour leaves it to the short way.
		{"short way", time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
			h := startWith(t, hookConfig(path), nil, tt.debounce)
			defer h.stop()
			waitRuns(t, dir, 1)
			want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.7", "TUNNELD_REASON=up", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}
			if diff := cmp.Diff(want, hookEnv(t, dir, 1)); diff != "" {
				t.Errorf("at start, the environment (-want +got):\n%s", diff)
			}
			waitHookFact(t, h.d, HookRun{Path: path, Reason: "up", Status: "exit status 0", Try: 1})
			h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.99/24"))
			ev := watch.Event{Kind: watch.Addr}
			if tt.follow {
				ev.Index = h.k.Devices["wan"].Index
			}
			h.events <- ev
			waitRuns(t, dir, 2)
			want = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.99", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
				"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}
			if diff := cmp.Diff(want, hookEnv(t, dir, 2)); diff != "" {
				t.Errorf("after the move, the environment (-want +got):\n%s", diff)
			}
			waitHookFact(t, h.d, HookRun{Path: path, Reason: "moved", Status: "exit status 0", Try: 1})
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			// Removing the tunnel runs no hook.
			if b, _ := os.ReadFile(filepath.Join(dir, "count")); strings.TrimSpace(string(b)) != "2" {
				t.Errorf("the hook ran %s times, want 2", b)
			}
		})
	}
}

// TestDaemonRunsHookAtStart: a daemon that starts with the tunnel in
// place runs its hook once: "start", or "moved" when its first converge
// moves it (the WAN address changed while no daemon ran).
func TestDaemonRunsHookAtStart(t *testing.T) {
	for _, tt := range []struct {
		name string
		wan  string
		want []string
	}{
		{"unchanged", "", []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.7", "TUNNELD_REASON=start", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}},
		{"moved meanwhile", "192.0.2.99/24", []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.99", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
			"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := strings.Replace(hookConfig(script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))), "ip_forward = true", "ip_forward = true\nkeep_on_exit = true", 1)
			h := start(t, cfg)
			waitRuns(t, dir, 1)
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			if tt.wan != "" {
				h.k.SetAddrs("wan", netip.MustParsePrefix(tt.wan))
			}
			c, err := config.Parse("t.toml", []byte(cfg))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- New(Deps{Kernel: h.k, Config: c, Resolver: h.res, ResolveFloor: time.Millisecond}).Run(ctx)
			}()
			defer func() {
				cancel()
				<-done
			}()
			waitRuns(t, dir, 2)
			if diff := cmp.Diff(tt.want, hookEnv(t, dir, 2)); diff != "" {
				t.Errorf("the environment (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDaemonRunsHookOnReload: a reload that gives an up tunnel a hook, or
// another one, runs it ("reload": it has not told the broker yet); a
// reload that leaves the hook as it was runs none.
func TestDaemonRunsHookOnReload(t *testing.T) {
	h := start(t, baseConfig)
	defer h.stop()
	reload := func(cfg string) {
		t.Helper()
		h.mu.Lock()
		h.cfg = cfg
		h.mu.Unlock()
		h.reload <- syscall.SIGHUP
		h.next()
	}
	dir, other := t.TempDir(), t.TempDir()
	first, second := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir)), script(t, other, "hook.sh", fmt.Sprintf(envScript, other))
	reload(hookConfig(first))
	waitRuns(t, dir, 1)
	want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.7", "TUNNELD_REASON=reload", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}
	if diff := cmp.Diff(want, hookEnv(t, dir, 1)); diff != "" {
		t.Errorf("the environment (-want +got):\n%s", diff)
	}
	reload(hookConfig(first)) // the same hook: no run
	reload(hookConfig(second))
	// The runs of one tunnel's hook come one after the other: a run of
	// the first hook for the unchanged reload would have come before.
	waitRuns(t, other, 1)
	waitRuns(t, dir, 1)
}

// retriesDue is how many retries of failed hook runs d has armed.
func retriesDue(d *Daemon) int {
	d.hooks.mu.Lock()
	defer d.hooks.mu.Unlock()
	return len(d.hooks.retries)
}

// TestDaemonHookRetry: the daemon runs a hook that failed again, shows
// when in its facts, and drops the retry when a move stands for it, a
// reload removes the hook or the tunnel goes down.
func TestDaemonHookRetry(t *testing.T) {
	upEnv := func(local string) []string {
		return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=" + local, "TUNNELD_REASON=up", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=moe"}
	}
	for _, tt := range []struct {
		name  string
		retry time.Duration
		// fails is how many runs fail before one works.
		fails int
		// act does what drops the retry (nil: the retry runs).
		act func(t *testing.T, h *harness, path string)
		// runs is how many runs there are in all, env the
		// environment of the last, want the last run shown (nil:
		// none: forgotten).
		runs int
		env  []string
		want *HookRun
	}{
		{"retried, and it works", 20 * time.Millisecond, 1, nil, 2, upEnv("192.0.2.7"),
			&HookRun{Reason: "up", Status: "exit status 0", Try: 2}},
		{"a move stands for it", time.Hour, 1, func(t *testing.T, h *harness, _ string) {
			h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.99/24"))
			h.events <- watch.Event{Kind: watch.Addr}
		}, 2, upEnv("192.0.2.99"), &HookRun{Reason: "up", Status: "exit status 0", Try: 1}},
		{"a reload removes the hook", time.Hour, 100, func(t *testing.T, h *harness, _ string) {
			h.mu.Lock()
			h.cfg = baseConfig
			h.mu.Unlock()
			h.reload <- syscall.SIGHUP
		}, 1, upEnv("192.0.2.7"), nil},
		{"the tunnel goes down", time.Hour, 100, func(t *testing.T, h *harness, _ string) {
			h.k.SetAddrs("wan")
			h.events <- watch.Event{Kind: watch.Addr}
		}, 1, upEnv("192.0.2.7"), &HookRun{Reason: "up", Status: "exit status 3", Try: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := script(t, dir, "hook.sh", fmt.Sprintf(failingScript, dir, tt.fails))
			h := startOpts(t, hookConfig(path), opts{hookRetry: tt.retry})
			defer h.stop()
			if tt.act != nil {
				waitHookFact(t, h.d, HookRun{Path: path, Reason: "up", Status: "exit status 3", Try: 1, Retry: retrySet})
				if n := retriesDue(h.d); n != 1 {
					t.Fatalf("%d retries due, want 1", n)
				}
				tt.act(t, h, path)
			}
			waitRuns(t, dir, tt.runs)
			if tt.want == nil {
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					if _, ok := h.d.Facts().Hooks["moe"]; !ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("moe's last hook run is still shown: %+v", h.d.Facts().Hooks["moe"])
					}
				}
			} else {
				want := *tt.want
				want.Path = path
				waitHookFact(t, h.d, want)
			}
			if n := retriesDue(h.d); n != 0 {
				t.Errorf("%d retries due, want none", n)
			}
			if diff := cmp.Diff(tt.env, hookEnv(t, dir, tt.runs)); diff != "" {
				t.Errorf("the environment of the last run (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHookRunningShown: a run that starts is shown as running, since
// when and for what, with the run before it (a failure, its retry
// dropped: this run stands for it); its end shows it as it ended. A
// tester saw "its hook failed" for all the 30 s of the run standing for
// it.
func TestHookRunningShown(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", fmt.Sprintf(failingScript, dir, 1))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.call(movedAB)
	first := <-r.started
	if first.Running != hookNow || first.RunningFor != "moved" || first.Status != "" || first.Path != path {
		t.Errorf("the first run's start: %+v, want running since %v for moved, no run before", first, hookNow)
	}
	if failed := r.next(); failed.Status != "exit status 3" || failed.Retry.IsZero() || !failed.Running.IsZero() {
		t.Fatalf("the failed run: %+v", failed)
	}
	r.h.call(hookCall{Tunnel: "he", Reason: "moved", Local: netip.MustParseAddr("192.0.2.100"), Remote: peerA, OldLocal: wanB, OldRemote: peerA})
	if dropped := r.next(); dropped.Status != "exit status 3" || !dropped.Retry.IsZero() {
		t.Errorf("the failed run, its retry dropped: %+v", dropped)
	}
	second := <-r.started
	if second.Running != hookNow || second.Status != "exit status 3" || !second.Retry.IsZero() {
		t.Errorf("the second run's start: %+v, want running, with the failure before it and no retry", second)
	}
	if ended := r.next(); ended.Status != "exit status 0" || !ended.Running.IsZero() {
		t.Errorf("the second run's end: %+v", ended)
	}
}

// TestStopLogsHookFirst: a hook still running when the daemon stops is
// killed after its grace, and its end logged before the last line,
// "stopped; everything tunneld owned is removed" (a tester saw it after).
func TestStopLogsHookFirst(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", "#!/bin/sh\necho 1 >"+filepath.Join(dir, "count")+"\nexec sleep 30\n")
	var log syncbuf.Buffer
	h := startLogging(t, hookConfig(path), logfmt.New(&log, logfmt.Info))
	waitRuns(t, dir, 1)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	hook, stopped := strings.Index(out, "hook "+path+": killed"), strings.Index(out, "stopped; everything tunneld owned is removed")
	if hook < 0 || stopped < 0 || hook > stopped {
		t.Errorf("the hook's end at %d, the last line at %d; the log:\n%s", hook, stopped, out)
	}
}

// TestHookSettle: a move's run waits HookSettle; a move to another
// address meanwhile (a renew that left the modem's access address alone
// on the WAN for a moment, then the new lease) joins it, so the broker is
// told the last address once, with the address from before the first
// move as the old one (a tester's broker was told the modem's address at
// every renew). A tunnel that goes down meanwhile drops the wait: the up
// that brings it back runs the hook, once it too has waited HookSettle.
func TestHookSettle(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.settle = HookSettle
	modem := netip.MustParseAddr("192.168.100.2")
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: modem, Remote: peerA, OldLocal: wanA, OldRemote: peerA})
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: wanB, Remote: peerA, OldLocal: modem, OldRemote: peerA})
	if got := r.armed(); !cmp.Equal(got, []time.Duration{HookSettle}) {
		t.Fatalf("timers armed %v, want one of HookSettle", got)
	}
	// The first wait's timer, stopped by the second move, may have
	// fired just before: it finds itself replaced and runs nothing.
	r.mu.Lock()
	first := r.timers[0]
	r.mu.Unlock()
	first.f()
	r.h.mu.Lock()
	_, waits := r.h.settling["he"]
	r.h.mu.Unlock()
	if !waits {
		t.Fatalf("the first wait's timer delivered the call before the address settled")
	}
	r.fire()
	r.next()
	if diff := cmp.Diff(movedEnv, hookEnv(t, dir, 1)); diff != "" {
		t.Errorf("the one run's environment (-want +got):\n%s", diff)
	}
	// Away and back while it waits: no run.
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: modem, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: wanB, Remote: peerA, OldLocal: modem, OldRemote: peerA})
	r.fire()
	if runs := r.drain(); len(runs) != 0 || !strings.Contains(r.log.String(), `hook not run: the tunnel moved back to where it was" local=192.0.2.99`) {
		t.Errorf("away and back: runs %v; log:\n%s", runs, r.log.String())
	}
	// Down while it waits: no run.
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: wanA, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
	r.h.tunnelsDown([]string{"he"})
	if got := r.armed(); len(got) != 0 {
		t.Errorf("timers armed %v after the tunnel went down, want none", got)
	}
	// Coming up again waits too, and going down again meanwhile drops
	// the wait: a tester's bound tunnel, its WAN's cable flapping, ran
	// its hook at every flap.
	r.h.call(hookCall{Tunnel: "he", Reason: hookUp, Local: wanA, Remote: peerA})
	if got := r.armed(); !cmp.Equal(got, []time.Duration{HookSettle}) {
		t.Fatalf("timers armed %v after an up that follows a down, want one of HookSettle", got)
	}
	r.h.tunnelsDown([]string{"he"})
	if got := r.armed(); len(got) != 0 {
		t.Errorf("timers armed %v after the tunnel went down again, want none", got)
	}
	r.h.call(hookCall{Tunnel: "he", Reason: hookUp, Local: wanA, Remote: peerA})
	r.h.tunnelsDown(nil) // the converge that set it up left it up
	r.fire()
	r.next()
	if got := hookEnv(t, dir, 2); !slices.Contains(got, "TUNNELD_REASON=up") {
		t.Errorf("the up's run: %v", got)
	}
	if runs := r.drain(); len(runs) != 0 {
		t.Errorf("runs after the one up's: %v", runs)
	}
	// An up of a tunnel the last converge did not leave down (made
	// anew) is not delayed.
	r.h.call(hookCall{Tunnel: "he", Reason: hookUp, Local: wanB, Remote: peerA})
	if got := r.armed(); len(got) != 0 {
		t.Errorf("timers armed %v for an up that follows no down, want none", got)
	}
	r.next()
	if got := hookEnv(t, dir, 3); !slices.Contains(got, "TUNNELD_REASON=up") {
		t.Errorf("the second up's run: %v", got)
	}
}

// settling makes r's moves wait HookSettle, on a clock that tick, which
// it returns, moves on by HookSettle as it fires the one wait armed.
func (r *hookRig) settling(t *testing.T) (tick func()) {
	r.h.settle = HookSettle
	var mu sync.Mutex
	now := hookNow
	r.h.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	return func() {
		t.Helper()
		mu.Lock()
		now = now.Add(HookSettle)
		mu.Unlock()
		if d := r.fire(); d != HookSettle {
			t.Fatalf("fired a wait of %v, want HookSettle", d)
		}
	}
}

// TestHookSettleWhileUnsettled: a move's call waits on past HookSettle
// while the last converge could only guess the tunnel's local address
// (the renew tester's WAN, its default route back 3 s after its address:
// the broker was told the modem's address the tunnel had meanwhile),
// and runs once the tunnel is settled, with the address from before the
// first move as the old one; past HookSettleMax it runs with what there
// is, and says so.
func TestHookSettleWhileUnsettled(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	tick := r.settling(t)
	const why = "no route to the remote decides its local address yet"
	modem := netip.MustParseAddr("192.168.100.2")
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: modem, Remote: peerA, OldLocal: wanA, OldRemote: peerA})
	r.h.tunnelsUnsettled(map[string]string{"he": why})
	tick()
	tick()
	if runs := r.drain(); len(runs) != 0 || len(r.armed()) != 1 {
		t.Fatalf("4 s after a move to a guessed address: runs %v, timers %v; want none, and a wait on", runs, r.armed())
	}
	if got := strings.Count(r.log.String(), `tunnel \"he\": hook waits: `+why); got != 1 {
		t.Errorf("the wait is logged %d times, want once:\n%s", got, r.log.String())
	}
	// The default route back: the converge moves the tunnel to the new
	// address, which it no longer guesses.
	r.h.tunnelsUnsettled(nil)
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: wanB, Remote: peerA, OldLocal: modem, OldRemote: peerA})
	tick()
	r.next()
	if diff := cmp.Diff(movedEnv, hookEnv(t, dir, 1)); diff != "" {
		t.Errorf("the one run's environment (-want +got):\n%s", diff)
	}
	// Unsettled for good: the hook runs at HookSettleMax, with a warning.
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: modem, Remote: peerA, OldLocal: wanB, OldRemote: peerA})
	r.h.tunnelsUnsettled(map[string]string{"he": why})
	for range HookSettleMax/HookSettle - 1 {
		tick()
	}
	if runs := r.drain(); len(runs) != 0 {
		t.Fatalf("before HookSettleMax: runs %v", runs)
	}
	tick()
	r.next()
	if got := hookEnv(t, dir, 2); !slices.Contains(got, "TUNNELD_LOCAL=192.168.100.2") {
		t.Errorf("the run at HookSettleMax: %v", got)
	}
	if !strings.Contains(r.log.String(), `tunnel \"he\": hook runs although `+why) {
		t.Errorf("no warning that the hook ran unsettled:\n%s", r.log.String())
	}
}

// TestHookInheritedDescriptors: a descriptor the daemon inherited without
// close-on-exec (a shell's `exec 7>file` before `tunneld run`) is not
// open in a hook; a tester's hook had it.
func TestHookInheritedDescriptors(t *testing.T) {
	dir := t.TempDir()
	fd, err := syscall.Open(filepath.Join(dir, "leak"), syscall.O_CREAT|syscall.O_WRONLY, 0o600) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	inheritedOnce = sync.Once{} // another test's hook may have run first
	path := script(t, dir, "hook.sh", fmt.Sprintf("#!/bin/sh\nls /proc/$$/fd >%s/fds\n", dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanB})
	if run := r.next(); run.Status != HookWorked {
		t.Fatalf("hook: %+v", run)
	}
	b, err := os.ReadFile(filepath.Join(dir, "fds"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(strings.Fields(string(b)), strconv.Itoa(fd)) {
		t.Errorf("descriptor %d is open in the hook: %s", fd, strings.Fields(string(b)))
	}
}

// TestHookSettleToULA: a move from a global IPv6 address to a unique
// local one, with a global remote, waits past HookSettle as an unsettled
// tunnel's does: a tester's ISP renumbered, the old prefix went 4 s
// before the new one came, and the broker was told the upstream router's
// ULA, then told it as the old address. The new prefix's move joins the
// wait, and one run tells the broker old → new. A WAN with a ULA alone
// runs at HookSettleMax.
func TestHookSettleToULA(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hook.sh", fmt.Sprintf(envScript, dir))
	r := newHookRig(t, time.Minute, map[string]string{"he": path})
	tick := r.settling(t)
	old, ula, renumbered := netip.MustParseAddr("2001:db8:a::2"), netip.MustParseAddr("fd00:1::2"), netip.MustParseAddr("2001:db8:c::2")
	remote := netip.MustParseAddr("2001:db8:b::1")
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: ula, Remote: remote, OldLocal: old, OldRemote: remote})
	tick()
	tick()
	if runs := r.drain(); len(runs) != 0 {
		t.Fatalf("4 s after a move to the ULA: runs %v, want none", runs)
	}
	if !strings.Contains(r.log.String(), `hook waits: it moved from 2001:db8:a::2 to the unique local address fd00:1::2: a new prefix may come`) {
		t.Errorf("the wait is not logged:\n%s", r.log.String())
	}
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: renumbered, Remote: remote, OldLocal: ula, OldRemote: remote})
	tick()
	r.next()
	env := hookEnv(t, dir, 1)
	for _, want := range []string{"TUNNELD_LOCAL=2001:db8:c::2", "TUNNELD_OLD_LOCAL=2001:db8:a::2"} {
		if !slices.Contains(env, want) {
			t.Errorf("the one run's environment %v: want %s", env, want)
		}
	}
	// A ULA alone: the run comes at HookSettleMax.
	r.h.call(hookCall{Tunnel: "he", Reason: hookMoved, Local: ula, Remote: remote, OldLocal: renumbered, OldRemote: remote})
	for range HookSettleMax / HookSettle {
		tick()
	}
	r.next()
	if env := hookEnv(t, dir, 2); !slices.Contains(env, "TUNNELD_LOCAL=fd00:1::2") {
		t.Errorf("the run at HookSettleMax: %v", env)
	}
}
