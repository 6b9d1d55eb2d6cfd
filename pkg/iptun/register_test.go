package iptun

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
)

func TestRegister(t *testing.T) {
	for i := 0; i < 3; i++ {
		if err := Register(); err != nil {
			t.Fatalf("Register call %d: %v", i+1, err)
		}
	}
	// Registration really happened: rtnetlink now refuses the kinds.
	for _, d := range []rtnetlink.LinkDriver{&IPIP{}, &SIT{}, &GRE{}, &IP6Tnl{}} {
		if err := rtnetlink.RegisterDriver(d); err == nil {
			t.Errorf("kind %s was not registered by Register", d.Kind())
		}
	}
}

// TestLinkMessage round-trips complete RTM_NEWLINK link messages through
// rtnetlink, which nests Encode's output in IFLA_INFO_DATA and picks the
// registered driver by kind when decoding.
func TestLinkMessage(t *testing.T) {
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	drivers := []rtnetlink.LinkDriver{
		&IPIP{Local: v4a, Remote: v4b, TTL: 64, TOS: 1, PMTUDisc: true, Link: 1},
		&SIT{Remote: v4b, Flags: SITFlagISATAP, PMTUDisc: true},
		&GRE{Local: v4a, Remote: v4b, IFlags: GREFlagKey, OFlags: GREFlagKey, IKey: 42, OKey: 42, PMTUDisc: true},
		&IP6Tnl{Local: v6a, Remote: v6b, TTL: 64, EncapLimit: 4, Flags: IP6TnlFlagIgnEncapLimit, Proto: 41},
	}
	for _, d := range drivers {
		t.Run(d.Kind(), func(t *testing.T) {
			msg := &rtnetlink.LinkMessage{
				Attributes: &rtnetlink.LinkAttributes{
					Name: "gt0",
					Info: &rtnetlink.LinkInfo{Kind: d.Kind(), Data: d},
				},
			}
			b, err := msg.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			var got rtnetlink.LinkMessage
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if got.Attributes == nil || got.Attributes.Info == nil {
				t.Fatal("no link info decoded")
			}
			if diff := cmp.Diff(d, got.Attributes.Info.Data, cmpAddr); diff != "" {
				t.Errorf("link info data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOverhead(t *testing.T) {
	tests := []struct {
		kind   string
		greKey bool
		want   int
	}{
		{KindIPIP, false, 20},
		{KindIPIP, true, 20},
		{KindSIT, false, 20},
		{KindGRE, false, 24},
		{KindGRE, true, 28},
		{KindIP6Tnl, false, 40},
		{"vxlan", false, 0},
		{"", true, 0},
	}
	for _, tt := range tests {
		if got := Overhead(tt.kind, tt.greKey); got != tt.want {
			t.Errorf("Overhead(%q, %v) = %d, want %d", tt.kind, tt.greKey, got, tt.want)
		}
	}
}

// TestDriver: a new zero driver for each of the four kinds, never the
// same one twice, and none for other kinds.
func TestDriver(t *testing.T) {
	for _, kind := range []string{"ipip", "sit", "gre", "ip6tnl"} {
		d := Driver(kind)
		if d == nil || d.Kind() != kind {
			t.Fatalf("Driver(%q) = %#v", kind, d)
		}
		if d == Driver(kind) {
			t.Errorf("Driver(%q) returned the same driver twice", kind)
		}
		if diff := cmp.Diff(d.New(), d, cmpAddr); diff != "" {
			t.Errorf("Driver(%q) is not zero (-zero +got):\n%s", kind, diff)
		}
	}
	for _, kind := range []string{"", "veth", "gretap", "ip6gre"} {
		if d := Driver(kind); d != nil {
			t.Errorf("Driver(%q) = %#v, want nil", kind, d)
		}
	}
}
