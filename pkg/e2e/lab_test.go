package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// lab is a set of named network namespaces wired with veth pairs.
type lab struct {
	t   *testing.T
	bin string
	ns  map[string]*netnstest.NS
	dir string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	netnstest.Gate(t)
	bin := os.Getenv("TUNNELD_BIN")
	if bin == "" {
		t.Skip("end-to-end test: set TUNNELD_BIN to a tunneld binary")
	}
	return &lab{t: t, bin: bin, ns: map[string]*netnstest.NS{}, dir: t.TempDir()}
}

// node returns the namespace called name, creating it.
func (l *lab) node(name string) *netnstest.NS {
	if n, ok := l.ns[name]; ok {
		return n
	}
	n := netnstest.NewNS(l.t)
	l.ns[name] = n
	return n
}

// in runs f inside a namespace and fails the test on error.
func (l *lab) in(name string, f func() error) {
	l.t.Helper()
	if err := l.node(name).Do(f); err != nil {
		l.t.Fatalf("in %s: %v", name, err)
	}
}

// wire connects a:aif with b:bif, both up.
func (l *lab) wire(a, aif, b, bif string) {
	l.t.Helper()
	peer := l.node(b)
	l.in(a, func() error { return netnstest.Veth(aif, bif, peer) })
	l.in(a, func() error { return netnstest.LinkUp(aif) })
	l.in(b, func() error { return netnstest.LinkUp(bif) })
}

// segment makes a bridge br in namespace hub (a switch) and wires each
// member "ns:if" to a port of it, all up.
func (l *lab) segment(hub, br string, members ...string) {
	l.t.Helper()
	l.in(hub, func() error { return netnstest.Bridge(br) })
	l.in(hub, func() error { return netnstest.LinkUp(br) })
	for i, m := range members {
		ns, ifname, _ := strings.Cut(m, ":")
		port := fmt.Sprintf("%s%d", br, i)
		l.wire(hub, port, ns, ifname)
		l.in(hub, func() error { return netnstest.SetMaster(port, br) })
	}
}

// addr adds an address ("A/LEN") to a device.
func (l *lab) addr(ns, dev, prefix string) {
	l.t.Helper()
	l.in(ns, func() error { return netnstest.AddAddr(dev, netip.MustParsePrefix(prefix)) })
}

// route adds a main-table route via a gateway (the foreign, boot-protocol
// kind an admin's scripts make).
func (l *lab) route(ns, dst, via string) {
	l.t.Helper()
	l.in(ns, func() error {
		return netnstest.AddRoute(netnstest.Route{Table: unix.RT_TABLE_MAIN, Dst: netip.MustParsePrefix(dst),
			Via: netip.MustParseAddr(via), Proto: unix.RTPROT_BOOT})
	})
}

// hostRouterHost is the topology of seeds 000 and 003: host1 (veth0
// 172.16.10.2) — router — host2 (veth3 152.16.10.2), default routes via
// the router, which forwards only if told to (routerForwards).
func (l *lab) hostRouterHost(routerForwards bool) {
	l.t.Helper()
	l.wire("host1", "veth0", "router", "veth1")
	l.wire("router", "veth2", "host2", "veth3")
	l.addr("host1", "veth0", "172.16.10.2/24")
	l.addr("router", "veth1", "172.16.10.1/24")
	l.addr("router", "veth2", "152.16.10.1/24")
	l.addr("host2", "veth3", "152.16.10.2/24")
	l.route("host1", "0.0.0.0/0", "172.16.10.1")
	l.route("host2", "0.0.0.0/0", "152.16.10.1")
	if routerForwards {
		l.sysctl("router", "net/ipv4/ip_forward", "1")
	}
}

// sysctl writes a value under /proc/sys in a namespace.
func (l *lab) sysctl(ns, path, v string) {
	l.t.Helper()
	l.in(ns, func() error { return os.WriteFile(filepath.Join("/proc/sys", path), []byte(v), 0) })
}

// tunneld runs the binary in a namespace with its own state directory.
func (l *lab) tunneld(ns string, args ...string) (string, error) {
	l.t.Helper()
	var out, errb bytes.Buffer
	err := l.node(ns).Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, l.bin, args...)
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+filepath.Join(l.dir, ns))
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	if err != nil {
		return out.String(), fmt.Errorf("tunneld %s in %s: %w\n%s%s", strings.Join(args, " "), ns, err, out.String(), errb.String())
	}
	return out.String(), nil
}

// mustTunneld is tunneld that must succeed; it logs the output.
func (l *lab) mustTunneld(ns string, args ...string) string {
	l.t.Helper()
	out, err := l.tunneld(ns, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Logf("%s$ tunneld %s\n%s", ns, strings.Join(args, " "), out)
	return out
}

// status reads `tunneld status --json` in a namespace.
func (l *lab) status(ns, cfg string) status {
	l.t.Helper()
	out := l.mustTunneld(ns, "status", "--json", "-c", cfg)
	var s status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		l.t.Fatalf("status in %s: %v\n%s", ns, err, out)
	}
	return s
}

// statusInto decodes `tunneld status --json` in a namespace into v, for
// the fields a test reads beyond status's.
func (l *lab) statusInto(ns, cfg string, v any) {
	l.t.Helper()
	out := l.mustTunneld(ns, "status", "--json", "-c", cfg)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		l.t.Fatalf("status in %s: %v\n%s", ns, err, out)
	}
}

// status is the part of `tunneld status --json` the tests read.
type status struct {
	Tunnels []struct {
		Name  string
		Up    bool
		MTU   int
		Stats struct{ RxPackets, TxPackets uint64 }
	}
	Drift []string
	Drops map[string]struct{ Packets uint64 }
}

// ping sends count echo requests from a namespace (ping from iputils or
// busybox) and fails unless one is answered.
func (l *lab) ping(ns, dst string, extra ...string) error {
	var out []byte
	err := l.node(ns).Do(func() error {
		args := append([]string{"-c", "2", "-W", "2"}, extra...)
		var err error
		out, err = exec.Command("ping", append(args, dst)...).CombinedOutput()
		return err
	})
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w\n%s", dst, ns, err, out)
	}
	return nil
}

// tcp opens a TCP connection from one namespace to a listener in another
// and moves a message both ways.
func (l *lab) tcp(from, to, addr string) error {
	ln, err := l.listenEcho(to, net.JoinHostPort(addr, "0"))
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := l.dialEcho(from, "", ln.Addr().String(), 5*time.Second); err != nil {
		return fmt.Errorf("tcp %s → %s: %w", from, to, err)
	}
	return nil
}

// listenEcho listens on addr ("A:PORT") in a namespace and answers each
// connection's first 5 bytes with "echo:" and them, until closed.
func (l *lab) listenEcho(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	if err := l.node(ns).Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err == nil {
					c.Write(append([]byte("echo:"), buf...))
				}
			}()
		}
	}()
	return ln, nil
}

// dialEcho connects from a namespace to an echo listener at addr
// ("A:PORT"), from the source address src unless it is empty, and moves a
// message both ways; the connection and the exchange each get timeout.
func (l *lab) dialEcho(ns, src, addr string, timeout time.Duration) error {
	return l.node(ns).Do(func() error {
		d := net.Dialer{Timeout: timeout}
		if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		buf := make([]byte, 10)
		n, err := io.ReadFull(c, buf)
		if err != nil || string(buf[:n]) != "echo:hello" {
			return fmt.Errorf("%s → %s: got %q, %v", src, addr, buf[:n], err)
		}
		return nil
	})
}

// snapshot is everything in a namespace that `tunneld down` must leave
// as it found it.
// snapshots takes the snapshot of each namespace, by name.
func (l *lab) snapshots(names ...string) map[string]string {
	l.t.Helper()
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = l.snapshot(n)
	}
	return out
}

// downRestores runs `tunneld down -c file` in ns and checks that ns is
// exactly as it was in before, its snapshot from before the first apply.
func (l *lab) downRestores(ns, file, before string) {
	l.t.Helper()
	l.mustTunneld(ns, "down", "-c", file)
	if got := l.snapshot(ns); got != before {
		l.t.Errorf("%s after down differs:\n--- before\n%s--- after\n%s", ns, before, got)
	}
}

// unchanged checks that each namespace in before is exactly as its
// snapshot there, after what (a down, the daemon's stop).
func (l *lab) unchanged(what string, before map[string]string) {
	l.t.Helper()
	for _, ns := range slices.Sorted(maps.Keys(before)) {
		if got := l.snapshot(ns); got != before[ns] {
			l.t.Errorf("%s after %s differs:\n--- before\n%s--- after\n%s", ns, what, before[ns], got)
		}
	}
}

func (l *lab) snapshot(ns string) string {
	l.t.Helper()
	var s string
	l.in(ns, func() (err error) { s, err = netnstest.Snapshot(); return err })
	return s
}
