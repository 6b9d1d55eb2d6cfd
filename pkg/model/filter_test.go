package model

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"testing"
)

func TestRuleText(t *testing.T) {
	p := netip.MustParsePrefix
	long := strings.Repeat("c", 300)
	longText := "iifname \"wan\" jump " + long
	h := fnv.New64a()
	h.Write([]byte(strings.ReplaceAll(longText, `"`, "")))
	longTag := strings.ReplaceAll(longText, `"`, "")[:MaxTag-18] + fmt.Sprintf(" #%016x", h.Sum64())
	tests := []struct {
		name      string
		r         FRule
		text, tag string
	}{
		{"family only", FRule{Family: FamilyV6, Verdict: Verdict{Kind: Accept}}, "meta nfproto ipv6 accept", "meta nfproto ipv6 accept"},
		{"interfaces and prefixes", FRule{IIF: "wan", Src: p("10.0.0.0/8"), Dst: p("192.0.2.1/32"), Counter: true, Verdict: Verdict{Kind: Drop}},
			`iifname "wan" ip saddr 10.0.0.0/8 ip daddr 192.0.2.1 counter drop`, "iifname wan ip saddr 10.0.0.0/8 ip daddr 192.0.2.1 counter drop"},
		{"port and redirect", FRule{OIF: "t0", L4Proto: 6, DPort: 80, Verdict: Verdict{Kind: Redirect, Port: 3128}},
			`oifname "t0" meta l4proto tcp th dport 80 redirect to :3128`, "oifname t0 meta l4proto tcp th dport 80 redirect to :3128"},
		{"mss", FRule{OIF: "t0", L4Proto: 6, Verdict: Verdict{Kind: ClampMSS}},
			`oifname "t0" meta l4proto tcp tcp flags syn / syn,rst tcp option maxseg size set rt mtu`, "oifname t0 meta l4proto tcp tcp flags syn / syn,rst tcp option maxseg size set rt mtu"},
		{"gre version 0", FRule{Dst: p("192.0.2.1/32"), GREv0: true, L4Proto: 47, Counter: true, Verdict: Verdict{Kind: Drop}},
			"ip daddr 192.0.2.1 @th,8,8 & 0x7 == 0x0 meta l4proto 47 counter drop", "ip daddr 192.0.2.1 @th,8,8 & 0x7 == 0x0 meta l4proto 47 counter drop"},
		{"established", FRule{CtEstablished: true, Verdict: Verdict{Kind: Accept}}, "ct state established,related accept", "ct state established,related accept"},
		{"long tag hashed", FRule{IIF: "wan", Verdict: Verdict{Kind: Jump, Chain: long}}, longText, longTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			if got := tt.r.Tag(); got != tt.tag {
				t.Errorf("Tag() = %q, want %q", got, tt.tag)
			}
			if got := len(tt.r.Tag()); got > MaxTag {
				t.Errorf("tag of %d bytes, longer than %d", got, MaxTag)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	f := &Filter{Chains: []Chain{
		{Name: "input", Type: "filter", Hook: "input", Priority: 0, Rules: []FRule{
			{IIF: "t0", Verdict: Verdict{Kind: Jump, Chain: "spoof_t0"}},
		}},
		{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: 100, Rules: []FRule{
			{OIF: "wan", Src: netip.MustParsePrefix("10.0.0.0/8"), Verdict: Verdict{Kind: Masquerade}},
		}},
		{Name: "spoof_t0", Rules: []FRule{{Verdict: Verdict{Kind: Return}}}},
	}}
	want := "chain input type filter hook input priority 0\n\tiifname t0 jump spoof_t0\n" +
		"chain postrouting type nat hook postrouting priority 100\n\toifname wan ip saddr 10.0.0.0/8 masquerade\n" +
		"chain spoof_t0\n\treturn\n"
	if got := f.Canonical(); got != want {
		t.Errorf("Canonical:\n%s\nwant:\n%s", got, want)
	}
	if got := (&Filter{Observed: "x"}).Canonical(); got != "x" {
		t.Errorf("an observed table's Canonical = %q, want its text", got)
	}
}
