package nft

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tunneld/tunneld/pkg/model"
	"golang.org/x/sys/unix"
)

// hooks maps the model's hook names to the kernel's hook numbers for the
// inet family (NF_INET_*), and back.
var hooks = map[string]nftables.ChainHook{
	"prerouting":  unix.NF_INET_PRE_ROUTING,
	"input":       unix.NF_INET_LOCAL_IN,
	"forward":     unix.NF_INET_FORWARD,
	"output":      unix.NF_INET_LOCAL_OUT,
	"postrouting": unix.NF_INET_POST_ROUTING,
}

// maxName is the longest table or chain name (NFT_NAME_MAXLEN without
// the NUL).
const maxName = 255

// batch is a compiled table: chains in the model's order, then every
// rule, each chain's in order.
type batch struct {
	table  *nftables.Table
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

// newTable is tunneld's table.
func newTable() *nftables.Table {
	return &nftables.Table{Name: model.TableName, Family: nftables.TableFamilyINet}
}

// compile checks f and translates it into a batch without talking to the
// kernel.
func compile(f *model.Filter) (*batch, error) {
	if f == nil {
		return nil, errors.New("no table given")
	}
	if f.Observed != "" {
		return nil, errors.New("a table read back from the kernel cannot be written")
	}
	b := &batch{table: newTable()}
	regular := map[string]bool{}
	seen := map[string]bool{}
	for _, mc := range f.Chains {
		if mc.Name == "" || len(mc.Name) > maxName {
			return nil, fmt.Errorf("chain %q: invalid name", mc.Name)
		}
		if seen[mc.Name] {
			return nil, fmt.Errorf("chain %s: defined twice", mc.Name)
		}
		seen[mc.Name] = true
		ch := &nftables.Chain{Name: mc.Name, Table: b.table}
		if mc.Hook == "" {
			regular[mc.Name] = true
		} else {
			hook, ok := hooks[mc.Hook]
			if !ok {
				return nil, fmt.Errorf("chain %s: unknown hook %q", mc.Name, mc.Hook)
			}
			switch nftables.ChainType(mc.Type) {
			case nftables.ChainTypeFilter, nftables.ChainTypeNAT, nftables.ChainTypeRoute:
			default:
				return nil, fmt.Errorf("chain %s: unknown type %q", mc.Name, mc.Type)
			}
			accept := nftables.ChainPolicyAccept
			ch.Hooknum = nftables.ChainHookRef(hook)
			ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(mc.Priority))
			ch.Type = nftables.ChainType(mc.Type)
			ch.Policy = &accept
		}
		b.chains = append(b.chains, ch)
	}
	for i, mc := range f.Chains {
		for _, r := range mc.Rules {
			if r.Verdict.Kind == model.Jump && !regular[r.Verdict.Chain] {
				return nil, fmt.Errorf("chain %s: rule %q: no regular chain %q to jump to", mc.Name, r.String(), r.Verdict.Chain)
			}
			ex, err := Exprs(r)
			if err != nil {
				return nil, fmt.Errorf("chain %s: %w", mc.Name, err)
			}
			ud, err := commentUserData(r.Tag())
			if err != nil {
				return nil, fmt.Errorf("chain %s: rule %q: %w", mc.Name, r.String(), err)
			}
			b.rules = append(b.rules, &nftables.Rule{Table: b.table, Chain: b.chains[i], Exprs: ex, UserData: ud})
		}
	}
	return b, nil
}

// Replace makes table inet tunneld exactly f in one atomic batch: the
// table is added (so that deleting it cannot fail), deleted and created
// again with f's chains (base chains with policy accept) and then its
// rules, each tagged with its Tag() as an nft comment. All chains are
// created before any rule, so jump targets exist and the kernel's chain
// handles follow the model's chain order, which Read relies on. If the
// kernel rejects anything, nothing changes.
func (c *Conn) Replace(f *model.Filter) error {
	b, err := compile(f)
	if err != nil {
		return opErr("replace", err)
	}
	return replaceErr(f, c.do(func() error {
		c.wrote.valid = false
		if err := c.send(b); err != nil {
			return err
		}
		// The generation it committed, if no one else's came since:
		// Read learns the table as this kernel holds it then.
		if g, err := c.generation(); err == nil {
			c.wrote.valid, c.wrote.gen = true, g
		}
		return nil
	}))
}

// replaceErr words the failure of writing f. ENOENT is what the kernel
// answers for an expression it has no module for: "no such file or
// directory" sent a tester looking for a file.
func replaceErr(f *model.Filter, err error) error {
	if errors.Is(err, unix.ENOENT) {
		err = fmt.Errorf("the kernel lacks an nftables expression the table uses, its module not loaded or not built%s: %w", masqueradeHint(f), err)
	}
	return opErr("replace", err)
}

// masqueradeHint names the module a masquerade rule needs when f has
// one, the expression a router is most often without.
func masqueradeHint(f *model.Filter) string {
	for _, ch := range f.Chains {
		for _, r := range ch.Rules {
			if r.Verdict.Kind == model.Masquerade {
				return " (masquerade needs nft_masq: on OpenWrt, kmod-nft-nat)"
			}
		}
	}
	return ""
}

// Delete removes table inet tunneld; a missing table is not an error.
func (c *Conn) Delete() error {
	return opErr("delete", c.do(func() error {
		t := newTable()
		c.nft.AddTable(t)
		c.nft.DelTable(t)
		return c.nft.Flush()
	}))
}

// send transmits the batch that replaces the table.
func (c *Conn) send(b *batch) error {
	if err := c.sizeBuffers(b); err != nil {
		return err
	}
	c.nft.AddTable(b.table)
	c.nft.DelTable(b.table)
	c.nft.AddTable(b.table)
	for _, ch := range b.chains {
		c.nft.AddChain(ch)
	}
	for _, r := range b.rules {
		c.nft.AddRule(r)
	}
	return c.nft.Flush()
}

// Per-message allowances for sizing the socket buffers: a message's
// netlink and attribute headers, and the kernel's memory charge for the
// ack (a small skb) or error it sends back for every message of a batch.
const (
	msgOverhead = 256
	ackCharge   = 2048
)

// sizeBuffers makes the socket's buffers big enough for the batch: the
// whole batch must fit one sendmsg (else EMSGSIZE), and the kernel
// queues all acks at once when it has processed the batch; acks that do
// not fit are lost (ENOBUFS) even though the batch was committed.
func (c *Conn) sizeBuffers(b *batch) error {
	size := 4 * msgOverhead
	for _, r := range b.rules {
		size += msgOverhead + len(r.UserData)
		for _, e := range r.Exprs {
			m, err := expr.Marshal(unix.NFPROTO_INET, e)
			if err != nil {
				return err
			}
			size += len(m) + 4
		}
	}
	size += len(b.chains) * msgOverhead
	n := 3 + len(b.chains) + len(b.rules)
	if err := growBuffer(c.nl.WriteBuffer, c.nl.SetWriteBuffer, 2*size); err != nil {
		return fmt.Errorf("socket send buffer: %w", err)
	}
	if err := growBuffer(c.nl.ReadBuffer, c.nl.SetReadBuffer, n*ackCharge+2*size); err != nil {
		return fmt.Errorf("socket receive buffer: %w", err)
	}
	return nil
}

// growBuffer raises a socket buffer to at least want bytes.
func growBuffer(get func() (int, error), set func(int) error, want int) error {
	have, err := get()
	if err != nil {
		return err
	}
	if have >= want {
		return nil
	}
	return set(want)
}
