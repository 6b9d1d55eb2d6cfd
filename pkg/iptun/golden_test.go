package iptun

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// goldenCase is one entry of testdata/golden.txt.
type goldenCase struct {
	name, kind, cmd string
	data            []byte
}

// readGolden parses testdata/golden.txt: "# COMMAND" comment lines, each
// followed by a "NAME KIND HEX" line.
func readGolden(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out []goldenCase
		cmd string
	)
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			cmd = strings.TrimSpace(strings.TrimPrefix(line, "#"))
		default:
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("golden line %q: want NAME KIND HEX", line)
			}
			b, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatalf("golden %s: %v", f[0], err)
			}
			out = append(out, goldenCase{name: f[0], kind: f[1], cmd: cmd, data: b})
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// goldenWant is the driver value each golden command describes.
var goldenWant = map[string]rtnetlink.LinkDriver{
	// ip link add gt0 type ipip local 192.0.2.1 remote 198.51.100.2 ttl 64 tos inherit pmtudisc dev lo
	"ipip-pmtudisc": &IPIP{Link: 1, Local: v4a, Remote: v4b, TTL: 64, TOS: 1, PMTUDisc: true},
	// ip link add gt0 type ipip local 192.0.2.1 remote 198.51.100.2 ttl inherit nopmtudisc
	"ipip-inherit-nopmtudisc": &IPIP{Local: v4a, Remote: v4b},
	// ip link add gt0 type ipip remote 198.51.100.2 mode ipip tos 0x10 fwmark 0x1234 encap fou encap-sport 5555 encap-dport 4444 encap-csum
	"ipip-mode-fou": &IPIP{Remote: v4b, TOS: 0x10, PMTUDisc: true, Proto: unix.IPPROTO_IPIP, FwMark: 0x1234,
		Encap: Encap{Type: EncapTypeFOU, Flags: EncapFlagCsum, SPort: 5555, DPort: 4444}},
	// ip link add gt0 type ipip local 192.0.2.1 mode mplsip ttl 255
	"ipip-mplsip": &IPIP{Local: v4a, TTL: 255, PMTUDisc: true, Proto: unix.IPPROTO_MPLS},
	// ip link add gt0 type gre local 192.0.2.1 remote 198.51.100.2 key 42 ttl 64 noignore-df
	"gre-key": &GRE{Local: v4a, Remote: v4b, TTL: 64, PMTUDisc: true,
		IFlags: GREFlagKey, OFlags: GREFlagKey, IKey: 42, OKey: 42},
	// ip link add gt0 type gre local 192.0.2.1 remote 198.51.100.2 ikey 1 okey 0.0.1.2 iseq ocsum ttl 255 tos 0x20 dev lo fwmark 7 noignore-df
	"gre-ikey-okey": &GRE{Link: 1, Local: v4a, Remote: v4b, TTL: 255, TOS: 0x20, PMTUDisc: true,
		IFlags: GREFlagKey | GREFlagSeq, OFlags: GREFlagKey | GREFlagCsum, IKey: 1, OKey: 0x0102, FwMark: 7},
	// ip link add gt0 type gre remote 198.51.100.2 nopmtudisc ignore-df tos inherit encap gue encap-dport 6080
	"gre-ignore-df": &GRE{Remote: v4b, TOS: 1, IgnoreDF: true, Encap: Encap{Type: EncapTypeGUE, DPort: 6080}},
	// ip link add gt0 type sit local 192.0.2.1 remote 198.51.100.2
	"sit-local-remote": &SIT{Local: v4a, Remote: v4b, PMTUDisc: true},
	// ip link add gt0 type sit local 192.0.2.1 mode ip6ip isatap ttl 64 dev lo
	"sit-isatap": &SIT{Link: 1, Local: v4a, TTL: 64, PMTUDisc: true, Proto: unix.IPPROTO_IPV6, Flags: SITFlagISATAP},
	// ip link add gt0 type ip6tnl mode ipip6 local 2001:db8::1 remote 2001:db8::2 encaplimit none
	"ip6tnl-ipip6-none": &IP6Tnl{Local: v6a, Remote: v6b, TTL: 64, EncapLimit: 4, Flags: IP6TnlFlagIgnEncapLimit,
		Proto: unix.IPPROTO_IPIP, Encap: Encap{Flags: EncapFlagCsum6}},
	// ip link add gt0 type ip6tnl mode ip6ip6 local 2001:db8::1 remote 2001:db8::2 encaplimit none
	"ip6tnl-ip6ip6-none": &IP6Tnl{Local: v6a, Remote: v6b, TTL: 64, EncapLimit: 4, Flags: IP6TnlFlagIgnEncapLimit,
		Proto: unix.IPPROTO_IPV6, Encap: Encap{Flags: EncapFlagCsum6}},
	// ip link add gt0 type ip6tnl mode ip6ip6 local 2001:db8::1 remote 2001:db8::2 encaplimit 4 hoplimit 255 dev lo
	"ip6tnl-ip6ip6-limit4": &IP6Tnl{Link: 1, Local: v6a, Remote: v6b, TTL: 255, EncapLimit: 4,
		Proto: unix.IPPROTO_IPV6, Encap: Encap{Flags: EncapFlagCsum6}},
	// ip link add gt0 type ip6tnl mode any remote 2001:db8::2 tclass 0x12 flowlabel 0x12345 fwmark 9 allow-localremote noencap-udp6-csum
	"ip6tnl-any-flowinfo": &IP6Tnl{Remote: v6b, TTL: 64, EncapLimit: 4, FlowInfo: 0x12<<20 | 0x12345,
		Flags: IP6TnlFlagAllowLocalRemote, FwMark: 9},
	// ip link add gt0 type ip6tnl mode ip6ip6 remote 2001:db8::2 hoplimit inherit tclass inherit flowlabel inherit dscp inherit fwmark inherit encaplimit 0
	"ip6tnl-inherit": &IP6Tnl{Remote: v6b, Proto: unix.IPPROTO_IPV6, Encap: Encap{Flags: EncapFlagCsum6},
		Flags: IP6TnlFlagUseOrigTClass | IP6TnlFlagUseOrigFlowLabel | IP6TnlFlagRcvDSCPCopy | IP6TnlFlagUseOrigFwMark},
}

// TestGoldenIproute2 compares Encode with the IFLA_INFO_DATA payloads that
// iproute2 sent for the same configuration, attribute by attribute and in
// order, and decodes iproute2's payloads with Decode. On a big-endian
// machine (make test-cross) the payloads are first put in its byte order
// (nativeGolden).
func TestGoldenIproute2(t *testing.T) {
	cases := readGolden(t)
	seen := map[string]bool{}
	for _, gc := range cases {
		seen[gc.name] = true
		t.Run(gc.name, func(t *testing.T) {
			gc.data = nativeGolden(t, gc.kind, gc.data)
			want, ok := goldenWant[gc.name]
			if !ok {
				t.Fatalf("no expected value for golden case (command: %s)", gc.cmd)
			}
			if want.Kind() != gc.kind {
				t.Fatalf("kind = %q, iproute2 sent %q", want.Kind(), gc.kind)
			}

			got, err := encode(want)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if diff := cmp.Diff(attrList(t, gc.data), attrList(t, got)); diff != "" {
				t.Errorf("Encode differs from %q (-want +got):\n%s", gc.cmd, diff)
			} else if !bytes.Equal(gc.data, got) {
				t.Errorf("Encode bytes differ from %q:\nwant %x\n got %x", gc.cmd, gc.data, got)
			}

			dec, err := decode(want, gc.data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(want, dec, cmpAddr); diff != "" {
				t.Errorf("Decode of %q (-want +got):\n%s", gc.cmd, diff)
			}
		})
	}
	for name := range goldenWant {
		if !seen[name] {
			t.Errorf("golden case %s missing from testdata/golden.txt", name)
		}
	}
	// These configurations must always stay covered by golden bytes.
	for _, name := range []string{"ipip-pmtudisc", "ipip-inherit-nopmtudisc", "gre-key", "gre-ikey-okey",
		"sit-local-remote", "ip6tnl-ipip6-none", "ip6tnl-ip6ip6-none", "ip6tnl-ip6ip6-limit4"} {
		if !seen[name] {
			t.Errorf("required golden case %s missing", name)
		}
	}
}
