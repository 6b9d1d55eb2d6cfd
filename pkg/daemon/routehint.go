package daemon

import (
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/watch"
)

// routeMatters reports whether a hint is worth a look: every hint but a
// route's in a table tunneld neither writes nor reads. The kernel's
// routes tunneld compares are its own (protocol 116, in any table), the
// main table's (the underlay: a tunnel's device and MTU follow the
// route to its remote) and those of the tables its routes go in
// (another's route beside one of its own). A routing daemon's churn in
// a table of its own (bird, OSPF, BGP) cost the daemon a convergence
// per burst, about half a CPU while it lasted (a tester's, with 250
// routes added and deleted in table 77 on the mipsel guest). A hint
// that does not say its table (0) is looked at.
func (dm *Daemon) routeMatters(ev watch.Event) bool {
	if ev.Kind != watch.Route || ev.Table == 0 || ev.Table == model.TableMain || ev.Proto == model.RouteProtocol {
		return true
	}
	if dm.tablesOf != dm.cfg {
		dm.tables, dm.tablesOf = map[uint32]bool{}, dm.cfg
		if dm.cfg != nil {
			for _, r := range dm.cfg.Routes {
				dm.tables[r.Table] = true
			}
		}
	}
	return dm.tables[ev.Table]
}
