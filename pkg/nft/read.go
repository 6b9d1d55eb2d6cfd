package nft

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// hookNames names the inet family's hooks (NF_INET_*).
var hookNames = map[uint32]string{
	unix.NF_INET_PRE_ROUTING:  "prerouting",
	unix.NF_INET_LOCAL_IN:     "input",
	unix.NF_INET_FORWARD:      "forward",
	unix.NF_INET_LOCAL_OUT:    "output",
	unix.NF_INET_POST_ROUTING: "postrouting",
	nfInetIngress:             "ingress",
}

// nfInetIngress is NF_INET_INGRESS (inet ingress chains, Linux 5.10).
const nfInetIngress = 5

// readTries is how often Read starts over when the ruleset changes while
// it is being read.
const readTries = 5

// Read returns table inet tunneld as the kernel has it, or nil when the
// table does not exist. The result carries only Observed: the table's
// canonical text, built like model.Filter.Canonical from the kernel's
// chain attributes and the rules' comments. Chains appear in the order
// they were created (by kernel handle), which for a table written by
// Replace is the model's order. Anything Replace would not have written
// makes the text differ from every desired table: a table flag (e.g.
// dormant), a base chain policy other than accept, chain flags or a
// device, a rule without a comment ("?untagged handle N"), a rule whose
// expressions are not what Exprs makes of the rule its comment names
// ("?edited TAG handle N": an edit that kept the comment), counter values
// aside.
//
// The ruleset's generation changes with every committed change, by
// anyone: while it is the one of the last read, the table is the one
// read then, and Read answers from it with one request instead of
// dumping the table again (a thousand tunnels' table is most of a
// resync's work).
func (c *Conn) Read() (*model.Filter, error) {
	var f *model.Filter
	err := c.do(func() error {
		for try := 0; try < readTries; try++ {
			g1, err := c.generation()
			if err != nil {
				return err
			}
			if c.last.valid && c.last.gen == g1 {
				f = c.last.filter()
				return nil
			}
			c.last.valid = false
			c.reads++
			// At the generation tunneld's own Replace committed, the
			// table is what it wrote: its rules' expressions, in the
			// form this kernel dumps them, are learned as their tags'.
			var learn matched
			if c.wrote.valid && c.wrote.gen == g1 {
				learn = matched{}
			}
			f, err = c.readOnce(learn)
			if errors.Is(err, errDumpInterrupted) {
				continue
			}
			if err != nil {
				return err
			}
			g2, err := c.generation()
			if err != nil {
				return err
			}
			if g1 == g2 {
				c.last.remember(g1, f)
				if len(learn) > 0 {
					if c.matched == nil {
						c.matched = matched{}
					}
					maps.Copy(c.matched, learn)
				}
				return nil
			}
		}
		return fmt.Errorf("ruleset changed during each of %d attempts to read it", readTries)
	})
	if err != nil {
		return nil, tableErr("read", err)
	}
	return f, nil
}

// lastRead is the table as read at one generation of the ruleset.
type lastRead struct {
	valid    bool
	gen      uint32
	exists   bool
	observed string
}

func (l *lastRead) remember(gen uint32, f *model.Filter) {
	*l = lastRead{valid: true, gen: gen, exists: f != nil}
	if f != nil {
		l.observed = f.Observed
	}
}

// filter is a new copy of the table read (nil: there was none).
func (l *lastRead) filter() *model.Filter {
	if !l.exists {
		return nil
	}
	return &model.Filter{Observed: l.observed}
}

// readOnce reads the table once; with learn, as tunneld wrote it: its
// tagged rules are taken as they are, and learned into learn (see
// ruleLine).
func (c *Conn) readOnce(learn matched) (*model.Filter, error) {
	t, ok, err := c.table(model.TableName)
	if err != nil || !ok {
		return nil, err
	}
	chains, err := c.chains(model.TableName)
	if err != nil {
		return nil, err
	}
	rules, err := c.rules(model.TableName, false)
	if err != nil {
		return nil, err
	}
	if c.matched == nil || len(c.matched) > 2*len(rules)+64 {
		c.matched = matched{} // none left over from older tables
	}
	return &model.Filter{Observed: canonical(t, chains, rules, c.matched, learn)}, nil
}

// canonical builds the table's canonical text (see model.Filter.Canonical),
// m remembering the rules found to match their tags, learn (when not
// nil) the rules of a table tunneld wrote (see ruleLine).
func canonical(t tableInfo, chains []chainInfo, rules []ruleInfo, m, learn matched) string {
	chains = slices.Clone(chains)
	sort.SliceStable(chains, func(i, j int) bool { return chains[i].handle < chains[j].handle })
	byChain := map[string][]ruleInfo{}
	for _, r := range rules {
		byChain[r.chain] = append(byChain[r.chain], r)
	}
	var b strings.Builder
	if t.flags != 0 {
		fmt.Fprintf(&b, "?table flags %#x\n", t.flags)
	}
	for _, ch := range chains {
		b.WriteString(chainHeader(ch))
		b.WriteString("\n")
		for _, r := range byChain[ch.name] {
			b.WriteString("\t")
			b.WriteString(ruleLine(r, m, learn))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// chainHeader renders a kernel chain like model.Chain.ChainHeader, with
// anything tunneld does not write appended.
func chainHeader(ch chainInfo) string {
	if !ch.base {
		h := "chain " + ch.name
		if ch.flags != 0 {
			h += fmt.Sprintf(" ?flags %#x", ch.flags)
		}
		return h
	}
	hook, ok := hookNames[ch.hook]
	if !ok {
		hook = fmt.Sprintf("?%d", ch.hook)
	}
	h := fmt.Sprintf("chain %s type %s hook %s priority %d", ch.name, ch.typ, hook, ch.priority)
	if ch.device != "" {
		h += fmt.Sprintf(" ?device %q", ch.device)
	}
	if !ch.hasPolicy || ch.policy != uint32(nftables.ChainPolicyAccept) {
		h += fmt.Sprintf(" ?policy %d", ch.policy)
	}
	if f := ch.flags &^ nftChainBase; f != 0 {
		h += fmt.Sprintf(" ?flags %#x", f)
	}
	return h
}

// ruleLine is a rule's tag, or a line no tag can equal: for a rule
// without one, with one no rule has, or with expressions that are not
// the ones its tag stands for (see matches).
//
// A rule of a table read at the generation tunneld's own Replace
// committed (learn set) is its tag, and its expressions are learned as
// the tag's, whatever matches says: they are what this kernel made of
// what tunneld sent. A kernel that dumps an attribute matches does not
// know (another version's default) would otherwise read every rule as
// edited, and tunneld would write the table at every converge, each
// write the hint of the next. An edit since (another generation) is
// told as any other. Someone else's commit between tunneld's and its
// reading of the generation would be learned too: a window of one
// request.
func ruleLine(r ruleInfo, m, learn matched) string {
	tag, ok := commentFromUserData(r.userData)
	switch {
	case !ok:
		return fmt.Sprintf("?untagged handle %d", r.handle)
	case strings.ContainsAny(tag, "\n") || strings.HasPrefix(tag, "?"):
		return fmt.Sprintf("?comment %q handle %d", tag, r.handle)
	case learn != nil:
		zeroCounters(r.exprs)
		learn[tag] = string(r.exprs)
	case !m.matches(tag, r.exprs):
		return fmt.Sprintf("?edited %q handle %d", tag, r.handle)
	}
	return tag
}
