package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

const wanHost1 = `
[tunnel.tun0]
mode = "ipip"
local = "veth0"
remote = "152.16.10.2"
address = "192.168.50.1/30"
`

const wanHost2 = `
[global]
resolve_interval = "1s"

[tunnel.tun0]
mode = "ipip"
local = "152.16.10.2"
remote = "host1.test"
address = "192.168.50.2/30"
`

// TestWANChange runs the daemon on both ends of an IPIP tunnel. host1's
// tunnel follows its underlay device; host2 knows host1 by a name from
// /etc/hosts. host1's address changes (a DHCP renew), then its underlay
// device disappears and comes back with a new index and address (a PPPoE
// reconnect); each time /etc/hosts follows, and the tunnel recovers with
// nothing restarted. It rewrites /etc/hosts, so it runs only in the VM.
func TestWANChange(t *testing.T) {
	l := newLab(t)
	if os.Getenv(netnstest.EnvRequireDrivers) != "1" {
		t.Skip("rewrites /etc/hosts: runs in the test VM only (make test-vm)")
	}
	hosts := func(addr string) {
		if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n"+addr+" host1.test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hosts("172.16.10.2")
	l.hostRouterHost(true)
	cfg1, cfg2 := filepath.Join(l.dir, "host1.toml"), filepath.Join(l.dir, "host2.toml")
	os.WriteFile(cfg1, []byte(wanHost1), 0o644)
	os.WriteFile(cfg2, []byte(wanHost2), 0o644)

	d1, d2 := l.daemon("host1", cfg1), l.daemon("host2", cfg2)
	waitPing := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for l.ping("host1", "192.168.50.2") != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the tunnel did not recover within 20s\nhost1: %s\nhost2: %s", what, l.statusText("host1", cfg1), l.statusText("host2", cfg2))
			}
		}
	}
	waitPing("start")
	index := l.ifindex("host1", "tun0")

	// DHCP renew: a new address first, then the old one goes (with
	// secondaries promoted, as systemd and OpenWrt configure it).
	l.sysctl("host1", "net/ipv4/conf/veth0/promote_secondaries", "1")
	l.addr("host1", "veth0", "172.16.10.3/24")
	l.in("host1", func() error { return netnstest.DelAddr("veth0", mustPrefix("172.16.10.2/24")) })
	hosts("172.16.10.3")
	start := time.Now()
	waitPing("address change")
	t.Logf("address change: tunnel back after %s", time.Since(start).Round(10*time.Millisecond))
	if i := l.ifindex("host1", "tun0"); i != index {
		t.Errorf("tun0 was recreated on the address change (index %d → %d)", index, i)
	}

	// PPPoE reconnect: the device goes away and comes back, new index.
	l.in("host1", func() error { return netnstest.DelLink("veth0") })
	time.Sleep(300 * time.Millisecond)
	l.wire("host1", "veth0", "router", "veth1")
	l.addr("router", "veth1", "172.16.10.1/24")
	l.addr("host1", "veth0", "172.16.10.4/24")
	l.route("host1", "0.0.0.0/0", "172.16.10.1")
	hosts("172.16.10.4")
	start = time.Now()
	waitPing("device re-created")
	t.Logf("device re-created: tunnel back after %s", time.Since(start).Round(10*time.Millisecond))

	for _, d := range []*exec.Cmd{d1, d2} {
		d.Process.Signal(syscall.SIGTERM)
		if err := d.Wait(); err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	}
	if l.ifindexOK("host1", "tun0") {
		t.Error("tun0 survived the daemon's stop")
	}
}

// daemon starts `tunneld run` in a namespace; the test stops it.
func (l *lab) daemon(ns, cfg string) *exec.Cmd {
	l.t.Helper()
	cmd, _ := l.daemonLog(ns, cfg)
	return cmd
}

// daemonLog is daemon that also returns the daemon's log, as it is
// written.
func (l *lab) daemonLog(ns, cfg string) (*exec.Cmd, *syncbuf.Buffer) {
	l.t.Helper()
	var cmd *exec.Cmd
	log := &syncbuf.Buffer{}
	l.in(ns, func() error {
		cmd = exec.CommandContext(context.Background(), l.bin, "run", "-c", cfg, "-log-level", "debug")
		cmd.Env = append(os.Environ(), "TUNNELD_STATE_DIR="+filepath.Join(l.dir, ns))
		cmd.Stdout, cmd.Stderr = log, log
		return cmd.Start()
	})
	l.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		l.t.Logf("%s daemon log:\n%s", ns, log)
	})
	return cmd, log
}

func (l *lab) statusText(ns, cfg string) string {
	out, err := l.tunneld(ns, "status", "-c", cfg)
	if err != nil {
		return err.Error()
	}
	return out
}

func (l *lab) ifindex(ns, dev string) int {
	l.t.Helper()
	var i int
	l.in(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err == nil {
			i = ifc.Index
		}
		return err
	})
	return i
}

func (l *lab) ifindexOK(ns, dev string) bool {
	ok := false
	l.node(ns).Do(func() error {
		_, err := net.InterfaceByName(dev)
		ok = err == nil
		return nil
	})
	return ok
}
