package nft

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// privileged skips t unless privileged tests are enabled and we are root.
func privileged(t *testing.T) {
	t.Helper()
	if os.Getenv("TUNNELD_PRIVILEGED") != "1" {
		t.Skip("privileged test: set TUNNELD_PRIVILEGED=1 and run as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root")
	}
}

// testNS is a network namespace created by a test, held by an fd. The
// test goroutine never enters it: work inside it runs on a throw-away
// thread (do), sockets opened there stay in it.
type testNS struct{ f *os.File }

// newNS gates t and creates an empty network namespace with loopback up,
// closed when the test ends.
func newNS(t *testing.T) *testNS {
	t.Helper()
	privileged(t)
	host, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ns := &testNS{}
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		ns.f = f
		return nil
	})
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.f.Close() })
	if st, err := ns.f.Stat(); err != nil || os.SameFile(st, host) {
		t.Fatalf("new network namespace is the host's (%v)", err)
	}
	if err := ns.linkUp("lo"); err != nil {
		t.Fatal(err)
	}
	return ns
}

// fd is the namespace's file descriptor.
func (n *testNS) fd() int { return int(n.f.Fd()) }

// do runs f on a fresh OS thread inside the namespace.
func (n *testNS) do(f func() error) error {
	return onThread(func() error {
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return f()
	})
}

// onThread runs f on a goroutine locked to an OS thread that exits with
// it, so a namespace change never reaches another goroutine.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		errc <- f()
	}()
	return <-errc
}

// open opens a Conn to the namespace, closed when the test ends.
func (n *testNS) open(t *testing.T) *Conn {
	t.Helper()
	c, err := Open(n.fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// haveNft reports whether Debian's nft binary is installed.
func haveNft() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

// nft runs the nft binary inside the namespace (a child forked from a
// thread inherits its namespace), with stdin as input.
func (n *testNS) nft(stdin string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := n.do(func() error {
		cmd := exec.Command("nft", args...)
		cmd.Stdin = bytes.NewBufferString(stdin)
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd.Run()
	})
	if err != nil {
		return out.String(), fmt.Errorf("nft %q: %v: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// rtnl dials rtnetlink in the namespace.
func (n *testNS) rtnl() (*rtnetlink.Conn, error) {
	return rtnetlink.Dial(&netlink.Config{NetNS: n.fd()})
}

// index returns a device's index.
func index(c *rtnetlink.Conn, name string) (uint32, error) {
	links, err := c.Link.List()
	if err != nil {
		return 0, err
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l.Index, nil
		}
	}
	return 0, fmt.Errorf("device %s not found", name)
}

// linkUp sets a device up.
func (n *testNS) linkUp(name string) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	i, err := index(c, name)
	if err != nil {
		return err
	}
	return c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: i, Flags: unix.IFF_UP, Change: unix.IFF_UP})
}

// addAddr adds an IPv4 address with its prefix length to a device.
func (n *testNS) addAddr(dev string, ip net.IP, bits uint8) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	i, err := index(c, dev)
	if err != nil {
		return err
	}
	return c.Address.New(&rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: bits, Index: i,
		Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}})
}

// veth creates a veth pair, name in n and peer in other, both up with
// the given IPv4 /24 addresses.
func (n *testNS) veth(name string, ip net.IP, other *testNS, peer string, peerIP net.IP) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{
		Name: name,
		Info: &rtnetlink.LinkInfo{Kind: "veth", Data: &driver.Veth{PeerInfo: &rtnetlink.LinkMessage{
			Family:     unix.AF_UNSPEC,
			Attributes: &rtnetlink.LinkAttributes{Name: peer, NetNS: rtnetlink.NetNSForFD(uint32(other.fd()))},
		}}},
	}})
	if err != nil {
		return fmt.Errorf("veth %s/%s: %w", name, peer, err)
	}
	for _, s := range []struct {
		ns  *testNS
		dev string
		ip  net.IP
	}{{n, name, ip}, {other, peer, peerIP}} {
		if err := s.ns.addAddr(s.dev, s.ip, 24); err != nil {
			return fmt.Errorf("address on %s: %w", s.dev, err)
		}
		if err := s.ns.linkUp(s.dev); err != nil {
			return err
		}
	}
	return nil
}

// defaultRoute adds a default IPv4 route via gw.
func (n *testNS) defaultRoute(gw net.IP) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Route.Add(&rtnetlink.RouteMessage{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN,
		Protocol: unix.RTPROT_BOOT, Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{Gateway: gw}})
}

// setMTU sets a device's MTU.
func (n *testNS) setMTU(dev string, mtu uint32) error {
	c, err := n.rtnl()
	if err != nil {
		return err
	}
	defer c.Close()
	i, err := index(c, dev)
	if err != nil {
		return err
	}
	return c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: i, Attributes: &rtnetlink.LinkAttributes{MTU: mtu}})
}

// sysctl writes a value under /proc/sys/net as seen from the namespace.
func (n *testNS) sysctl(path, value string) error {
	return n.do(func() error { return os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644) })
}
