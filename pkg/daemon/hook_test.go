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

// hookRig is a hooks runner whose runs are told on a channel and whose
// log is kept.
type hookRig struct {
	t   *testing.T
	h   *hooks
	log syncbuf.Buffer
	ran chan HookRun
}

func newHookRig(t *testing.T, timeout time.Duration, tunnels map[string]string) *hookRig {
	r := &hookRig{t: t, ran: make(chan HookRun, 10)}
	r.h = newHooks(logfmt.New(&r.log, logfmt.Info), time.Now, timeout, func(tunnel string, run HookRun) { r.ran <- run })
	r.configure(tunnels)
	t.Cleanup(func() { r.h.stop(0) })
	return r
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
	if diff := cmp.Diff(HookRun{Path: path, Reason: "moved", Status: "exit status 0"}, run, cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TUNNELD_LOCAL=192.0.2.99", "TUNNELD_OLD_LOCAL=192.0.2.7", "TUNNELD_OLD_REMOTE=198.51.100.2",
		"TUNNELD_REASON=moved", "TUNNELD_REMOTE=198.51.100.2", "TUNNELD_TUNNEL=he"}
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
// level with its output, bounded.
func TestHookFails(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, body string
		want       HookRun
		log        string
	}{
		{"exit status", "#!/bin/sh\necho 'update failed: badauth' >&2\nexit 3\n",
			HookRun{Reason: "up", Status: "exit status 3"},
			`level=WARN msg="tunnel \"he\": hook PATH: exit status 3" reason=up took=T output="update failed: badauth"`},
		{"killed by a signal", "#!/bin/sh\nkill -TERM $$\n",
			HookRun{Reason: "up", Status: "signal: terminated"},
			`level=WARN msg="tunnel \"he\": hook PATH: signal: terminated" reason=up took=T`},
		{"output bounded", "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' x\n",
			HookRun{Reason: "up", Status: "exit status 0"},
			`level=INFO msg="tunnel \"he\": hook PATH: exit status 0" reason=up took=T output="` + strings.Repeat("x", 4096) + `\n(904 more bytes)"`},
		{"not executable", "",
			HookRun{Reason: "up", Status: "cannot start: permission denied"},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: permission denied" reason=up took=T`},
		{"missing", "-",
			HookRun{Reason: "up", Status: "cannot start: no such file or directory"},
			`level=WARN msg="tunnel \"he\": hook PATH: cannot start: no such file or directory" reason=up took=T`},
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

// TestHookTimeout: a hook still running after the timeout is killed with
// its process group, a child it started included.
func TestHookTimeout(t *testing.T) {
	dir := t.TempDir()
	path := script(t, dir, "hang.sh", fmt.Sprintf("#!/bin/sh\nsleep 600 &\necho $! >%s/child\necho waiting\nwait\n", dir))
	r := newHookRig(t, 50*time.Millisecond, map[string]string{"he": path})
	r.upOnce(t, HookRun{Path: path, Reason: "up", Status: "killed after 50ms"},
		fmt.Sprintf(`level=WARN msg="tunnel \"he\": hook %s: killed after 50ms" reason=up took=T output=waiting`, path))
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
	r.upOnce(t, HookRun{Path: path, Reason: "up", Status: "exit status 0"},
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
// configuration as it is then; none when it was dropped.
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
	r.next()
	r.h.stop(time.Minute)
	if extra := len(r.ran); extra != 0 {
		t.Errorf("%d runs after the hook was dropped", extra)
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
	if diff := cmp.Diff(HookRun{Path: path, Reason: "up", Status: "killed: the daemon is stopping"}, r.next(), cmpopts.IgnoreFields(HookRun{}, "At")); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	r.h.call(hookCall{Tunnel: "he", Reason: "up", Local: wanA, Remote: peerA})
	r.h.stop(time.Minute)
	if extra := len(r.ran); extra != 0 {
		t.Errorf("%d runs after the stop", extra)
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

// waitHookFact waits until the daemon's facts show want as moe's last
// hook run (without its time).
func waitHookFact(t *testing.T, d *Daemon, want HookRun) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got := d.Facts().Hooks["moe"]
		got.At = time.Time{}
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
			waitHookFact(t, h.d, HookRun{Path: path, Reason: "up", Status: "exit status 0"})
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
			waitHookFact(t, h.d, HookRun{Path: path, Reason: "moved", Status: "exit status 0"})
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
		h.reload <- struct{}{}
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
