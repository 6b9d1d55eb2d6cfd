package bench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// env reads the benchmark settings.
type settings struct {
	bin  string // tunneld
	ip   string // Debian's iproute2 ip, "" if absent
	ns   []int
	runs int
	arch string
}

func setup(t *testing.T) settings {
	t.Helper()
	if os.Getenv("TUNNELD_BENCH") != "1" {
		t.Skip("benchmarks run with TUNNELD_BENCH=1 (make bench)")
	}
	netnstest.Gate(t)
	startClock()
	s := settings{bin: os.Getenv("TUNNELD_BIN"), ip: os.Getenv("TUNNELD_BENCH_IP"), runs: 5, arch: os.Getenv("TUNNELD_BENCH_ARCH")}
	if s.bin == "" {
		t.Skip("set TUNNELD_BIN")
	}
	for _, f := range strings.Fields(os.Getenv("TUNNELD_BENCH_N")) {
		n, _ := strconv.Atoi(f)
		s.ns = append(s.ns, n)
	}
	if len(s.ns) == 0 {
		s.ns = []int{10, 100, 1000}
	}
	if r, err := strconv.Atoi(os.Getenv("TUNNELD_BENCH_RUNS")); err == nil {
		s.runs = r
	}
	return s
}

// result is one measured figure, printed as a BENCH line.
type result struct {
	Arch   string    `json:"arch"`
	Bench  string    `json:"bench"`
	Impl   string    `json:"impl"`
	N      int       `json:"n,omitempty"`
	Runs   []float64 `json:"runs_ms,omitempty"`
	Median float64   `json:"median_ms,omitempty"`
	Value  float64   `json:"value"`
	Unit   string    `json:"unit,omitempty"`
	Note   string    `json:"note,omitempty"`
}

func report(t *testing.T, r result) {
	t.Helper()
	if lost := clockLost(); lost > maxClockLoss {
		t.Fatalf("the guest's clock fell %s behind its RTC during %s: no figure of it is to be trusted", lost.Round(time.Second), t.Name())
	}
	if len(r.Runs) > 0 {
		r.Median = median(r.Runs)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("BENCH %s\n", b)
}

// rtcPath is the guest's real-time clock, in whole seconds since 1970.
const rtcPath = "/sys/class/rtc/rtc0/since_epoch"

// clockStart is when the running benchmark started, by the monotonic
// clock and by the RTC (rtc < 0: no RTC, as on a host without one).
var clockStart struct {
	mono time.Time
	rtc  int64
}

// startClock notes the monotonic clock and the RTC as a benchmark starts.
func startClock() {
	clockStart.mono, clockStart.rtc = time.Now(), rtcSeconds()
}

// rtcSeconds reads the RTC, or -1 where there is none.
func rtcSeconds() int64 {
	b, err := os.ReadFile(rtcPath)
	if err != nil {
		return -1
	}
	s, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return s
}

// clockLost is how far the monotonic clock fell behind the RTC since the
// benchmark started. The mipsel guest's clock can lose a whole period
// of its 32-bit counter, 25.77 s, with no timer interrupt meanwhile, more
// often on a loaded host (see BENCHMARKS.md); a measurement across the
// loss may come out below zero, or as a plausible figure that is wrong.
func clockLost() time.Duration {
	if clockStart.rtc < 0 {
		return 0
	}
	rtc := rtcSeconds()
	if rtc < 0 {
		return 0
	}
	return time.Duration(rtc-clockStart.rtc)*time.Second - time.Since(clockStart.mono)
}

// maxClockLoss is the largest gap between the monotonic clock and the
// RTC a benchmark accepts: the RTC counts whole seconds, and the guest's
// counter may be calibrated a little off; a lost counter period is 25 s.
const maxClockLoss = 10 * time.Second

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// run executes a command inside ns and returns how long it took.
func run(t *testing.T, ns *netnstest.NS, name string, args ...string) (time.Duration, string) {
	t.Helper()
	var took time.Duration
	var out []byte
	err := ns.Do(func() error {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+t.TempDir())
		start := time.Now()
		var err error
		out, err = cmd.CombinedOutput()
		took = time.Since(start)
		return err
	})
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out)))
	}
	if took < 0 {
		// The guest's clock went backwards (see clockLost).
		t.Fatalf("%s %s took %s: the guest's clock went backwards", name, strings.Join(args, " "), took)
	}
	return took, string(out)
}

func tail(s string) string {
	l := strings.Split(s, "\n")
	if len(l) > 20 {
		l = l[len(l)-20:]
	}
	return strings.Join(l, "\n")
}

// underlay makes a fresh namespace with eth0 (192.0.0.1/16) up, once the
// guest is quiet (settle): what the previous measurement left to the
// kernel, such as dismantling its namespace, is done by then.
func underlay(t *testing.T) *netnstest.NS {
	t.Helper()
	settle(t)
	ns := netnstest.NewNS(t)
	if err := ns.Do(func() error {
		if err := netnstest.Veth("eth0", "peer0", nil); err != nil {
			return err
		}
		for _, d := range []string{"eth0", "peer0"} {
			if err := netnstest.LinkUp(d); err != nil {
				return err
			}
		}
		return netnstest.AddAddr("eth0", mustPrefix("192.0.0.1/16"))
	}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// release removes what the benchmark's configuration cfg names from ns
// with `tunneld down` (tunnels made by `ip` too: they carry the configured
// names), then lets ns go. The kernel dismantles a namespace it has been
// let go of in the background, a thousand tunnels in it the longest; the
// next underlay waits for the work to end.
func release(t *testing.T, ns *netnstest.NS, bin, cfg string) {
	t.Helper()
	run(t, ns, bin, "down", "-c", cfg)
	ns.Close()
}

// settle waits until the CPUs have been idle for at least 90 % of each of
// five 200 ms windows in a row (from /proc/stat), for two minutes at the
// most: a namespace's dismantling pauses between bursts of work.
func settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	busy0, all0 := systemTicks(t)
	for quiet := 0; quiet < 5; {
		time.Sleep(200 * time.Millisecond)
		busy1, all1 := systemTicks(t)
		if all1 > all0 && 10*(busy1-busy0) <= all1-all0 {
			quiet++
		} else {
			quiet = 0
		}
		busy0, all0 = busy1, all1
		if time.Now().After(deadline) {
			t.Fatal("the guest's CPUs did not become idle within two minutes")
		}
	}
}

// systemTicks reads the clock ticks all CPUs spent busy and in all, from
// the first line of /proc/stat: user to steal (guest time is counted in
// user already), idle and iowait as not busy.
func systemTicks(t *testing.T) (busy, all int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		t.Fatalf("/proc/stat begins %q", line)
	}
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q: %v", line, err)
		}
		all += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, all
}

// tunnel i's parameters, the same for every implementation.
type tun struct {
	name, remote, addr, dst string
	table, prio             int
}

func tunnels(n int) []tun {
	// busybox's ip takes table numbers up to 255 only: small runs stay there.
	base := 1000
	if n <= 150 {
		base = 100
	}
	out := make([]tun, n)
	for i := range out {
		hi, lo := (i+1)/256, (i+1)%256
		out[i] = tun{
			name:   fmt.Sprintf("t%d", i),
			remote: fmt.Sprintf("198.18.%d.%d", hi, lo),
			addr:   fmt.Sprintf("10.100.%d.%d", hi, lo),
			dst:    fmt.Sprintf("10.%d.%d.0/24", 200+hi, lo),
			table:  base + i,
			prio:   20000 + i,
		}
	}
	return out
}

// writeConfig writes tunneld's configuration for n tunnels, with extra
// lines in its global section.
func writeConfig(t *testing.T, n int, firewall bool, global ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nfirewall = %t\nrule_priority_max = 29999\n", firewall)
	for _, l := range global {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n[tables]\n")
	for _, x := range tunnels(n) {
		fmt.Fprintf(&b, "tab%d = %d\n", x.table, x.table)
	}
	for _, x := range tunnels(n) {
		fmt.Fprintf(&b, "\n[tunnel.%s]\nmode = \"ipip\"\nlocal = \"192.0.0.1\"\nremote = %q\naddress = \"%s/32\"\n", x.name, x.remote, x.addr)
		fmt.Fprintf(&b, "[[route]]\nto = %q\ndev = %q\ntable = \"tab%d\"\n", x.dst, x.name, x.table)
		fmt.Fprintf(&b, "[[rule]]\nfrom = %q\ntable = \"tab%d\"\npriority = %d\n", x.addr, x.table, x.prio)
	}
	p := filepath.Join(t.TempDir(), "bench.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ipOps are the same operations as iproute2 commands (without "ip").
// busybox's ip knows fewer words: `ip tunnel add` instead of `ip link add
// … type ipip`, and no protocol on routes and rules.
func ipOps(n int, busybox bool) []string {
	var ops []string
	for _, x := range tunnels(n) {
		if busybox {
			ops = append(ops,
				fmt.Sprintf("tunnel add %s mode ipip local 192.0.0.1 remote %s ttl 64", x.name, x.remote),
				fmt.Sprintf("address add %s/32 dev %s", x.addr, x.name),
				fmt.Sprintf("link set %s up", x.name),
				fmt.Sprintf("route add %s dev %s table %d", x.dst, x.name, x.table),
				fmt.Sprintf("rule add from %s table %d prio %d", x.addr, x.table, x.prio))
			continue
		}
		ops = append(ops,
			fmt.Sprintf("link add %s mtu 1480 type ipip local 192.0.0.1 remote %s ttl 64 pmtudisc", x.name, x.remote),
			fmt.Sprintf("address add %s/32 dev %s", x.addr, x.name),
			fmt.Sprintf("link set %s up", x.name),
			fmt.Sprintf("route add %s dev %s table %d proto 116", x.dst, x.name, x.table),
			fmt.Sprintf("rule add from %s lookup %d priority %d protocol 116", x.addr, x.table, x.prio))
	}
	return ops
}

// converge is one of the daemon's converges as its debug log reports it.
type convergeLog struct {
	// short: the short way after an address hint (engine.Endpoints),
	// not a converge.
	short  bool
	reason string
	ops    int
	// took is the whole converge; read its first read, apply its applies,
	// waited the wait after the hint that asked for it (-1: not logged).
	took, read, apply, waited float64 // ms
}

var convergedLine = regexp.MustCompile(`msg=(converged|"followed the address") reason=("[^"]*"|\S+) ops=(\d+) took=(\S+)(?: read=(\S+) apply=(\S+))?(?: waited=(\S+))?`)

// converges reads the converges, and the short ways after address hints,
// from a `tunneld run -log-level debug` log.
func converges(log string) []convergeLog {
	var out []convergeLog
	dur := func(s string) float64 {
		d, err := time.ParseDuration(s)
		if err != nil {
			return -1
		}
		return ms(d)
	}
	for _, m := range convergedLine.FindAllStringSubmatch(log, -1) {
		ops, _ := strconv.Atoi(m[3])
		c := convergeLog{short: m[1] != "converged", reason: strings.Trim(m[2], `"`), ops: ops, took: dur(m[4]), read: dur(m[5]), apply: dur(m[6]), waited: dur(m[7])}
		if c.took >= 0 {
			out = append(out, c)
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// stopper returns a function that stops the daemon cmd runs (SIGTERM, to
// its whole process group if it leads one) and waits for it, once however
// often it is called.
func stopper(cmd *exec.Cmd) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			} else {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			cmd.Wait()
		})
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
