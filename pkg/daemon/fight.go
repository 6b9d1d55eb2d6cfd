package daemon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// counting says which of the changes a converge makes count towards a
// fight over their object (see countRepair).
type counting uint8

const (
	// countNone: none (a start's or a reload's converge: its changes
	// are the configuration's, not repairs).
	countNone counting = iota
	// countAll: each.
	countAll
	// countUnflushed: each but those that put back what a device that
	// went down or away took with it (see flushed): the converge comes
	// within FlushTrail of a link hint.
	countUnflushed
)

// counts reports whether op counts towards a fight over its object.
func (c counting) counts(op plan.Op) bool {
	return c == countAll || c == countUnflushed && !flushed(op)
}

// flushed reports whether op may put back what the kernel takes away,
// by itself, with a device that goes down or away, which a link hint
// explains: a route (the kernel flushes those through the device), an
// address of a tunnel (the IPv6 ones go when it goes down, all of them
// when it goes), a device's own sysctl (a device created again has the
// defaults), and the binding of a tunnel to its device (dev) that went
// away and came back (see rebound). A tunnel's creation, other change,
// or setting up or down, a fallback device set down, a rule, a sysctl
// of all devices and the nftables table are not: no device takes them
// with it, and a link hint that comes with their repair is the other
// manager's change of the link itself, or tunneld's own.
func flushed(op plan.Op) bool {
	switch op.Kind {
	case plan.RouteAdd, plan.AddrAdd:
		return true
	case plan.SysctlSet:
		dev := model.SysctlDevice(op.Sysctl.Path)
		return dev != "" && dev != "all" && dev != "default"
	case plan.LinkChange:
		return rebound(op)
	}
	return false
}

// rebound reports whether a tunnel's change only binds it to its device
// (dev) again. The kernel keeps a tunnel bound to a device that went away
// bound to that device's index, which no device has then: it reads as
// unbound, and a device of that name that comes back has a new index.
func rebound(op plan.Op) bool {
	if op.Kind != plan.LinkChange || op.Old == nil || op.Link == nil || op.Old.Dev != "" || op.Link.Dev == "" {
		return false
	}
	old := op.Old.Params()
	old.Dev = op.Link.Dev
	return old == op.Link.Params()
}

// noteRepairs notes the form (see form) each object that a converge, or
// the short way, changed is left in, and counts the change as a repair
// towards a fight over it (by its HoldKey) if c counts any operation on
// it (a tunnel bound again to its device and set up is more than what
// the device's return explains). The operations on one object in one
// converge (a tunnel created and set up) are one change of it.
func (dm *Daemon) noteRepairs(applied []plan.Op, c counting) {
	type change struct {
		obj, key, form, tunnel string
		counts                 bool
	}
	var changes []change
	at := map[string]int{}
	for _, op := range applied {
		key := HoldKey(op)
		i, ok := at[key]
		if !ok {
			i = len(changes)
			at[key] = i
			changes = append(changes, change{obj: op.Object(), key: key, tunnel: dm.tunnelOf(op)})
		}
		changes[i].form = form(op)
		changes[i].counts = changes[i].counts || c.counts(op)
	}
	for _, ch := range changes {
		dm.countRepair(ch.obj, ch.key, ch.form, ch.tunnel, ch.counts)
	}
}

// HoldKey is what a fight over op's object is counted and held back by,
// and what the daemon's facts name a hold by (Hold.Object): the object
// (plan.Op.Object), but for a route of a type other than unicast, whose
// type comes first ("unreachable route 0.0.0.0/0 table 100"). The
// unreachable route that stands in for a route through a tunnel that is
// not up has the route's object (the same table, destination and
// metric: desired), and going from one to the other is a change of the
// tunnel's state, not a repair of either. So a hold of the route never
// keeps its stand-in out when the tunnel goes down (the table left
// empty, what a rule sends there would fall through to the main table
// and leave by the WAN unencapsulated), nor a hold of the stand-in the
// route when it is up again: each is counted, and held back, on its
// own. Their last form is the object's, one for both (see countRepair):
// the two forms by turns, as the tunnel goes down and up, never count.
func HoldKey(op plan.Op) string {
	obj := op.Object()
	if op.Route != nil && op.Route.Type != model.RouteUnicast {
		return op.Route.Type.String() + " " + obj
	}
	return obj
}

// heldObject is the object (plan.Op.Object) of the hold key key (see
// HoldKey).
func heldObject(key string) string {
	if typ, obj, ok := strings.Cut(key, " "); ok && strings.HasPrefix(obj, "route ") && typ != "route" {
		return obj
	}
	return key
}

// form is what op leaves of its object, as a command that makes it so:
// how a repair, the object put back as it was, is told from a change of
// what tunneld wants of it. A tunnel created (and set up), changed in
// place while up, or set up is the same tunnel, up; one changed while
// down is that tunnel, down; a route added or replaced the same route.
// Anything else is its own command.
func form(op plan.Op) string {
	switch {
	case op.Link != nil && op.Kind != plan.LinkDel:
		up := op.Link.Up
		if op.Kind == plan.LinkChange && op.Old != nil {
			// A change in place leaves the tunnel up or down as it
			// was (setting it up is an operation of its own): moved
			// the short way while its device had no address, it is
			// still down, and the converge's setting it up is no
			// repair.
			up = op.Old.Up
		}
		state := " (up)"
		if !up {
			state = " (down)"
		}
		// The creation's first line: the steps after it (the alias,
		// an ipip6 tunnel's address mode) are the same for every form.
		add, _, _ := strings.Cut(plan.Op{Kind: plan.LinkAdd, Link: op.Link}.Command(nil), "\n")
		return add + state
	case op.Kind == plan.RouteReplace:
		return plan.Op{Kind: plan.RouteAdd, Route: op.Route}.Command(nil)
	}
	return op.Command(nil)
}

// countRepair notes that obj was left in form by a change made for a
// reason other than a new configuration. Only a repair counts towards a
// fight, if counts is set: the object put back in the very same form as
// the last change of it left it in, because something else undid it
// (deleted it, changed it, or one time this and the next that). A changed
// environment (a new WAN address every minute, a tunnel set down while
// its device is gone and up when it is back, a route through it standing
// as an unreachable route meanwhile) gives another form and never
// counts. Repairs are counted by key (HoldKey); too many in FightWindow
// and what key names is held back for HoldOff (Deps.HoldOff), with one
// log line saying so, but for the nftables table (filterKey), only said;
// tunnel is the tunnel it belongs to (see tunnelOf), for status. The
// loop converges when the hold ends (see Run).
func (dm *Daemon) countRepair(obj, key, form, tunnel string, counts bool) {
	now := dm.d.Now()
	last, seen := dm.lastForm[obj]
	dm.lastForm[obj] = form
	if !counts || !seen || last != form {
		return
	}
	times := slices.DeleteFunc(dm.repairs[key], func(t time.Time) bool { return now.Sub(t) > FightWindow })
	times = append(times, now)
	dm.repairs[key] = times
	if key == filterKey() {
		// Never held back; said once as the fight starts (a tester's
		// two daemons, with two state directories, rewrote it 8
		// times a second each, without a word).
		if len(times) == FightLimit+1 {
			dm.d.Log.Warn(fmt.Sprintf("something else keeps changing %s (%d repairs in %s): tunneld keeps putting it back, as it guards the tunnels; is another tunneld running here, with another state directory, or a script flushing the ruleset?", key, len(times), FightWindow), "object", key)
		}
		return
	}
	if len(times) > FightLimit {
		dm.held[key] = holding{until: now.Add(dm.d.HoldOff), tunnel: tunnel}
		delete(dm.repairs, key)
		dm.d.Log.Warn(fmt.Sprintf("giving up on %s for %s: something else keeps changing it (%d repairs in %s)", key, dm.d.HoldOff, len(times), FightWindow), "object", key)
	}
}

// filterKey is the nftables table's HoldKey (a function: a package
// variable would be writable data, which on mipsle ends at a 64 KiB
// step). The table is repaired however often something else deletes or
// changes it, never held back: it is what guards the tunnels, and held,
// they stayed up without it for the hold's 5 minutes (a tester's, with
// `nft flush ruleset` run 7 times in 10 s, as a firewall script or the
// restart of a firewall service whose file starts with it does: packets
// with a spoofed inner source reached the LAN). A manager that deletes
// it each time tunneld writes it costs one atomic write of the table
// each time.
func filterKey() string { return plan.Op{Kind: plan.FilterDel}.Object() }

// holding is an object whose repairs are held back (by its HoldKey):
// until when, and the configured tunnel it belongs to ("" for none).
type holding struct {
	until  time.Time
	tunnel string
}

// tunnelOf is the configured tunnel op's object belongs to, "" for none:
// the tunnel itself, an address on it, a route through it (also one that
// names no device, a placeholder or one by a gateway, by the [[route]]
// section it comes from: desired.RouteThrough), a sysctl of its device.
// status shows a hold in the tunnel's block: a route through an "up"
// tunnel that is no longer repaired drops the tunnel's traffic.
func (dm *Daemon) tunnelOf(op plan.Op) string {
	var dev string
	switch {
	case op.Link != nil:
		dev = op.Link.Name
	case op.Addr != nil:
		dev = op.Addr.Link
	case op.Route != nil:
		dev = op.Route.Dev
		if dev == "" && dm.cfg != nil {
			for i := range dm.cfg.Routes {
				r := &dm.cfg.Routes[i]
				if r.Table != op.Route.Table || r.To != op.Route.Dst {
					continue
				}
				if t := desired.RouteThrough(dm.cfg, r); t != nil {
					dev = t.Name
					break
				}
			}
		}
	case op.Sysctl != nil:
		dev = model.SysctlDevice(op.Sysctl.Path)
	}
	if dev == "" || dm.cfg == nil || dm.cfg.TunnelByName(dev) == nil {
		return ""
	}
	return dev
}

// freeRecovered ends the holds of what belongs to each tunnel that
// applied set up (tunneld created it again, or set it up again, after it
// was missing or down), but of the tunnel itself, and forgets their
// repairs and last form: what an outage took with the tunnel (the routes
// through it, which the kernel flushes, its addresses and sysctls) is no
// longer what the other manager undid, and was left out until the hold's
// end however soon the tunnel came back. It reports whether it ended
// any: the converge goes on to put them back (see converge).
//
// This cannot feed a storm: the other manager undoing the object again
// is repaired and counted anew, and held back once more after
// FightLimit+1 repairs; and a tunnel comes back up only as often as an
// outage ends, or as tunneld repairs the tunnel itself, which its own
// count holds back.
func (dm *Daemon) freeRecovered(applied []plan.Op) bool {
	var up []string
	for _, op := range applied {
		if op.Kind == plan.LinkUp && dm.cfg.TunnelByName(op.Name) != nil {
			up = append(up, op.Name)
		}
	}
	freed := false
	// In key order; slices.Sorted(maps.Keys(…)) would link their
	// iterators and a Sorted instantiated for them.
	keys := make([]string, 0, len(dm.held))
	for key := range dm.held {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		h := dm.held[key]
		if !slices.Contains(up, h.tunnel) || key == (model.Link{Name: h.tunnel}).ID() {
			continue
		}
		delete(dm.held, key)
		delete(dm.repairs, key)
		delete(dm.lastForm, heldObject(key))
		dm.d.Log.Info("repairing again: its tunnel is up again", "object", key)
		freed = true
	}
	return freed
}
