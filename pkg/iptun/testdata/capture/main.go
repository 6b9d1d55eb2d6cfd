// Command capture regenerates ../golden.txt: it runs each "ip link add"
// command below under strace in a throwaway network namespace, takes the
// RTM_NEWLINK request iproute2 sends, and prints the kind and the payload
// of its IFLA_LINKINFO/IFLA_INFO_DATA attribute as hex. The request is
// captured even when the kernel lacks the tunnel driver and refuses it.
//
// Run as root with strace, unshare and iproute2 installed, from the
// repository root:
//
//	go run ./pkg/iptun/testdata/capture > pkg/iptun/testdata/golden.txt
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/mdlayher/netlink"
)

// cases are the golden commands; pkg/iptun's golden test holds the struct
// each one must decode to, keyed by name.
var cases = []struct{ name, cmd string }{
	{"ipip-pmtudisc", "ip link add gt0 type ipip local 192.0.2.1 remote 198.51.100.2 ttl 64 tos inherit pmtudisc dev lo"},
	{"ipip-inherit-nopmtudisc", "ip link add gt0 type ipip local 192.0.2.1 remote 198.51.100.2 ttl inherit nopmtudisc"},
	{"ipip-mode-fou", "ip link add gt0 type ipip remote 198.51.100.2 mode ipip tos 0x10 fwmark 0x1234 encap fou encap-sport 5555 encap-dport 4444 encap-csum"},
	{"ipip-mplsip", "ip link add gt0 type ipip local 192.0.2.1 mode mplsip ttl 255"},
	{"gre-key", "ip link add gt0 type gre local 192.0.2.1 remote 198.51.100.2 key 42 ttl 64 noignore-df"},
	{"gre-ikey-okey", "ip link add gt0 type gre local 192.0.2.1 remote 198.51.100.2 ikey 1 okey 0.0.1.2 iseq ocsum ttl 255 tos 0x20 dev lo fwmark 7 noignore-df"},
	{"gre-ignore-df", "ip link add gt0 type gre remote 198.51.100.2 nopmtudisc ignore-df tos inherit encap gue encap-dport 6080"},
	{"sit-local-remote", "ip link add gt0 type sit local 192.0.2.1 remote 198.51.100.2"},
	{"sit-isatap", "ip link add gt0 type sit local 192.0.2.1 mode ip6ip isatap ttl 64 dev lo"},
	{"ip6tnl-ipip6-none", "ip link add gt0 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 encaplimit none"},
	{"ip6tnl-ip6ip6-none", "ip link add gt0 type ip6tnl mode ip6ip6 local 2001:db8::1 remote 2001:db8::2 encaplimit none"},
	{"ip6tnl-ip6ip6-limit4", "ip link add gt0 type ip6tnl mode ip6ip6 local 2001:db8::1 remote 2001:db8::2 encaplimit 4 hoplimit 255 dev lo"},
	{"ip6tnl-any-flowinfo", "ip link add gt0 type ip6tnl mode any remote 2001:db8::2 tclass 0x12 flowlabel 0x12345 fwmark 9 allow-localremote noencap-udp6-csum"},
	{"ip6tnl-inherit", "ip link add gt0 type ip6tnl mode ip6ip6 remote 2001:db8::2 hoplimit inherit tclass inherit flowlabel inherit dscp inherit fwmark inherit encaplimit 0"},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

func run() error {
	version, err := exec.Command("ip", "-V").Output()
	if err != nil {
		return fmt.Errorf("ip -V: %w", err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "# Golden IFLA_INFO_DATA payloads sent by iproute2's \"ip link add\".")
	fmt.Fprintln(w, "# Format: NAME KIND HEX, each preceded by the command that produced it.")
	fmt.Fprintln(w, "# Regenerate as root (needs strace, unshare, iproute2), from the repository root:")
	fmt.Fprintln(w, "#   go run ./pkg/iptun/testdata/capture > pkg/iptun/testdata/golden.txt")
	fmt.Fprintf(w, "# Captured with %s on a little-endian host.\n", strings.TrimSpace(string(version)))
	for _, c := range cases {
		kind, data, err := capture(c.cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Fprintf(w, "\n# %s\n%s %s %s\n", c.cmd, c.name, kind, hex.EncodeToString(data))
	}
	return w.Flush()
}

// capture runs cmd under strace and returns the link kind and the
// IFLA_INFO_DATA payload of the RTM_NEWLINK request it sent.
func capture(cmd string) (string, []byte, error) {
	f, err := os.CreateTemp("", "iptun-strace-*")
	if err != nil {
		return "", nil, err
	}
	f.Close()
	defer os.Remove(f.Name())

	args := append([]string{"--net", "strace", "-qq", "-o", f.Name(),
		"-e", "trace=sendmsg", "-e", "write=all", "-xx"}, strings.Fields(cmd)...)
	// ip fails when the kernel has no driver for the kind; the request has
	// been sent by then, so its exit status does not matter.
	_ = exec.Command("unshare", args...).Run()

	out, err := os.ReadFile(f.Name())
	if err != nil {
		return "", nil, err
	}
	var found [][]byte
	for _, buf := range hexDumps(string(out)) {
		msg, ok := newLinkRequest(buf)
		if ok {
			found = append(found, msg)
		}
	}
	if len(found) != 1 {
		return "", nil, fmt.Errorf("found %d RTM_NEWLINK requests, want 1", len(found))
	}
	return infoData(found[0])
}

// hexDumps returns the buffers of strace's "-e write=" hex dumps. A dump
// starts with " * N bytes in buffer K" and continues with lines like
// " | 00000  30 00 00 00 12 00 01 00  d6 ee 02 6b 00 00 00 00  0......k |".
func hexDumps(out string) [][]byte {
	var bufs [][]byte
	var cur []byte
	flush := func() {
		if cur != nil {
			bufs = append(bufs, cur)
			cur = nil
		}
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, " * "):
			flush()
			cur = []byte{}
		case strings.HasPrefix(line, " | ") && cur != nil:
			// " | " + 5-digit offset + 2 spaces, then 16 "xx " columns
			// with one extra space in the middle (49 characters).
			const start, width = 3 + 5 + 2, 49
			if len(line) < start+width {
				continue
			}
			for _, tok := range strings.Fields(line[start : start+width]) {
				b, err := hex.DecodeString(tok)
				if err == nil && len(b) == 1 {
					cur = append(cur, b[0])
				}
			}
		default:
			flush()
		}
	}
	flush()
	return bufs
}

// newLinkRequest returns the attributes of buf if it is an RTM_NEWLINK
// netlink message (header 16 bytes, struct ifinfomsg 16 bytes).
func newLinkRequest(buf []byte) ([]byte, bool) {
	const rtmNewLink = 16
	if len(buf) < 32 || binary.NativeEndian.Uint16(buf[4:6]) != rtmNewLink {
		return nil, false
	}
	n := int(binary.NativeEndian.Uint32(buf[0:4]))
	if n > len(buf) || n < 32 {
		return nil, false
	}
	return buf[32:n], true
}

// infoData finds IFLA_LINKINFO (18) and returns its IFLA_INFO_KIND (1)
// string and IFLA_INFO_DATA (2) payload.
func infoData(attrs []byte) (string, []byte, error) {
	const (
		iflaLinkInfo  = 18
		iflaInfoKind  = 1
		iflaInfoData  = 2
		typeFlagsMask = netlink.Nested | netlink.NetByteOrder
	)
	as, err := netlink.UnmarshalAttributes(attrs)
	if err != nil {
		return "", nil, err
	}
	for _, a := range as {
		if a.Type&^typeFlagsMask != iflaLinkInfo {
			continue
		}
		info, err := netlink.UnmarshalAttributes(a.Data)
		if err != nil {
			return "", nil, err
		}
		var kind string
		var data []byte
		for _, ia := range info {
			switch ia.Type &^ typeFlagsMask {
			case iflaInfoKind:
				kind = strings.TrimRight(string(ia.Data), "\x00")
			case iflaInfoData:
				data = ia.Data
			}
		}
		if kind == "" || data == nil {
			return "", nil, errors.New("IFLA_LINKINFO without kind or data")
		}
		return kind, data, nil
	}
	return "", nil, errors.New("no IFLA_LINKINFO in request")
}
