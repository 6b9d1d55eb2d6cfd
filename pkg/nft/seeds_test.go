package nft

import (
	"os"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
)

// Chains as tunneld's desired package builds them.
func input(rules ...model.FRule) model.Chain {
	return model.Chain{Name: "input", Type: "filter", Hook: "input", Priority: 0, Rules: rules}
}

func forward(rules ...model.FRule) model.Chain {
	return model.Chain{Name: "forward", Type: "filter", Hook: "forward", Priority: 0, Rules: rules}
}

func mss(rules ...model.FRule) model.Chain {
	return model.Chain{Name: "mss", Type: "filter", Hook: "forward", Priority: -150, Rules: rules}
}

func prerouting(rules ...model.FRule) model.Chain {
	return model.Chain{Name: "prerouting", Type: "nat", Hook: "prerouting", Priority: -100, Rules: rules}
}

func postrouting(rules ...model.FRule) model.Chain {
	return model.Chain{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: 100, Rules: rules}
}

func regular(name string, rules ...model.FRule) model.Chain {
	return model.Chain{Name: name, Rules: rules}
}

func jump(iif, chain string) model.FRule {
	return model.FRule{IIF: iif, Verdict: model.Verdict{Kind: model.Jump, Chain: chain}}
}

func clamp(oif string) model.FRule {
	return model.FRule{OIF: oif, L4Proto: 6, Verdict: v(model.ClampMSS)}
}

func outerAccept(remote, local string, proto uint8) model.FRule {
	return model.FRule{Src: pfx(remote + "/32"), Dst: pfx(local + "/32"), L4Proto: proto, Verdict: v(model.Accept)}
}

// outerDrop is desired's drop of proto to local: of GRE, version 0 alone.
func outerDrop(local string, proto uint8) model.FRule {
	return model.FRule{Dst: pfx(local + "/32"), GREv0: proto == 47, L4Proto: proto, Counter: true, Verdict: v(model.Drop)}
}

func srcReturn(p string) model.FRule { return model.FRule{Src: pfx(p), Verdict: v(model.Return)} }

var countDrop = model.FRule{Counter: true, Verdict: v(model.Drop)}

// seeds are the tables of real plans (pkg/cli/testdata/plans/seeds),
// rebuilt as model values; TestSeedsMatchPlans checks that each prints
// exactly as its plan's nft script.
var seeds = []struct {
	plan   string
	filter *model.Filter
}{
	{"000_c4416a8950d425f4/host1.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("152.16.10.2", "172.16.10.2", 4), outerDrop("172.16.10.2", 4), jump("tun0", "spoof_tun0")),
		forward(jump("tun0", "spoof_tun0")),
		mss(clamp("tun0")),
		regular("spoof_tun0", srcReturn("192.168.50.0/30"), countDrop),
	}}},
	{"001_cbb9f95fb8720836/proxy.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("128.198.61.51", "128.198.60.42", 4), outerAccept("128.198.60.200", "128.198.60.42", 4),
			outerDrop("128.198.60.42", 4), jump("tunl1", "spoof_tunl1"), jump("tunl2", "spoof_tunl2")),
		forward(jump("tunl1", "spoof_tunl1"), jump("tunl2", "spoof_tunl2")),
		mss(clamp("tunl1"), clamp("tunl2")),
		regular("spoof_tunl1", srcReturn("128.198.61.51/32"), countDrop),
		regular("spoof_tunl2", srcReturn("128.198.60.200/32"), srcReturn("128.198.60.201/32"), countDrop),
	}}},
	{"002_ff25396f952da8ec/colo.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("192.0.2.42", "192.0.2.2", 4), outerDrop("192.0.2.2", 4)),
		forward(
			model.FRule{CtEstablished: true, Verdict: v(model.Accept)},
			model.FRule{IIF: "Moe", Verdict: v(model.Accept)},
			model.FRule{OIF: "Moe", Src: pfx("203.0.113.7/32"), Verdict: v(model.Accept)},
			model.FRule{OIF: "Moe", Src: pfx("203.0.113.8/32"), Verdict: v(model.Accept)},
			model.FRule{IIF: "Moe", Counter: true, Verdict: v(model.Drop)},
			model.FRule{OIF: "Moe", Counter: true, Verdict: v(model.Drop)}),
		mss(clamp("Moe")),
		prerouting(model.FRule{IIF: "eth0", Dst: pfx("198.51.100.42/32"), L4Proto: 6, DPort: 80,
			Verdict: model.Verdict{Kind: model.Redirect, Port: 80}}),
	}}},
	{"003_0e70e634d2a3a200/host2.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("172.16.10.2", "152.16.10.2", 47), outerDrop("152.16.10.2", 47), jump("tun0", "spoof_tun0")),
		forward(jump("tun0", "spoof_tun0")),
		mss(clamp("tun0")),
		regular("spoof_tun0", srcReturn("192.168.50.0/30"), countDrop),
	}}},
	{"004_f346a18590489699/rfe.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("130.88.198.58", "130.88.200.1", 4), outerDrop("130.88.200.1", 4), jump("tunl1", "spoof_tunl1")),
		forward(jump("tunl1", "spoof_tunl1"),
			model.FRule{CtEstablished: true, Verdict: v(model.Accept)},
			model.FRule{IIF: "tunl1", OIF: "eth0", Src: pfx("10.200.200.100/32"), Dst: pfx("192.168.104.0/24"), L4Proto: 6, Verdict: v(model.Accept)},
			model.FRule{IIF: "tunl1", OIF: "eth0", Src: pfx("10.200.200.100/32"), Dst: pfx("192.168.104.0/24"), L4Proto: 17, Verdict: v(model.Accept)},
			model.FRule{IIF: "tunl1", OIF: "eth0", Src: pfx("130.88.196.129/32"), Dst: pfx("192.168.104.0/24"), L4Proto: 6, Verdict: v(model.Accept)},
			model.FRule{IIF: "tunl1", OIF: "eth0", Src: pfx("130.88.196.129/32"), Dst: pfx("192.168.104.0/24"), L4Proto: 17, Verdict: v(model.Accept)},
			model.FRule{IIF: "tunl1", Counter: true, Verdict: v(model.Drop)},
			model.FRule{OIF: "tunl1", Counter: true, Verdict: v(model.Drop)}),
		mss(clamp("tunl1")),
		postrouting(model.FRule{OIF: "eth3", Src: pfx("192.168.104.0/24"), Verdict: v(model.Masquerade)}),
		regular("spoof_tunl1", srcReturn("10.200.200.0/24"), srcReturn("130.88.196.129/32"), countDrop),
	}}},
	{"004_f346a18590489699/ps3.plan", &model.Filter{Chains: []model.Chain{
		input(outerAccept("130.88.198.58", "130.88.203.56", 4), outerDrop("130.88.203.56", 4), jump("tunl1", "spoof_tunl1")),
		forward(jump("tunl1", "spoof_tunl1")),
		mss(clamp("tunl1")),
		postrouting(model.FRule{OIF: "eth0", Src: pfx("10.10.10.0/24"), Verdict: v(model.Masquerade)}),
		regular("spoof_tunl1", srcReturn("10.200.100.0/24"), countDrop),
	}}},
}

// planTable returns the nft table text at the end of a plan file.
func planTable(t *testing.T, plan string) string {
	t.Helper()
	b, err := os.ReadFile("../cli/testdata/plans/seeds/" + plan)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "delete table inet tunneld\n")
	if !ok {
		t.Fatalf("%s: no nft script", plan)
	}
	table, _, ok := strings.Cut(rest, "EOF")
	if !ok {
		t.Fatalf("%s: nft script not terminated", plan)
	}
	return table
}

func TestSeedsMatchPlans(t *testing.T) {
	for _, s := range seeds {
		if got, want := s.filter.String(), planTable(t, s.plan); got != want {
			t.Errorf("%s: model prints\n%s\nplan has\n%s", s.plan, got, want)
		}
		if _, err := compile(s.filter); err != nil {
			t.Errorf("%s: %v", s.plan, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		f    *model.Filter
		want string
	}{
		{nil, "no table"},
		{&model.Filter{Observed: "chain x\n"}, "read back"},
		{&model.Filter{Chains: []model.Chain{regular("a"), regular("a")}}, "defined twice"},
		{&model.Filter{Chains: []model.Chain{regular("")}}, "invalid name"},
		{&model.Filter{Chains: []model.Chain{{Name: "x", Type: "filter", Hook: "egress"}}}, "unknown hook"},
		{&model.Filter{Chains: []model.Chain{{Name: "x", Type: "", Hook: "input"}}}, "unknown type"},
		{&model.Filter{Chains: []model.Chain{input(jump("a", "missing"))}}, "no regular chain"},
		{&model.Filter{Chains: []model.Chain{input(jump("a", "input"))}}, "no regular chain"},
		{&model.Filter{Chains: []model.Chain{input(model.FRule{IIF: "abcdefghijklmnopq", Verdict: v(model.Accept)})}}, "interface name"},
	} {
		_, err := compile(c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one about %q", c.f, err, c.want)
		}
	}
}
