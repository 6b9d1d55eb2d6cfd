package resolve

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/netnstest"
)

// dnsmasqRecords are the names the test server holds: a TTL for each (0
// for one), a CNAME in front of one, a name with an IPv4 address only.
var dnsmasqRecords = []string{
	"--host-record=peer.test,198.51.100.2,2001:db8::2,300",
	"--host-record=short.test,198.51.100.3,2001:db8::3,7",
	"--host-record=v4only.test,198.51.100.4,600",
	"--host-record=zero.test,198.51.100.5,0",
	"--cname=alias.test,peer.test,60",
}

// startDnsmasq runs dnsmasq on 127.0.0.1:port, answering only from
// dnsmasqRecords, until the test ends. It runs in the network namespace of
// the calling thread.
func startDnsmasq(t *testing.T, port int) {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/dnsmasq") // not on a user's PATH
	}
	if err != nil {
		t.Skip("dnsmasq is not installed (apt-get install dnsmasq-base; make test-unit does so as root)")
	}
	args := append([]string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + strconv.Itoa(port), "--pid-file=", "--user=nobody"},
		dnsmasqRecords...)
	cmd := exec.Command(bin, args...)
	out := filepath.Join(t.TempDir(), "dnsmasq.log")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("dnsmasq's output:\n%s", b)
		}
	})
}

// freeUDPPort is a loopback UDP port nothing listens on right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestQueryDnsmasq asks a real DNS server for the records of
// dnsmasqRecords: its replies (name compression, a CNAME before the
// addresses, empty answers, refusals) read as the records say.
func TestQueryDnsmasq(t *testing.T) {
	port := freeUDPPort(t)
	startDnsmasq(t, port)
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(name string, typ uint16, id uint16) (uint32, bool) {
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		return query(conn, name, typ, id)
	}
	// Wait for the server: a reply to a name it holds.
	deadline := time.Now().Add(10 * time.Second)
	for id := uint16(1); ; id++ {
		if _, ok := ask("peer.test", typeA, id); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dnsmasq did not answer within 10s")
		}
	}
	tests := []struct {
		name   string
		typ    uint16
		ttl    uint32
		hasTTL bool
	}{
		{"peer.test", typeA, 300, true},
		{"peer.test.", typeAAAA, 300, true},
		{"short.test", typeA, 7, true},
		{"short.test", typeAAAA, 7, true},
		{"alias.test", typeA, 300, true}, // the CNAME's 60 is not an address's
		{"alias.test", typeAAAA, 300, true},
		{"v4only.test", typeA, 600, true},
		{"v4only.test", typeAAAA, 0, false}, // no such record: an empty answer
		{"missing.test", typeA, 0, false},   // no upstream: refused
	}
	for i, tt := range tests {
		ttl, ok := ask(tt.name, tt.typ, uint16(0x100+i))
		if ttl != tt.ttl || ok != tt.hasTTL {
			t.Errorf("query(%s, type %d) = %d, %v; want %d, %v", tt.name, tt.typ, ttl, ok, tt.ttl, tt.hasTTL)
		}
	}
}

// TestSystemTTLDnsmasq runs the whole TTL lookup, from resolv.conf to
// port 53, against dnsmasq in a network namespace of its own: the smaller
// of the A and AAAA answers' TTLs.
func TestSystemTTLDnsmasq(t *testing.T) {
	netnstest.Enter(t)
	startDnsmasq(t, 53)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := System{ResolvConf: conf}
	var got time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if got = s.ttl(context.Background(), "peer.test"); got != 0 {
			break
		}
	}
	if got != 300*time.Second {
		t.Errorf("ttl(peer.test) = %v, want 5m0s", got)
	}
	if got := s.ttl(context.Background(), "v4only.test"); got != 600*time.Second {
		t.Errorf("ttl(v4only.test) = %v, want 10m0s (the A record's; there is no AAAA)", got)
	}
	// TTL 0, "do not keep it", is the shortest TTL, not "unknown" (0),
	// which would have the answer kept for the configured interval.
	if got := s.ttl(context.Background(), "zero.test"); got != time.Second {
		t.Errorf("ttl(zero.test) = %v, want %v", got, time.Second)
	}
}
