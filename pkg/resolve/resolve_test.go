package resolve

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestTTLFromServer runs a one-shot DNS server on loopback and checks that
// the smallest TTL of the answers is reported.
func TestTTLFromServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := dnsmessage.Message{Header: dnsmessage.Header{ID: q.Header.ID, Response: true}, Questions: q.Questions}
			if q.Questions[0].Type == dnsmessage.TypeA {
				h := dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
				h.TTL = 300
				r.Answers = append(r.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}})
				h.TTL = 42
				r.Answers = append(r.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 2}}})
			}
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	// ttl() asks port 53 of the configured server; query() is tested on
	// this server's port directly.
	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	got, ok := query(conn, "peer.example", dnsmessage.TypeA, 7)
	if !ok || got != 42 {
		t.Fatalf("query = %d, %v; want 42, true", got, ok)
	}
	if _, ok := query(conn, "peer.example", dnsmessage.TypeAAAA, 8); ok {
		t.Fatal("AAAA query without answers reported a TTL")
	}
}

func TestFirstNameserver(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# comment\nsearch lan\nnameserver bogus\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"), 0o644)
	if got := firstNameserver(p); got != netip.MustParseAddr("192.0.2.53") {
		t.Fatalf("firstNameserver = %v", got)
	}
	if got := firstNameserver(filepath.Join(t.TempDir(), "missing")); got.IsValid() {
		t.Fatalf("missing file gave %v", got)
	}
}

func TestSystemResolvesLocalhost(t *testing.T) {
	s := System{ResolvConf: filepath.Join(t.TempDir(), "none")}
	addrs, ttl, err := s.Resolve(context.Background(), "localhost")
	if err != nil || len(addrs) == 0 || ttl != 0 {
		t.Fatalf("Resolve(localhost) = %v, %v, %v", addrs, ttl, err)
	}
}
