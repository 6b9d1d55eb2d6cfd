package nft

import (
	"testing"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestCanonicalOrderAndAnomalies builds the text from dumps listed out of
// creation order and with everything Replace would not write.
func TestCanonicalOrderAndAnomalies(t *testing.T) {
	accept := uint32(1)
	tag := func(s string) []byte {
		b, err := commentUserData(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	chains := []chainInfo{
		{name: "spoof", handle: 4},
		{name: "input", handle: 1, base: true, typ: "filter", hook: 1, priority: 0, policy: accept, hasPolicy: true, flags: nftChainBase},
		{name: "mss", handle: 2, base: true, typ: "filter", hook: 2, priority: -150, policy: 0, hasPolicy: true, flags: nftChainBase},
		{name: "odd", handle: 3, base: true, typ: "filter", hook: 9, priority: 7, policy: accept, hasPolicy: true, device: "eth0", flags: 3},
	}
	jumpSpoof := model.FRule{IIF: "tun0", Verdict: model.Verdict{Kind: model.Jump, Chain: "spoof"}}
	rules := []ruleInfo{
		{chain: "spoof", handle: 9, userData: tag("counter drop"), exprs: ruleExprs(t, countDrop, 3, 300)},
		{chain: "input", handle: 5, userData: tag("iifname tun0 jump spoof"), exprs: ruleExprs(t, jumpSpoof, 0, 0)},
		{chain: "input", handle: 6},
		{chain: "input", handle: 7, userData: tag("x\nchain evil")},
		{chain: "input", handle: 8, userData: tag("?untagged handle 1")},
		{chain: "input", handle: 10, userData: tag("iifname tun1 jump spoof"), exprs: ruleExprs(t, jumpSpoof, 0, 0)},
	}
	got := canonical(tableInfo{name: model.TableName, flags: 1}, chains, rules, nil, nil)
	want := "?table flags 0x1\n" +
		"chain input type filter hook input priority 0\n" +
		"\tiifname tun0 jump spoof\n" +
		"\t?untagged handle 6\n" +
		"\t?comment \"x\\nchain evil\" handle 7\n" +
		"\t?comment \"?untagged handle 1\" handle 8\n" +
		"\t?edited \"iifname tun1 jump spoof\" handle 10\n" +
		"chain mss type filter hook forward priority -150 ?policy 0\n" +
		"chain odd type filter hook ?9 priority 7 ?device \"eth0\" ?flags 0x2\n" +
		"chain spoof\n" +
		"\tcounter drop\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// The desired side of the same chains, without the anomalies.
	f := &model.Filter{Chains: []model.Chain{
		input(jumpSpoof),
		regular("spoof", countDrop),
	}}
	chains = []chainInfo{chains[0], chains[1]}
	chains[1].flags = nftChainBase
	if got := canonical(tableInfo{name: model.TableName}, chains, rules[:2], matched{}, nil); got != f.Canonical() {
		t.Fatalf("got:\n%s\nwant:\n%s", got, f.Canonical())
	}
}

// TestCanonicalLearnsOwnWrite: read at the generation tunneld's own
// Replace committed, a tagged rule is its tag whatever its expressions
// (this kernel's form of what tunneld sent, which matches might not
// know), and they are learned: a later read takes the same expressions,
// counters aside, as the tag's, and others as an edit.
func TestCanonicalLearnsOwnWrite(t *testing.T) {
	ud, err := commentUserData("counter drop")
	if err != nil {
		t.Fatal(err)
	}
	// The rule's own expressions with an attribute matches does not
	// know appended to the list: a stand-in for a kernel that dumps
	// more than this one.
	own := ruleExprs(t, countDrop, 3, 300)
	odd := append(append([]byte{}, own...), 8, 0, 0x7f, 0, 0, 0, 0, 1)
	chains := []chainInfo{{name: "spoof", handle: 1}}
	read := func(exprs []byte, m, learn matched) string {
		rules := []ruleInfo{{chain: "spoof", handle: 2, userData: ud, exprs: append([]byte{}, exprs...)}}
		return canonical(tableInfo{name: model.TableName}, chains, rules, m, learn)
	}
	const want = "chain spoof\n\tcounter drop\n"
	m := matched{}
	if got := read(odd, m, nil); got == want {
		t.Fatalf("the odd form matched without learning: the test shows nothing")
	}
	learn := matched{}
	if got := read(odd, m, learn); got != want {
		t.Errorf("own write's read: %q, want %q", got, want)
	}
	for tag, e := range learn {
		m[tag] = e
	}
	if got := read(odd, m, nil); got != want {
		t.Errorf("a later read of the same: %q, want %q", got, want)
	}
	edited := ruleExprs(t, model.FRule{Counter: true, Verdict: model.Verdict{Kind: model.Accept}}, 0, 0)
	if got := read(edited, m, nil); got == want {
		t.Errorf("an edit after the learning read as the tag's: %q", got)
	}
}
