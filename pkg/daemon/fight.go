package daemon

import (
	"fmt"
	"slices"
	"time"

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

// countRepair notes a change of op's object made for a reason other than
// a new configuration. Only a repair counts towards a fight: the very same
// command applied again, because something else undid it. A changed
// environment (a new WAN address every minute) gives a different command
// and never counts. Too many repairs in FightWindow and the object is held
// back for HoldOff, with one log line saying so.
func (dm *Daemon) countRepair(op plan.Op) {
	obj, now := op.Object(), dm.d.Now()
	cmd := op.Command(nil)
	last, seen := dm.lastCmd[obj]
	dm.lastCmd[obj] = cmd
	if !seen || last != cmd {
		return
	}
	times := slices.DeleteFunc(dm.repairs[obj], func(t time.Time) bool { return now.Sub(t) > FightWindow })
	times = append(times, now)
	dm.repairs[obj] = times
	if len(times) > FightLimit {
		dm.held[obj] = now.Add(HoldOff)
		delete(dm.repairs, obj)
		dm.d.Log.Warn(fmt.Sprintf("giving up on %s for %s: something else keeps changing it (%d repairs in %s)", obj, HoldOff, len(times), FightWindow), "object", obj)
	}
}
