// Package resolve looks up the DNS names of tunnel peers and says how long
// an answer may be kept.
package resolve

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Resolver looks up a name's addresses. ttl is how long the answer may be
// kept; 0 means unknown (the caller uses its own interval).
type Resolver interface {
	Resolve(ctx context.Context, name string) (addrs []netip.Addr, ttl time.Duration, err error)
}

// System resolves with the system's resolver (so /etc/hosts and the
// configured servers both count) and asks the first nameserver of
// /etc/resolv.conf directly for the answer's TTL.
type System struct {
	// ResolvConf is the resolver configuration (default /etc/resolv.conf).
	ResolvConf string
}

// Resolve implements Resolver.
func (s System) Resolve(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, 0, err
	}
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = ip.Unmap()
	}
	return out, s.ttl(ctx, name), nil
}

// ttl asks the first nameserver for the smallest TTL among the A and AAAA
// answers; 0 when it cannot tell (no server, no answer, the name is only in
// /etc/hosts).
func (s System) ttl(ctx context.Context, name string) time.Duration {
	path := s.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	server := firstNameserver(path)
	if !server.IsValid() {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(server, 53).String())
	if err != nil {
		return 0
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var best uint32
	found := false
	for i, typ := range []uint16{typeA, typeAAAA} {
		if t, ok := query(conn, name, typ, uint16(0x7a00+i)); ok && (!found || t < best) {
			best, found = t, true
		}
	}
	if found && best == 0 {
		// "Do not keep it": ask again as soon as allowed. 0 itself
		// would read as unknown, and the caller's own interval apply.
		return zeroTTL
	}
	return time.Duration(best) * time.Second
}

// LookupTimeout bounds one lookup of a name, for the daemon and the
// commands alike.
const LookupTimeout = 5 * time.Second

// zeroTTL is what a TTL of 0 is reported as: the shortest one there is.
const zeroTTL = time.Second

// query sends the question for name and type typ with ID id on conn and
// reads replies until one to it comes: its smallest TTL among the answers
// of type typ, and whether there was one. Other messages (another ID, not a
// response, malformed) are skipped.
func query(conn net.Conn, name string, typ uint16, id uint16) (uint32, bool) {
	b, err := newQuery(id, name, typ)
	if err != nil {
		return 0, false
	}
	if _, err := conn.Write(b); err != nil {
		return 0, false
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return 0, false
		}
		if ttl, ok, err := minTTL(buf[:n], id, typ); err == nil {
			return ttl, ok
		}
	}
}

func firstNameserver(path string) netip.Addr {
	b, err := os.ReadFile(path)
	if err != nil {
		return netip.Addr{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				return a
			}
		}
	}
	return netip.Addr{}
}
