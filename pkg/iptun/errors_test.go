package iptun

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		d    rtnetlink.LinkDriver
		want string
	}{
		{"ipip ipv6 local", &IPIP{Local: v6a}, "iptun: ipip local address 2001:db8::1 is not IPv4"},
		{"ipip 4in6 remote", &IPIP{Remote: netip.MustParseAddr("::ffff:192.0.2.1")}, "iptun: ipip remote address ::ffff:192.0.2.1 is not IPv4"},
		{"ipip ttl nopmtudisc", &IPIP{TTL: 64}, "iptun: ipip ttl 64 requires pmtudisc"},
		{"sit ipv6 remote", &SIT{Remote: v6b, PMTUDisc: true}, "iptun: sit remote address 2001:db8::2 is not IPv4"},
		{"sit ttl nopmtudisc", &SIT{TTL: 1}, "iptun: sit ttl 1 requires pmtudisc"},
		{"gre ipv6 local", &GRE{Local: v6a}, "iptun: gre local address 2001:db8::1 is not IPv4"},
		{"gre ignore-df pmtudisc", &GRE{IgnoreDF: true, PMTUDisc: true}, "iptun: gre ignore-df requires nopmtudisc"},
		{"ip6tnl ipv4 remote", &IP6Tnl{Remote: v4b}, "iptun: ip6tnl remote address 198.51.100.2 is not IPv6"},
		{"ip6tnl zone", &IP6Tnl{Local: netip.MustParseAddr("fe80::1%eth0")}, "iptun: ip6tnl local address fe80::1%eth0 has a zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encode(tt.d)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Encode error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestEncodeAnyAddress checks that an explicit unspecified address is sent
// like the zero value (left out, as iproute2 does) and decodes to it.
func TestEncodeAnyAddress(t *testing.T) {
	tests := []struct {
		name      string
		d, zeroed rtnetlink.LinkDriver
	}{
		{"ipip", &IPIP{Local: netip.IPv4Unspecified(), Remote: v4b}, &IPIP{Remote: v4b}},
		{"gre", &GRE{Local: v4a, Remote: netip.IPv4Unspecified()}, &GRE{Local: v4a}},
		{"ip6tnl", &IP6Tnl{Local: netip.IPv6Unspecified(), Remote: v6b}, &IP6Tnl{Remote: v6b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encode(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			want, err := encode(tt.zeroed)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(attrList(t, want), attrList(t, got)); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			dec, err := decode(tt.d, got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.zeroed, dec, cmpAddr); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	u16 := []byte{1, 2}
	tests := []struct {
		name string
		d    rtnetlink.LinkDriver
		a    netlink.Attribute
	}{
		{"ipip short local", &IPIP{}, netlink.Attribute{Type: iflaIPTunLocal, Data: []byte{192, 0, 2}}},
		{"ipip v6 remote", &IPIP{}, netlink.Attribute{Type: iflaIPTunRemote, Data: make([]byte, 16)}},
		{"ipip u16 ttl", &IPIP{}, netlink.Attribute{Type: iflaIPTunTTL, Data: u16}},
		{"ipip short port", &IPIP{}, netlink.Attribute{Type: iflaIPTunEncapSport, Data: []byte{1}}},
		{"sit u32 flags", &SIT{}, netlink.Attribute{Type: iflaIPTunFlags, Data: make([]byte, 4)}},
		{"gre short ikey", &GRE{}, netlink.Attribute{Type: iflaGREIKey, Data: u16}},
		{"gre long iflags", &GRE{}, netlink.Attribute{Type: iflaGREIFlags, Data: make([]byte, 4)}},
		{"gre u16 link", &GRE{}, netlink.Attribute{Type: iflaGRELink, Data: u16}},
		{"ip6tnl v4 local", &IP6Tnl{}, netlink.Attribute{Type: iflaIPTunLocal, Data: make([]byte, 4)}},
		{"ip6tnl short flowinfo", &IP6Tnl{}, netlink.Attribute{Type: iflaIPTunFlowInfo, Data: u16}},
		{"ip6tnl u16 flags", &IP6Tnl{}, netlink.Attribute{Type: iflaIPTunFlags, Data: u16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decode(tt.d, mustEncodeAttrs(t, tt.a)); err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
		})
	}
}

// TestDecodeKernelDump decodes attribute sets in the order and with the
// extra attributes the kernel's fill_info functions produce (6rd, ERSPAN,
// attributes unknown to this package, nested flags), which must be
// ignored without error.
func TestDecodeKernelDump(t *testing.T) {
	unknown := func(ae *netlink.AttributeEncoder) {
		ae.Bytes(99, []byte{1, 2, 3})
		ae.Bytes(netlink.Nested|98, nil)
		ae.Flag(97, true)
	}
	tests := []struct {
		name  string
		build func(ae *netlink.AttributeEncoder)
		want  rtnetlink.LinkDriver
	}{
		{
			name: "sit",
			build: func(ae *netlink.AttributeEncoder) {
				ae.Uint32(iflaIPTunLink, 2)
				ae.Bytes(iflaIPTunLocal, v4a.AsSlice())
				ae.Bytes(iflaIPTunRemote, []byte{0, 0, 0, 0})
				ae.Uint8(iflaIPTunTTL, 64)
				ae.Uint8(iflaIPTunTOS, 1)
				ae.Uint8(iflaIPTunPMTUDisc, 1)
				ae.Uint8(iflaIPTunProto, unix.IPPROTO_IPV6)
				ae.Uint16(iflaIPTunFlags, SITFlagISATAP)
				ae.Uint32(iflaIPTunFwMark, 3)
				ae.Bytes(iflaIPTun6RDPrefix, netip.MustParseAddr("2002::").AsSlice())
				ae.Bytes(iflaIPTun6RDRelayPrefix, []byte{0, 0, 0, 0})
				ae.Uint16(iflaIPTun6RDPrefixLen, 16)
				ae.Uint16(iflaIPTun6RDRelayPrefixLen, 0)
				ae.Uint16(iflaIPTunEncapType, EncapTypeFOU)
				ae.Bytes(iflaIPTunEncapSport, []byte{0x15, 0xb3})
				ae.Bytes(iflaIPTunEncapDport, []byte{0x11, 0x5c})
				ae.Uint16(iflaIPTunEncapFlags, EncapFlagCsum)
				unknown(ae)
			},
			want: &SIT{Link: 2, Local: v4a, TTL: 64, TOS: 1, PMTUDisc: true, Proto: unix.IPPROTO_IPV6,
				Flags: SITFlagISATAP, FwMark: 3, Encap: Encap{Type: EncapTypeFOU, Flags: EncapFlagCsum, SPort: 5555, DPort: 4444}},
		},
		{
			name: "ipip external",
			build: func(ae *netlink.AttributeEncoder) {
				ae.Uint8(iflaIPTunProto, 0)
				ae.Flag(iflaIPTunCollectMetadata, true)
				unknown(ae)
			},
			want: &IPIP{},
		},
		{
			name: "gre",
			build: func(ae *netlink.AttributeEncoder) {
				ae.Uint32(iflaGRELink, 0)
				ae.Bytes(iflaGREIFlags, []byte{0x20, 0x00})
				ae.Bytes(iflaGREOFlags, []byte{0x00, 0x00})
				ae.Bytes(iflaGREIKey, []byte{0, 0, 0, 42})
				ae.Bytes(iflaGREOKey, []byte{0, 0, 0, 0})
				ae.Bytes(iflaGRELocal, []byte{0, 0, 0, 0})
				ae.Bytes(iflaGRERemote, v4b.AsSlice())
				ae.Uint8(iflaGRETTL, 0)
				ae.Uint8(iflaGRETOS, 0)
				ae.Uint8(iflaGREPMTUDisc, 0)
				ae.Uint8(iflaGREIgnoreDF, 1)
				ae.Uint32(iflaGREFwMark, 0)
				ae.Uint16(iflaGREEncapType, 0)
				ae.Bytes(iflaGREEncapSport, []byte{0, 0})
				ae.Bytes(iflaGREEncapDport, []byte{0, 0})
				ae.Uint16(iflaGREEncapFlags, 0)
				ae.Uint8(iflaGREEncapLimit, 4)
				ae.Uint32(iflaGREFlags, 1)
				ae.Bytes(iflaGREFlowInfo, []byte{0, 0, 0, 0})
				ae.Uint32(iflaGREErspanIndex, 1)
				ae.Uint8(iflaGREErspanVer, 2)
				ae.Uint8(iflaGREErspanDir, 1)
				ae.Uint16(iflaGREErspanHwid, 7)
				ae.Flag(iflaGRECollectMetadata, true)
				unknown(ae)
			},
			want: &GRE{Remote: v4b, IgnoreDF: true, IFlags: GREFlagKey, IKey: 42},
		},
		{
			name: "ip6tnl",
			build: func(ae *netlink.AttributeEncoder) {
				ae.Uint32(iflaIPTunLink, 0)
				ae.Bytes(iflaIPTunLocal, make([]byte, 16))
				ae.Bytes(iflaIPTunRemote, v6b.AsSlice())
				ae.Uint8(iflaIPTunTTL, 64)
				ae.Uint8(iflaIPTunEncapLimit, 4)
				ae.Bytes(iflaIPTunFlowInfo, []byte{0x01, 0x21, 0x23, 0x45})
				ae.Uint32(iflaIPTunFlags, IP6TnlFlagIgnEncapLimit)
				ae.Uint8(iflaIPTunProto, unix.IPPROTO_IPIP)
				ae.Uint32(iflaIPTunFwMark, 0)
				ae.Uint16(iflaIPTunEncapType, 0)
				ae.Bytes(iflaIPTunEncapSport, []byte{0, 0})
				ae.Bytes(iflaIPTunEncapDport, []byte{0, 0})
				ae.Uint16(iflaIPTunEncapFlags, EncapFlagCsum6)
				unknown(ae)
			},
			want: &IP6Tnl{Remote: v6b, TTL: 64, EncapLimit: 4, FlowInfo: 0x01212345, Flags: IP6TnlFlagIgnEncapLimit,
				Proto: unix.IPPROTO_IPIP, Encap: Encap{Flags: EncapFlagCsum6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := netlink.NewAttributeEncoder()
			tt.build(ae)
			b, err := ae.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode(tt.want, b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeReplaces checks that Decode resets fields whose attributes are
// missing instead of keeping old values.
func TestDecodeReplaces(t *testing.T) {
	drivers := []rtnetlink.LinkDriver{
		&IPIP{Link: 1, Local: v4a, TTL: 9, PMTUDisc: true},
		&SIT{Flags: SITFlagISATAP, Remote: v4b},
		&GRE{IKey: 5, IFlags: GREFlagKey, IgnoreDF: true},
		&IP6Tnl{Local: v6a, FlowInfo: 1, Encap: Encap{DPort: 1}},
	}
	for _, d := range drivers {
		t.Run(d.Kind(), func(t *testing.T) {
			ad, err := netlink.NewAttributeDecoder(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Decode(ad); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(d.New(), d, cmpAddr); diff != "" {
				t.Errorf("after decoding nothing (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeDriver is a LinkDriver from elsewhere.
type fakeDriver struct{}

func (*fakeDriver) New() rtnetlink.LinkDriver                 { return &fakeDriver{} }
func (*fakeDriver) Kind() string                              { return "fake" }
func (*fakeDriver) Encode(*netlink.AttributeEncoder) error    { return nil }
func (*fakeDriver) Decode(ad *netlink.AttributeDecoder) error { return nil }

func TestSetAttrForeignDriver(t *testing.T) {
	if err := SetAttr(&fakeDriver{}, iflaIPTunTTL, []byte{64}); err == nil {
		t.Error("SetAttr on a driver of another package succeeded")
	}
}
