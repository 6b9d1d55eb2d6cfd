package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// packet is an outer IPv4 packet seen on the wire with, for IPIP and GRE,
// the addresses of the packet inside.
type packet struct {
	proto            uint8
	src, dst         netip.Addr
	ttl              uint8
	df               bool
	innerSrc, innerD netip.Addr
}

func (p packet) String() string {
	return fmt.Sprintf("proto %d %s > %s ttl %d df %v, inner %s > %s", p.proto, p.src, p.dst, p.ttl, p.df, p.innerSrc, p.innerD)
}

// capture opens a packet socket on dev (in the calling thread's network
// namespace) that sees every frame.
func capture(dev string) (int, error) {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return -1, err
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

// htons is v in network byte order, as the socket calls take a protocol
// number: swapped on a little-endian machine, as is on a big-endian one.
func htons(v uint16) uint16 { return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v)) }

// readPackets collects encapsulated packets from fd until d passes.
func readPackets(fd int, d time.Duration) []packet {
	var out []packet
	buf := make([]byte, 65536)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < 14+20 {
			continue
		}
		if binary.BigEndian.Uint16(buf[12:14]) != unix.ETH_P_IP {
			continue
		}
		if p, ok := parseOuter(buf[14:n]); ok {
			out = append(out, p)
		}
	}
	return out
}

// parseOuter decodes an IPv4 packet carrying IPIP (4) or GRE (47).
func parseOuter(b []byte) (packet, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return packet{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	p := packet{proto: b[9], ttl: b[8], df: b[6]&0x40 != 0,
		src: netip.AddrFrom4([4]byte(b[12:16])), dst: netip.AddrFrom4([4]byte(b[16:20]))}
	inner := b[ihl:]
	switch p.proto {
	case 4:
	case 47:
		if len(inner) < 4 || binary.BigEndian.Uint16(inner[2:4]) != unix.ETH_P_IP {
			return packet{}, false
		}
		hl := 4
		flags := binary.BigEndian.Uint16(inner[0:2])
		if flags&0x8000 != 0 {
			hl += 4 // checksum
		}
		if flags&0x2000 != 0 {
			hl += 4 // key
		}
		if flags&0x1000 != 0 {
			hl += 4 // sequence
		}
		inner = inner[hl:]
	default:
		return packet{}, false
	}
	if len(inner) < 20 {
		return packet{}, false
	}
	p.innerSrc = netip.AddrFrom4([4]byte(inner[12:16]))
	p.innerD = netip.AddrFrom4([4]byte(inner[16:20]))
	return p, true
}

// sendIPIP sends an IPIP packet from the calling thread's namespace: the
// kernel writes the outer header (src chosen by routing, or spoofed by
// binding), the payload is an inner ICMP echo request innerSrc > innerDst.
func sendIPIP(outerDst, innerSrc, innerDst netip.Addr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, 4)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	inner := make([]byte, 28)
	inner[0], inner[8], inner[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(inner[2:], 28)
	copy(inner[12:16], innerSrc.AsSlice())
	copy(inner[16:20], innerDst.AsSlice())
	binary.BigEndian.PutUint16(inner[10:], checksum(inner[:20]))
	inner[20] = 8 // echo request
	binary.BigEndian.PutUint16(inner[22:], checksum(inner[20:]))
	return unix.Sendto(fd, inner, 0, &unix.SockaddrInet4{Addr: outerDst.As4()})
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
