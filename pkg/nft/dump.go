package nft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Attributes and flags golang.org/x/sys/unix does not define
// (linux/netfilter/nf_tables.h).
const (
	nftaChainFlags = 10 // NFTA_CHAIN_FLAGS
	nftChainBase   = 1  // NFT_CHAIN_BASE
)

// errDumpInterrupted means the ruleset changed during a dump.
var errDumpInterrupted = errors.New("dump interrupted by a concurrent change")

// tableInfo is what a table dump says about one table.
type tableInfo struct {
	name  string
	flags uint32
}

// chainInfo is what a chain dump says about one chain.
type chainInfo struct {
	table, name string
	handle      uint64
	base        bool // has a hook
	hook        uint32
	priority    int32
	device      string
	policy      uint32
	hasPolicy   bool
	typ         string
	flags       uint32
}

// ruleInfo is what a rule dump says about one rule.
type ruleInfo struct {
	table, chain string
	handle       uint64
	userData     []byte
	exprs        []byte // NFTA_RULE_EXPRESSIONS, unless counters were read
	hasCounter   bool
	packets      uint64
	bytes        uint64
}

// nftRequest sends one nf_tables request of type msg for family (a dump
// when dump is set) and returns the answers. It runs on nft's lasting
// socket, under the Conn's lock.
func (c *Conn) nftRequest(msg uint16, family byte, dump bool, attrs []netlink.Attribute) ([]netlink.Message, error) {
	data := []byte{family, unix.NFNETLINK_V0, 0, 0} // struct nfgenmsg, res_id 0
	if len(attrs) > 0 {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return nil, err
		}
		data = append(data, b...)
	}
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	msgs, err := c.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | int(msg)), Flags: flags},
		Data:   data,
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Flags&netlink.DumpInterrupted != 0 {
			return nil, errDumpInterrupted
		}
	}
	return msgs, nil
}

// attrs decodes the attributes after a message's nfgenmsg header.
func attrs(m netlink.Message) (*netlink.AttributeDecoder, error) {
	if len(m.Data) < 4 {
		return nil, fmt.Errorf("short nf_tables message (%d bytes)", len(m.Data))
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	return ad, nil
}

// generation is the ruleset's generation id; it changes with every
// committed batch.
func (c *Conn) generation() (uint32, error) {
	msgs, err := c.nftRequest(unix.NFT_MSG_GETGEN, unix.AF_UNSPEC, false, nil)
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		ad, err := attrs(m)
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
		if err := ad.Err(); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("generation: no NFTA_GEN_ID in the answer")
}

// table returns the inet table called name; ok is false when it does not
// exist.
func (c *Conn) table(name string) (t tableInfo, ok bool, err error) {
	msgs, err := c.nftRequest(unix.NFT_MSG_GETTABLE, unix.NFPROTO_INET, true, nil)
	if err != nil {
		return t, false, fmt.Errorf("list tables: %w", err)
	}
	for _, m := range msgs {
		ad, err := attrs(m)
		if err != nil {
			return t, false, err
		}
		var ti tableInfo
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_NAME:
				ti.name = ad.String()
			case unix.NFTA_TABLE_FLAGS:
				ti.flags = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return t, false, fmt.Errorf("list tables: %w", err)
		}
		if ti.name == name {
			return ti, true, nil
		}
	}
	return t, false, nil
}

// chains lists the chains of the inet table called table, in the kernel's
// order.
func (c *Conn) chains(table string) ([]chainInfo, error) {
	msgs, err := c.nftRequest(unix.NFT_MSG_GETCHAIN, unix.NFPROTO_INET, true, nil)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var out []chainInfo
	for _, m := range msgs {
		ad, err := attrs(m)
		if err != nil {
			return nil, err
		}
		var ci chainInfo
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_CHAIN_TABLE:
				ci.table = ad.String()
			case unix.NFTA_CHAIN_NAME:
				ci.name = ad.String()
			case unix.NFTA_CHAIN_HANDLE:
				ci.handle = ad.Uint64()
			case unix.NFTA_CHAIN_HOOK:
				ci.base = true
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						switch nad.Type() {
						case unix.NFTA_HOOK_HOOKNUM:
							ci.hook = nad.Uint32()
						case unix.NFTA_HOOK_PRIORITY:
							ci.priority = int32(nad.Uint32())
						case unix.NFTA_HOOK_DEV:
							ci.device = nad.String()
						}
					}
					return nil
				})
			case unix.NFTA_CHAIN_POLICY:
				ci.policy, ci.hasPolicy = ad.Uint32(), true
			case unix.NFTA_CHAIN_TYPE:
				ci.typ = ad.String()
			case nftaChainFlags:
				ci.flags = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("list chains: %w", err)
		}
		if ci.table == table {
			out = append(out, ci)
		}
	}
	return out, nil
}

// rules lists the rules of the inet table called table, each chain's in
// the kernel's (evaluation) order, with their expressions, or instead
// their counters if counters is set.
func (c *Conn) rules(table string, counters bool) ([]ruleInfo, error) {
	msgs, err := c.nftRequest(unix.NFT_MSG_GETRULE, unix.NFPROTO_INET, true, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: append([]byte(table), 0)},
	})
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var out []ruleInfo
	for _, m := range msgs {
		ad, err := attrs(m)
		if err != nil {
			return nil, err
		}
		var ri ruleInfo
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				ri.table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				ri.chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				ri.handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				ri.userData = ad.Bytes()
			case unix.NFTA_RULE_EXPRESSIONS:
				if counters {
					ad.Nested(ri.decodeCounter)
				} else {
					ri.exprs = ad.Bytes()
				}
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		if ri.table == table {
			out = append(out, ri)
		}
	}
	return out, nil
}

// decodeCounter finds the counter expression in a rule's expression list
// and keeps its values.
func (ri *ruleInfo) decodeCounter(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		if ad.Type() != unix.NFTA_LIST_ELEM {
			continue
		}
		ad.Nested(func(ead *netlink.AttributeDecoder) error {
			var name string
			var data []byte
			for ead.Next() {
				switch ead.Type() {
				case unix.NFTA_EXPR_NAME:
					name = ead.String()
				case unix.NFTA_EXPR_DATA:
					data = ead.Bytes()
				}
			}
			if name != "counter" || data == nil || ead.Err() != nil {
				return ead.Err()
			}
			cad, err := netlink.NewAttributeDecoder(data)
			if err != nil {
				return err
			}
			cad.ByteOrder = binary.BigEndian
			ri.hasCounter = true
			for cad.Next() {
				switch cad.Type() {
				case unix.NFTA_COUNTER_BYTES:
					ri.bytes += cad.Uint64()
				case unix.NFTA_COUNTER_PACKETS:
					ri.packets += cad.Uint64()
				}
			}
			return cad.Err()
		})
	}
	return ad.Err()
}
