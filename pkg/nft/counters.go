package nft

import "github.com/tunneld/tunneld/pkg/model"

// Counter is what a rule's counter has seen.
type Counter struct {
	// Packets is the number of packets that matched the rule.
	Packets uint64
	// Bytes is their size in bytes, from the network header on.
	Bytes uint64
}

// Counters reads the counters of tunneld's rules, keyed by chain name and
// rule tag joined by a tab ("chain\ttag"). Rules without a counter or a
// tag are left out; identical rules in one chain are summed. A missing
// table gives an empty map.
func (c *Conn) Counters() (map[string]Counter, error) {
	out := map[string]Counter{}
	err := c.do(func() error {
		rules, err := c.rules(model.TableName, true)
		if err != nil {
			return err
		}
		for _, r := range rules {
			tag, ok := commentFromUserData(r.userData)
			if !ok || !r.hasCounter {
				continue
			}
			k := r.chain + "\t" + tag
			v := out[k]
			v.Packets += r.packets
			v.Bytes += r.bytes
			out[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, tableErr("read counters", err)
	}
	return out, nil
}
