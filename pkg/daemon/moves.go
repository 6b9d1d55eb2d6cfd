package daemon

import (
	"net/netip"

	"github.com/tunneld/tunneld/pkg/plan"
)

// MovesLogged is how many tunnels one converge (or short way) must move
// from one local address to another, changing nothing else, for the log
// to say so in one line at info level, their commands at debug level. A
// tester's 30 tunnels following a WAN's new address wrote a line each,
// 6.6 KB of a router's 64 KiB log at every move. One tunnel's move keeps
// its command line.
const MovesLogged = 2

// move is where tunnels moved: their local address before and after.
type move struct{ from, to netip.Addr }

// moves groups the operations of applied that move a tunnel's local
// address and change nothing else of it, by move, keeping the groups of
// MovesLogged or more; it returns for each the tunnels' names, in
// applied's order.
func moves(applied []plan.Op) map[move][]string {
	var all map[move][]string
	for _, op := range applied {
		m, ok := moveOf(op)
		if !ok {
			continue
		}
		if all == nil {
			all = map[move][]string{}
		}
		all[m] = append(all[m], op.Link.Name)
	}
	for m, names := range all {
		if len(names) < MovesLogged {
			delete(all, m)
		}
	}
	return all
}

// moveOf is op's move when it changes a tunnel's local address and
// nothing else tunneld sets.
func moveOf(op plan.Op) (move, bool) {
	if op.Kind != plan.LinkChange || op.Old == nil || op.Link == nil || op.Old.Local == op.Link.Local {
		return move{}, false
	}
	was := *op.Old
	was.Local = op.Link.Local
	if was != *op.Link {
		return move{}, false
	}
	return move{from: op.Old.Local, to: op.Link.Local}, true
}
