package iptun

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

func TestRoundTrip(t *testing.T) {
	fou := Encap{Type: EncapTypeFOU, Flags: EncapFlagCsum | EncapFlagRemCsum, SPort: 5555, DPort: 4444}
	gue := Encap{Type: EncapTypeGUE, Flags: EncapFlagCsum6, SPort: 0, DPort: 0xfffe}
	tests := []struct {
		name string
		d    rtnetlink.LinkDriver
	}{
		{"ipip zero", &IPIP{}},
		{"ipip full", &IPIP{Link: 7, Local: v4a, Remote: v4b, TTL: 64, TOS: 1, PMTUDisc: true, Proto: unix.IPPROTO_IPIP, FwMark: 0xdeadbeef, Encap: fou}},
		{"ipip local only", &IPIP{Local: v4a, PMTUDisc: true}},
		{"ipip remote only", &IPIP{Remote: v4b, TOS: 0xfc}},
		{"ipip mplsip max", &IPIP{Link: ^uint32(0), TTL: 255, TOS: 255, PMTUDisc: true, Proto: unix.IPPROTO_MPLS, FwMark: ^uint32(0), Encap: Encap{^uint16(0), ^uint16(0), ^uint16(0), ^uint16(0)}}},
		{"ipip ttl inherit nopmtudisc", &IPIP{Local: v4a, Remote: v4b}},

		{"sit zero", &SIT{}},
		{"sit full", &SIT{Link: 3, Local: v4a, Remote: v4b, TTL: 64, TOS: 1, PMTUDisc: true, Proto: unix.IPPROTO_IPV6, FwMark: 5, Encap: gue, Flags: SITFlagISATAP}},
		{"sit isatap only", &SIT{Flags: SITFlagISATAP}},
		{"sit any proto", &SIT{Remote: v4b, TTL: 1, PMTUDisc: true, Flags: 0xffff}},

		{"gre zero", &GRE{}},
		{"gre key", &GRE{Local: v4a, Remote: v4b, TTL: 64, PMTUDisc: true, IFlags: GREFlagKey, OFlags: GREFlagKey, IKey: 42, OKey: 42}},
		{"gre ikey okey", &GRE{Link: 1, IFlags: GREFlagKey | GREFlagSeq, OFlags: GREFlagKey | GREFlagCsum, IKey: 1, OKey: 0xffffffff, TOS: 0x20, FwMark: 7, Encap: fou}},
		{"gre ikey only", &GRE{IFlags: GREFlagKey, IKey: 0x01020304}},
		{"gre ignore-df", &GRE{Remote: v4b, IgnoreDF: true, TTL: 3, TOS: 1}},
		{"gre all flags", &GRE{IFlags: 0xffff, OFlags: 0x8001, Encap: gue}},

		{"ip6tnl zero", &IP6Tnl{}},
		{"ip6tnl ipip6 none", &IP6Tnl{Local: v6a, Remote: v6b, TTL: 64, EncapLimit: 4, Flags: IP6TnlFlagIgnEncapLimit, Proto: unix.IPPROTO_IPIP, Encap: Encap{Flags: EncapFlagCsum6}}},
		{"ip6tnl ip6ip6 limit", &IP6Tnl{Link: 2, Local: v6a, Remote: v6b, TTL: 255, EncapLimit: 4, Proto: unix.IPPROTO_IPV6}},
		{"ip6tnl flowinfo", &IP6Tnl{Remote: v6b, FlowInfo: 0x12<<20 | 0x12345, Flags: IP6TnlFlagAllowLocalRemote | IP6TnlFlagRcvDSCPCopy, FwMark: 9, Encap: fou}},
		{"ip6tnl max", &IP6Tnl{Link: ^uint32(0), Local: netip.MustParseAddr("::ffff:192.0.2.1"), TTL: 255, EncapLimit: 255, FlowInfo: ^uint32(0), Flags: ^uint32(0), Proto: 255, FwMark: ^uint32(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encode(tt.d)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := decode(tt.d, b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.d, got, cmpAddr); diff != "" {
				t.Errorf("decode(encode(x)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeWritesEverything checks that the zero value still produces the
// full parameter set, since the kernel resets missing parameters.
func TestEncodeWritesEverything(t *testing.T) {
	tests := []struct {
		d    rtnetlink.LinkDriver
		want []uint16
	}{
		{&IPIP{}, []uint16{iflaIPTunProto, iflaIPTunPMTUDisc, iflaIPTunTOS, iflaIPTunTTL, iflaIPTunLink, iflaIPTunFwMark,
			iflaIPTunEncapType, iflaIPTunEncapFlags, iflaIPTunEncapSport, iflaIPTunEncapDport}},
		{&SIT{}, []uint16{iflaIPTunProto, iflaIPTunPMTUDisc, iflaIPTunTOS, iflaIPTunTTL, iflaIPTunLink, iflaIPTunFwMark,
			iflaIPTunEncapType, iflaIPTunEncapFlags, iflaIPTunEncapSport, iflaIPTunEncapDport, iflaIPTunFlags}},
		{&GRE{}, []uint16{iflaGREIKey, iflaGREOKey, iflaGREIFlags, iflaGREOFlags, iflaGREPMTUDisc, iflaGREIgnoreDF, iflaGRETOS,
			iflaGRETTL, iflaGREFwMark, iflaGREEncapType, iflaGREEncapFlags, iflaGREEncapSport, iflaGREEncapDport}},
		{&IP6Tnl{}, []uint16{iflaIPTunProto, iflaIPTunTTL, iflaIPTunEncapLimit, iflaIPTunFlowInfo, iflaIPTunFlags, iflaIPTunLink,
			iflaIPTunFwMark, iflaIPTunEncapType, iflaIPTunEncapFlags, iflaIPTunEncapSport, iflaIPTunEncapDport}},
	}
	for _, tt := range tests {
		t.Run(tt.d.Kind(), func(t *testing.T) {
			b, err := encode(tt.d)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var got []uint16
			for _, a := range attrList(t, b) {
				got = append(got, a.Type)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attribute types mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
