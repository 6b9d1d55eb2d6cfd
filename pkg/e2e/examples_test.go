package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// exampleFile is the path of a configuration in testdata/examples.
func exampleFile(name string) string {
	return filepath.Join("..", "..", "testdata", "examples", name+".toml")
}

// checkTunnel fails unless the namespace's status shows the tunnel up,
// with the MTU, no drift, and packets both ways.
func checkTunnel(t *testing.T, l *lab, ns, cfg, name string, mtu int) {
	t.Helper()
	st := l.status(ns, cfg)
	if len(st.Drift) != 0 {
		t.Errorf("%s: drift %v", ns, st.Drift)
	}
	for _, tun := range st.Tunnels {
		if tun.Name != name {
			continue
		}
		if !tun.Up || tun.MTU != mtu || tun.Stats.RxPackets == 0 || tun.Stats.TxPackets == 0 {
			t.Errorf("%s %s: up %v mtu %d (want %d) rx %d tx %d", ns, name, tun.Up, tun.MTU, mtu, tun.Stats.RxPackets, tun.Stats.TxPackets)
		}
		return
	}
	t.Errorf("%s: no tunnel %s in %+v", ns, name, st)
}

// checkNoDrops fails when any of tunneld's drop counters in the
// namespace counted a packet: the legitimate traffic of the examples
// must pass the outer-packet protection and the anti-spoofing chains.
func checkNoDrops(t *testing.T, l *lab, ns, cfg string) {
	t.Helper()
	for k, c := range l.status(ns, cfg).Drops {
		if c.Packets != 0 {
			t.Errorf("%s: %q dropped %d packets", ns, k, c.Packets)
		}
	}
}

// sixIn4Lab is the 6in4 topology: the LAN host (2001:db8:100:1::100)
// behind the router (br-lan, and wan 198.51.100.2 behind the ISP's
// 198.51.100.1); the ISP routes IPv4 only, to the broker (203.0.113.1),
// whose eth1 leads to an IPv6 host on the internet (2001:db8:ffff::100).
func sixIn4Lab(l *lab) {
	l.wire("lan", "eth0", "router", "br-lan")
	l.wire("router", "wan", "isp", "r")
	l.wire("broker", "eth0", "isp", "b")
	l.wire("broker", "eth1", "inet", "eth0")
	l.addr("isp", "r", "198.51.100.1/24")
	l.addr("isp", "b", "203.0.113.254/24")
	l.sysctl("isp", "net/ipv4/ip_forward", "1")
	l.addr("router", "wan", "198.51.100.2/24")
	l.route("router", "0.0.0.0/0", "198.51.100.1")
	l.addr("router", "br-lan", "2001:db8:100:1::1/64")
	l.addr("lan", "eth0", "2001:db8:100:1::100/64")
	l.route("lan", "::/0", "2001:db8:100:1::1")
	l.addr("broker", "eth0", "203.0.113.1/24")
	l.route("broker", "0.0.0.0/0", "203.0.113.254")
	l.addr("broker", "eth1", "2001:db8:ffff::1/64")
	l.addr("inet", "eth0", "2001:db8:ffff::100/64")
	l.route("inet", "::/0", "2001:db8:ffff::1")
	// The WAN address changes the way DHCP renews it: the new one is
	// added, then the old one removed, the new one promoted.
	l.sysctl("router", "net/ipv4/conf/wan/promote_secondaries", "1")
}

// TestExample6in4 is testdata/examples/6in4-he.toml: a SIT tunnel from
// the router's WAN address to a tunnel broker, the IPv6 default route
// through it, IPv6 forwarding on. The LAN host pings and connects to a
// host on the IPv6 internet behind the broker, through the tunnel (the
// ISP routes no IPv6); both ends count the traffic and nothing is dropped;
// a ping to an unused part of the routed prefix is answered unreachable.
// Then the router runs the daemon and its WAN address changes: the
// tunnel's local follows it in place, the broker is told (its remote is
// updated, as a broker's update URL does), and traffic passes again.
// apply/down and the daemon's stop each leave every namespace as it was.
func TestExample6in4(t *testing.T) {
	l := newLab(t)
	sixIn4Lab(l)
	router, broker := exampleFile("6in4-he"), exampleFile("6in4-broker")
	hosts := []string{"router", "broker"}
	before := l.snapshots(hosts...)
	_, err := l.tunneld("broker", "apply", "-c", broker)
	skipWithoutDriver(t, err)
	l.mustTunneld("router", "apply", "-c", router)
	if err := l.ping("lan", "2001:db8:ffff::100", "-6"); err != nil {
		t.Error(err)
	}
	if err := l.tcp("lan", "inet", "2001:db8:ffff::100"); err != nil {
		t.Error(err)
	}
	// The router itself reaches the broker's end of the tunnel.
	if err := l.ping("router", "2001:db8:1::1", "-6"); err != nil {
		t.Error(err)
	}
	// An unused part of the routed /48 is unreachable at the router: the
	// sender is told so, and the packet does not go back to the broker
	// and loop until its hop limit runs out ("Time exceeded").
	// Busybox's ping does not print ICMPv6 errors: the host's counter says.
	unreachs := func() (n int) {
		l.in("inet", func() error {
			b, err := os.ReadFile("/proc/thread-self/net/snmp6")
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "Icmp6InDestUnreachs" {
					n, err = strconv.Atoi(f[1])
				}
			}
			return err
		})
		return n
	}
	n := unreachs()
	var out []byte
	l.in("inet", func() error {
		out, _ = exec.Command("ping", "-c", "1", "-W", "2", "-6", "2001:db8:100:2::1").CombinedOutput()
		return nil
	})
	if unreachs() == n {
		t.Errorf("ping to an unused part of the routed prefix, from the internet: no destination unreachable came back\n%s", out)
	}
	checkTunnel(t, l, "router", router, "6in4-henet", 1480)
	checkTunnel(t, l, "broker", broker, "6in4-client", 1480)
	checkNoDrops(t, l, "router", router)
	checkNoDrops(t, l, "broker", broker)
	l.mustTunneld("router", "down", "-c", router)
	l.mustTunneld("broker", "down", "-c", broker)
	l.unchanged("down", before)

	// The daemon on the router, with the example's hook (commented out
	// there) pointing at a script that notes each call; the WAN address
	// changes under it.
	calls := filepath.Join(l.dir, "hook-calls")
	hooked := l.hookedConfig(router, "[tunnel.6in4-henet]", calls)
	d := l.daemon("router", hooked)
	l.mustTunneld("broker", "apply", "-c", broker)
	l.waitPing("lan", "2001:db8:ffff::100", "daemon start", "router", hooked)
	l.waitHookCall(calls, "up 198.51.100.2 ", "router", hooked)
	index := l.ifindex("router", "6in4-henet")
	l.renumber("router", "wan", "198.51.100.2/24", "198.51.100.3/24")
	// The hook tells the broker the new address, as HE's update URL
	// does: here the broker's configuration follows the call.
	l.waitHookCall(calls, "moved 198.51.100.3 198.51.100.2", "router", hooked)
	moved := l.movedConfig(broker, "198.51.100.2", "198.51.100.3")
	l.mustTunneld("broker", "apply", "-c", moved)
	start := time.Now()
	l.waitPing("lan", "2001:db8:ffff::100", "WAN address change", "router", hooked)
	t.Logf("WAN address change: IPv6 back after %s", time.Since(start).Round(10*time.Millisecond))
	if err := l.tcp("lan", "inet", "2001:db8:ffff::100"); err != nil {
		t.Error(err)
	}
	if got := l.tunnelLocal("router", hooked); got != "198.51.100.3" {
		t.Errorf("router's tunnel local after the WAN change: %q, want 198.51.100.3", got)
	}
	if i := l.ifindex("router", "6in4-henet"); i != index {
		t.Errorf("6in4-henet was recreated on the address change (index %d → %d)", index, i)
	}
	checkNoDrops(t, l, "router", router)
	checkNoDrops(t, l, "broker", moved)

	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	l.mustTunneld("broker", "down", "-c", moved)
	l.renumber("router", "wan", "198.51.100.3/24", "198.51.100.2/24") // as it was, to compare
	l.unchanged("the daemon's stop", before)
}

// renumber adds the address new to a device, then removes old (a DHCP
// renew, an ISP's new prefix).
func (l *lab) renumber(ns, dev, old, new string) {
	l.t.Helper()
	l.addr(ns, dev, new)
	l.in(ns, func() error { return netnstest.DelAddr(dev, mustPrefix(old)) })
}

// hookedConfig is a copy of a configuration file, in the lab's
// directory, whose section gets a hook: a script that appends a line
// "REASON LOCAL OLD_LOCAL" to calls for each run.
func (l *lab) hookedConfig(file, section, calls string) string {
	l.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		l.t.Fatal(err)
	}
	if !strings.Contains(string(b), section+"\n") {
		l.t.Fatalf("%s has no %s", file, section)
	}
	script := filepath.Join(l.dir, "hook.sh")
	body := "#!/bin/sh\necho \"$TUNNELD_REASON $TUNNELD_LOCAL $TUNNELD_OLD_LOCAL\" >>" + calls + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		l.t.Fatal(err)
	}
	hooked := filepath.Join(l.dir, "hooked-"+filepath.Base(file))
	conf := strings.Replace(string(b), section+"\n", section+"\nhook = \""+script+"\"\n", 1)
	if err := os.WriteFile(hooked, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return hooked
}

// waitHookCall waits, for at most 20s, until the hook's calls file has
// the line want, and fails the test with the daemon's status otherwise.
func (l *lab) waitHookCall(calls, want, ns, cfg string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(calls)
		if slices.Contains(strings.Split(string(b), "\n"), want) {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no hook call %q within 20s; calls:\n%s\n%s: %s", want, b, ns, l.statusText(ns, cfg))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// movedConfig is a copy of a configuration file, in the lab's directory,
// with the remote address from replaced by to.
func (l *lab) movedConfig(file, from, to string) string {
	l.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		l.t.Fatal(err)
	}
	old := `remote = "` + from + `"`
	if !strings.Contains(string(b), old) {
		l.t.Fatalf("%s has no %s", file, old)
	}
	moved := filepath.Join(l.dir, "moved-"+filepath.Base(file))
	if err := os.WriteFile(moved, []byte(strings.Replace(string(b), old, `remote = "`+to+`"`, 1)), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return moved
}

// waitPing pings dst from a namespace until it answers, for at most 20s,
// and fails the test with the status of the namespace running tunneld
// (ns, cfg) when it does not.
func (l *lab) waitPing(from, dst, what, ns, cfg string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for l.ping(from, dst) != nil {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: %s → %s: no answer within 20s\n%s: %s", what, from, dst, ns, l.statusText(ns, cfg))
		}
	}
}

// tunnelLocal is the actual local address of the first tunnel in a
// namespace's status.
func (l *lab) tunnelLocal(ns, cfg string) string {
	l.t.Helper()
	var st struct {
		Tunnels []struct{ LocalActual string }
	}
	l.statusInto(ns, cfg, &st)
	if len(st.Tunnels) == 0 {
		return ""
	}
	return st.Tunnels[0].LocalActual
}

// TestExampleDSLite is testdata/examples/dslite.toml: the router (the
// B4) has IPv6 only on its WAN; an ipip6 tunnel to the AFTR, named by DNS
// (/etc/hosts here), carries its IPv4 default route, with the B4 address
// 192.0.0.2/29 and MTU 1460. The AFTR (dslite-aftr.toml) routes the LAN
// back into the tunnel and masquerades it to the IPv4 internet. The LAN
// host pings and connects to an IPv4 host there, which sees the AFTR's
// address; the ISP routes no IPv4. Then the router runs the daemon and
// its WAN gets a new IPv6 address: the tunnel's local follows it in place
// and, the AFTR's remote updated, IPv4 passes again; an address whose
// duplicate address detection fails is not followed. apply/down and the
// daemon's stop each leave every namespace as it was. It rewrites
// /etc/hosts, so it runs only in the test VM.
func TestExampleDSLite(t *testing.T) {
	l := newLab(t)
	dsliteLab(l)
	router, aftr := exampleFile("dslite"), exampleFile("dslite-aftr")
	hosts := []string{"router", "aftr"}
	before := l.snapshots(hosts...)
	_, err := l.tunneld("aftr", "apply", "-c", aftr)
	skipWithoutDriver(t, err)
	if os.Getenv(netnstest.EnvRequireDrivers) != "1" {
		l.tunneld("aftr", "down", "-c", aftr)
		t.Skip("rewrites /etc/hosts: runs in the test VM only (make test-vm)")
	}
	setHosts(t, "2001:db8:b::2 aftr.example.net\n")
	l.mustTunneld("router", "apply", "-c", router)
	if err := l.ping("lan", "203.0.113.100", "-4"); err != nil {
		t.Error(err)
	}
	if err := l.ping("router", "192.0.0.1", "-4"); err != nil {
		t.Error(err)
	}
	// The router's own IPv4 (from the B4 address) goes through too.
	if err := l.ping("router", "203.0.113.100", "-4"); err != nil {
		t.Error(err)
	}
	// The carrier-grade NAT is the AFTR's: the internet sees its address.
	if src := peerAddr(t, l, "lan", "inet", "203.0.113.100"); src != "203.0.113.1" {
		t.Errorf("the internet host sees %s from the LAN, want the AFTR's 203.0.113.1", src)
	}
	var rs struct {
		Tunnels []struct{ Name, LocalActual, RemoteActual, RemoteName string }
	}
	l.statusInto("router", router, &rs)
	if len(rs.Tunnels) != 1 || rs.Tunnels[0].LocalActual != "2001:db8:a::2" || rs.Tunnels[0].RemoteActual != "2001:db8:b::2" {
		t.Errorf("router's tunnel: %+v, want 2001:db8:a::2 → 2001:db8:b::2 (aftr.example.net)", rs.Tunnels)
	}
	checkTunnel(t, l, "router", router, "ds-wan", 1460)
	checkTunnel(t, l, "aftr", aftr, "ds-b4", 1460)
	checkNoDrops(t, l, "router", router)
	checkNoDrops(t, l, "aftr", aftr)
	l.mustTunneld("router", "down", "-c", router)
	l.mustTunneld("aftr", "down", "-c", aftr)
	l.unchanged("down", before)

	// The daemon on the router; the ISP gives the WAN a new address (a
	// new prefix, as some ISPs do daily).
	d := l.daemon("router", router)
	l.mustTunneld("aftr", "apply", "-c", aftr)
	l.waitPing("lan", "203.0.113.100", "daemon start", "router", router)
	index := l.ifindex("router", "ds-wan")
	l.renumber("router", "wan", "2001:db8:a::2/64", "2001:db8:a::3/64")
	moved := l.movedConfig(aftr, "2001:db8:a::2", "2001:db8:a::3")
	l.mustTunneld("aftr", "apply", "-c", moved)
	start := time.Now()
	l.waitPing("lan", "203.0.113.100", "WAN address change", "router", router)
	t.Logf("WAN address change: IPv4 back after %s", time.Since(start).Round(10*time.Millisecond))
	if got := l.tunnelLocal("router", router); got != "2001:db8:a::3" {
		t.Errorf("router's tunnel local after the WAN change: %q, want 2001:db8:a::3", got)
	}
	if i := l.ifindex("router", "ds-wan"); i != index {
		t.Errorf("ds-wan was recreated on the address change (index %d → %d)", index, i)
	}
	// The WAN gets an address another node on the link already has
	// (the ISP's side here): duplicate address detection fails, and the
	// tunnel stays on the address that works. The kernel lists the
	// newest first: it was followed, tentative and then failed, for good.
	l.addr("isp", "r", "2001:db8:a::9/64")
	l.in("router", func() error { return netnstest.AddAddrDAD("wan", mustPrefix("2001:db8:a::9/64")) })
	time.Sleep(3 * time.Second) // one probe, a second each
	if err := l.ping("lan", "203.0.113.100", "-4"); err != nil {
		t.Errorf("with a duplicate WAN address: %v\n%s", err, l.statusText("router", router))
	}
	if got := l.tunnelLocal("router", router); got != "2001:db8:a::3" {
		t.Errorf("router's tunnel local with a duplicate WAN address: %q, want 2001:db8:a::3", got)
	}
	l.in("router", func() error { return netnstest.DelAddr("wan", mustPrefix("2001:db8:a::9/64")) })
	checkNoDrops(t, l, "router", router)
	checkNoDrops(t, l, "aftr", moved)
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	l.mustTunneld("aftr", "down", "-c", moved)
	l.renumber("router", "wan", "2001:db8:a::3/64", "2001:db8:a::2/64")
	l.unchanged("the daemon's stop", before)
}

// TestExampleIP6IP6 is testdata/examples/ip6ip6-site-{a,b}.toml: two
// sites with native IPv6 join their ULA LANs through an ip6ip6 tunnel
// that sends the encapsulation limit option (MTU 1452). The ISP knows no
// route to the ULAs, so a ping and a connection between the LAN hosts
// went through the tunnel; the outer packets' next header (a destination
// options header before the inner IPv6) passes the outer-packet filter.
func TestExampleIP6IP6(t *testing.T) {
	l := newLab(t)
	l.wire("lanA", "eth0", "siteA", "br-lan")
	l.wire("lanB", "eth0", "siteB", "br-lan")
	l.wire("siteA", "wan", "isp", "a")
	l.wire("siteB", "wan", "isp", "b")
	l.addr("isp", "a", "2001:db8:a::1/64")
	l.addr("isp", "b", "2001:db8:b::1/64")
	l.sysctl("isp", "net/ipv6/conf/all/forwarding", "1")
	for _, s := range []struct{ site, lan, x string }{{"siteA", "lanA", "a"}, {"siteB", "lanB", "b"}} {
		l.addr(s.site, "wan", "2001:db8:"+s.x+"::2/64")
		l.route(s.site, "::/0", "2001:db8:"+s.x+"::1")
		l.addr(s.site, "br-lan", "fd00:"+s.x+"::1/64")
		l.addr(s.lan, "eth0", "fd00:"+s.x+"::100/64")
		l.route(s.lan, "::/0", "fd00:"+s.x+"::1")
	}
	cfg := map[string]string{"siteA": exampleFile("ip6ip6-site-a"), "siteB": exampleFile("ip6ip6-site-b")}
	hosts := []string{"siteA", "siteB"}
	before := l.snapshots(hosts...)
	_, err := l.tunneld("siteA", "apply", "-c", cfg["siteA"])
	skipWithoutDriver(t, err)
	l.mustTunneld("siteB", "apply", "-c", cfg["siteB"])
	if err := l.ping("lanA", "fd00:b::100", "-6"); err != nil {
		t.Error(err)
	}
	if err := l.tcp("lanB", "lanA", "fd00:a::100"); err != nil {
		t.Error(err)
	}
	checkTunnel(t, l, "siteA", cfg["siteA"], "site-b", 1452)
	checkTunnel(t, l, "siteB", cfg["siteB"], "site-a", 1452)
	for _, n := range hosts {
		checkNoDrops(t, l, n, cfg[n])
	}
	for _, n := range hosts {
		l.downRestores(n, cfg[n], before[n])
	}
}

// setHosts replaces /etc/hosts for the test and puts it back after.
func setHosts(t *testing.T, lines string) {
	t.Helper()
	old, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n"+lines), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if old != nil {
			os.WriteFile("/etc/hosts", old, 0o644)
		}
	})
}

// sixIn4Policy is 6in4-he.toml's tunnel for a router whose ISP routes
// IPv6 too: only the broker's prefix goes through the tunnel, by IPv6
// policy rules (from the routed /48, and from the tunnel's own address)
// into a table of the tunnel's.
const sixIn4Policy = `
[global]
ipv6_forward = true

[tables]
he = 100

[tunnel.6in4-henet]
mode = "sit"
local = "wan"
remote = "203.0.113.1"
address = "2001:db8:1::2/64"

[[route]]
to = "default"
dev = "6in4-henet"
table = "he"

[[rule]]
from = "2001:db8:100::/48"
table = "he"

[[rule]]
from = "2001:db8:1::2"
table = "he"
`

// TestExample6in4Policy: 6in4 with IPv6 policy rules and a table of its
// own instead of the main table's default route. The LAN host reaches the
// IPv6 internet through the tunnel, a second apply changes nothing, and
// down leaves the router as it was.
func TestExample6in4Policy(t *testing.T) {
	l := newLab(t)
	sixIn4Lab(l)
	router := filepath.Join(l.dir, "6in4-policy.toml")
	if err := os.WriteFile(router, []byte(sixIn4Policy), 0o644); err != nil {
		t.Fatal(err)
	}
	broker := exampleFile("6in4-broker")
	before := l.snapshot("router")
	_, err := l.tunneld("broker", "apply", "-c", broker)
	skipWithoutDriver(t, err)
	l.mustTunneld("router", "apply", "-c", router)
	if err := l.ping("lan", "2001:db8:ffff::100", "-6"); err != nil {
		t.Error(err)
	}
	if err := l.tcp("lan", "inet", "2001:db8:ffff::100"); err != nil {
		t.Error(err)
	}
	if out := l.mustTunneld("router", "apply", "-c", router); !strings.HasPrefix(out, "# nothing to do") {
		t.Errorf("second apply changed:\n%s", out)
	}
	checkTunnel(t, l, "router", router, "6in4-henet", 1480)
	checkNoDrops(t, l, "router", router)
	l.mustTunneld("router", "down", "-c", router)
	l.mustTunneld("broker", "down", "-c", broker)
	if got := l.snapshot("router"); got != before {
		t.Errorf("router after down differs:\n--- before\n%s--- after\n%s", before, got)
	}
}

// dsliteLab is the DS-Lite topology: the LAN host (192.168.1.100) behind
// the router (br-lan, and wan 2001:db8:a::2 behind the ISP); the ISP
// routes IPv6 only, to the AFTR (2001:db8:b::2), whose eth1 leads to an
// IPv4 host on the internet (203.0.113.100).
func dsliteLab(l *lab) {
	l.wire("lan", "eth0", "router", "br-lan")
	l.wire("router", "wan", "isp", "r")
	l.wire("aftr", "eth0", "isp", "a")
	l.wire("aftr", "eth1", "inet", "eth0")
	l.addr("isp", "r", "2001:db8:a::1/64")
	l.addr("isp", "a", "2001:db8:b::1/64")
	l.sysctl("isp", "net/ipv6/conf/all/forwarding", "1")
	l.addr("router", "wan", "2001:db8:a::2/64")
	l.route("router", "::/0", "2001:db8:a::1")
	l.addr("router", "br-lan", "192.168.1.1/24")
	l.addr("lan", "eth0", "192.168.1.100/24")
	l.route("lan", "0.0.0.0/0", "192.168.1.1")
	l.addr("aftr", "eth0", "2001:db8:b::2/64")
	l.route("aftr", "::/0", "2001:db8:b::1")
	l.addr("aftr", "eth1", "203.0.113.1/24")
	l.addr("inet", "eth0", "203.0.113.100/24")
}
