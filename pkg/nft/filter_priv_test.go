package nft

import (
	"net"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
)

// Privileged tests of the table pkg/desired builds, with packets: the
// host kernel has no tunnel drivers, so a veth named like the tunnel
// stands for it (the rules match by interface name).

// desiredFilter is the table tunneld builds for a configuration whose
// tunnels have literal endpoints (no device or DNS answer needed).
func desiredFilter(t *testing.T, conf string) *model.Filter {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	f := desired.Build(c, model.Inputs{}, model.State{}).State.Filter
	if f == nil {
		t.Fatal("the configuration builds no table")
	}
	return f
}

// router builds client -- router -- server, the router's devices "lan"
// (10.1.0.1/24, client 10.1.0.2) and tun (10.0.0.1/24, server 10.0.0.2),
// forwarding IPv4, and loads table f into the router.
func router(t *testing.T, tun string, f *model.Filter) (client, rtr, server *testNS) {
	t.Helper()
	client, rtr, server = newNS(t), newNS(t), newNS(t)
	ip := func(a, b byte) net.IP { return net.IPv4(10, a, 0, b).To4() }
	for _, err := range []error{
		rtr.veth("lan", ip(1, 1), client, "eth0", ip(1, 2)),
		rtr.veth(tun, ip(0, 1), server, "eth0", ip(0, 2)),
		rtr.sysctl("ipv4/conf/all/forwarding", "1"),
		client.defaultRoute(ip(1, 1)),
		server.defaultRoute(ip(0, 1)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rtr.open(t).Replace(f); err != nil {
		t.Fatal(err)
	}
	return client, rtr, server
}

// dial connects from inside ns to addr over TCP, listening on addr in
// to; the error is the dial's.
func dial(t *testing.T, from, to *testNS, addr string, timeout time.Duration) error {
	t.Helper()
	var ln net.Listener
	err := to.do(func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	return from.do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestKernelForwardDropKeepsReplies: a [[forward]] section that drops TCP
// coming in from a tunnel whose forward is "accept" drops new connections
// from the far side, but not the replies to a connection made from the
// LAN through the tunnel (the SYN-ACK comes in from the tunnel too).
func TestKernelForwardDropKeepsReplies(t *testing.T) {
	f := desiredFilter(t, `
[tunnel.Moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1 peer 10.0.0.2"
[[forward]]
tunnel = "Moe"
direction = "in"
proto = "tcp"
action = "drop"
`)
	t.Logf("table:\n%s", f)
	client, _, server := router(t, "Moe", f)
	if err := dial(t, client, server, "10.0.0.2:8080", 5*time.Second); err != nil {
		t.Errorf("LAN to the far side through Moe: %v (the replies were dropped)", err)
	}
	if err := dial(t, server, client, "10.1.0.2:8081", time.Second); err == nil {
		t.Errorf("far side to the LAN: connected, want dropped by the [[forward]] section")
	}
}
