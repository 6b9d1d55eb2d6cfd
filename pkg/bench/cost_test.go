package bench

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestDaemonCost runs `tunneld run` with 100 tunnels (filter on) and reads
// its memory idle, after a reload, after ten and after 1000 flaps of the
// underlay device; and, over an idle minute, its netlink writes, CPU time and
// wake-ups. Go's defaults are used (GOGC=100, no GOMEMLIMIT).
func TestDaemonCost(t *testing.T) {
	s := setup(t)
	idle := 60 * time.Second
	if v, err := strconv.Atoi(os.Getenv("TUNNELD_BENCH_IDLE")); err == nil {
		idle = time.Duration(v) * time.Second
	}
	ns := underlay(t)
	cfg := writeConfig(t, 100, true)
	var cmd *exec.Cmd
	var mon, rt *netlink.Conn
	state := t.TempDir()
	if err := ns.Do(func() (err error) {
		if mon, err = changeMonitor(); err != nil {
			return err
		}
		if rt, err = netlink.Dial(unix.NETLINK_ROUTE, nil); err != nil {
			return err
		}
		level := "warn"
		if l := os.Getenv("TUNNELD_BENCH_LOG"); l != "" {
			level = l
		}
		cmd = exec.Command(s.bin, "run", "-c", cfg, "-log-level", level)
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+state)
		cmd.Stderr = os.Stderr
		return cmd.Start()
	}); err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	defer rt.Close()
	pid := cmd.Process.Pid
	// converged waits until the daemon reports a converge that ended after
	// since, the kernel shows no drift, and the daemon has gone quiet (no
	// CPU time used for a second): a slow guest is still busy long after
	// its first answer.
	converged := func(since time.Time) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			_, out := run(t, ns, s.bin, "status", "--json", "-c", cfg, "-socket", filepath.Join(state, "tunneld.sock"))
			var st struct {
				Drift  []string
				Daemon *struct {
					Converges    int
					LastConverge time.Time
				}
			}
			if json.Unmarshal([]byte(out), &st) == nil && st.Daemon != nil && st.Daemon.Converges > 0 &&
				!st.Daemon.LastConverge.Before(since) && len(st.Drift) == 0 {
				c := cpuTicks(pid)
				time.Sleep(time.Second)
				if cpuTicks(pid) == c {
					return
				}
				continue
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon did not converge:\n%s", tail(out))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	converged(time.Time{})
	report(t, result{Arch: s.arch, Bench: "memory idle, 100 tunnels", Impl: "tunneld run", Value: rssKiB(pid), Unit: "KiB RSS"})

	drain(mon, time.Second)
	cpu0, wake0 := cpuTicks(pid), wakeups(pid)
	writes := 0
	types := map[uint16]int{}
	idleStart := time.Now()
	mon.SetReadDeadline(time.Now().Add(idle))
	for {
		msgs, err := mon.Receive()
		if err != nil {
			break
		}
		writes += len(msgs)
		for _, m := range msgs {
			types[uint16(m.Header.Type)]++
			if writes < 5 && len(m.Data) >= 16 {
				t.Logf("idle notification at +%s: type %d index %d pid %d flags %#x", time.Since(idleStart).Round(time.Millisecond),
					m.Header.Type, binary.NativeEndian.Uint32(m.Data[4:]), m.Header.PID, binary.NativeEndian.Uint32(m.Data[8:]))
			}
		}
	}
	if writes > 0 {
		t.Logf("notifications while idle, by message type: %v", types)
	}
	cpu1, wake1 := cpuTicks(pid), wakeups(pid)
	report(t, result{Arch: s.arch, Bench: "idle netlink writes", Impl: "tunneld run", Value: float64(writes), Unit: "messages", Note: idle.String()})
	report(t, result{Arch: s.arch, Bench: "idle CPU time", Impl: "tunneld run", Value: float64(cpu1-cpu0) * 10, Unit: "ms", Note: idle.String()})
	report(t, result{Arch: s.arch, Bench: "idle wake-ups (context switches)", Impl: "tunneld run", Value: float64(wake1 - wake0), Unit: "switches", Note: idle.String()})

	reload := time.Now()
	cmd.Process.Signal(syscall.SIGHUP)
	converged(reload)
	report(t, result{Arch: s.arch, Bench: "memory after a reload", Impl: "tunneld run", Value: rssKiB(pid), Unit: "KiB RSS"})
	// One reload's figure holds what its peak left in the heap, not yet
	// given back; nine more tell that apart from growth.
	for range 9 {
		reload = time.Now()
		cmd.Process.Signal(syscall.SIGHUP)
		converged(reload)
	}
	report(t, result{Arch: s.arch, Bench: "memory after 10 reloads", Impl: "tunneld run", Value: rssKiB(pid), Unit: "KiB RSS"})

	eth0 := ifindex(t, rt, "eth0")
	flaps := time.Now()
	for range 1000 {
		for _, up := range []uint32{0, unix.IFF_UP} {
			b := make([]byte, 16)
			putLink(b, eth0, up)
			if _, err := rt.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge}, Data: b}); err != nil {
				t.Fatal(err)
			}
		}
	}
	converged(flaps)
	report(t, result{Arch: s.arch, Bench: "memory after 1000 underlay flaps", Impl: "tunneld run", Value: rssKiB(pid), Unit: "KiB RSS"})
	stopper(cmd)()
}

// putLink writes an ifinfomsg setting IFF_UP on index to flags.
func putLink(b []byte, index int, flags uint32) {
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], unix.IFF_UP)
}

func rssKiB(pid int) float64 {
	return float64(statusField(pid, "VmRSS:"))
}

// wakeups sums the context switches of all the process's threads.
func wakeups(pid int) int {
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	n := 0
	for _, p := range tasks {
		n += field(p, "voluntary_ctxt_switches:") + field(p, "nonvoluntary_ctxt_switches:")
	}
	return n
}

func statusField(pid int, key string) int {
	return field(filepath.Join("/proc", strconv.Itoa(pid), "status"), key)
}

func field(path, key string) int {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == key {
			n, _ := strconv.Atoi(fs[1])
			return n
		}
	}
	return -1
}

// cpuTicks is user+system time in clock ticks (USER_HZ, 100 a second).
func cpuTicks(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.Atoi(fs[11])
	k, _ := strconv.Atoi(fs[12])
	return u + k
}
