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

// TestTTLFromServer runs a DNS server on loopback and checks that query
// reports the smallest TTL of the answers of the asked type, after skipping
// what is not the reply: garbage, a reply to another query, a message that
// is not a response.
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
			if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
				continue
			}
			name := q.Questions[0].Name.String()
			r := reply(q.Questions[0].Type)
			r.ID = q.ID
			r.Questions[0].Name = q.Questions[0].Name
			if q.Questions[0].Type == dnsmessage.TypeA {
				r.Answers = []dnsmessage.Resource{rrCNAME(name, "edge.cdn.example.", 5), rrA("edge.cdn.example.", 300), rrAAAA("edge.cdn.example.", 1), rrA("edge.cdn.example.", 42)}
			}
			// Not on the test's goroutine: no t.Fatal. The query waits
			// for the reply in vain if one of these fails to pack.
			b, _ := r.Pack()
			other := *r
			other.ID++
			otherB, _ := other.Pack()
			notResponse := *r
			notResponse.Response = false
			notResponseB, _ := notResponse.Pack()
			for _, m := range [][]byte{{0x7a, 0x00, 0x80}, otherB, notResponseB, b[:len(b)-1], b} {
				pc.WriteTo(m, from)
			}
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
	got, ok := query(conn, "peer.example", typeA, 7)
	if !ok || got != 42 {
		t.Fatalf("query = %d, %v; want 42, true", got, ok)
	}
	if _, ok := query(conn, "peer.example", typeAAAA, 8); ok {
		t.Fatal("AAAA query without answers reported a TTL")
	}
	if _, ok := query(conn, "peer..example", typeA, 9); ok {
		t.Fatal("query for a name with an empty label reported a TTL")
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
