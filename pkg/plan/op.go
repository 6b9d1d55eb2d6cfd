// Package plan computes, as a pure function, the ordered list of kernel
// operations that turns the owned observed state into the desired one, and
// prints it as the iproute2 and nft commands an admin would type.
package plan

import (
	"fmt"

	"github.com/tunneld/tunneld/pkg/model"
)

// Kind is the operation an Op performs.
type Kind uint8

// Operations. A plan orders them creations first, then changes, then
// deletions in reverse dependency order (see Diff).
const (
	LinkAdd       Kind = iota + 1 // create a tunnel link (down)
	LinkChange                    // change a live tunnel's parameters in place
	LinkUp                        // set a link up
	LinkDown                      // set a link down (tunneld's own, or a fallback device)
	LinkDel                       // delete a link
	AddrAdd                       // add an interface address
	AddrDel                       // delete an interface address
	RouteAdd                      // add a route that must not exist yet
	RouteReplace                  // change one of tunneld's routes in place
	RouteDel                      // delete a route
	RuleAdd                       // add a policy rule
	RuleDel                       // delete a policy rule
	SysctlSet                     // write a sysctl, recording its original value
	SysctlRestore                 // write back a sysctl's original value
	FilterReplace                 // replace the nftables table atomically
	FilterDel                     // delete the nftables table
	SysctlKeep                    // forget a sysctl's original: someone else changed it since tunneld did
	LinkMark                      // write tunneld's alias on a tunnel it holds by name only
)

// Op is one kernel operation. Exactly one object field is set, matching
// Kind; Old holds the link's previous parameters for LinkChange.
type Op struct {
	Kind   Kind
	Link   *model.Link   `json:",omitempty"`
	Old    *model.Link   `json:",omitempty"`
	Addr   *model.Addr   `json:",omitempty"`
	Route  *model.Route  `json:",omitempty"`
	Rule   *model.Rule   `json:",omitempty"`
	Sysctl *model.Sysctl `json:",omitempty"`
	Filter *model.Filter `json:",omitempty"`
	// OldFilter is, for FilterReplace, the table it replaces (nil: none),
	// for FilterSummary; it is not part of the operation.
	OldFilter *model.Filter `json:"-"`
	// Name is the device for LinkUp and LinkDown (a fallback device has
	// no Link of tunneld's).
	Name string `json:",omitempty"`
	// From is, for a SysctlRestore of an interface's forwarding that
	// tunneld has no record of (the interface appeared after tunneld
	// wrote the forwarding sysctl, with the value tunneld's write gave
	// "default"), the path of "default"'s forwarding: the value written
	// is the one "default" ends with.
	From string `json:",omitempty"`
	// DeviceGone is set on a SysctlRestore of a device's sysctl when the
	// plan has deleted that device before (see differ.deletedBefore):
	// its sysctls went with it, and the operation only forgets the
	// record (a tester's log said the value was written back).
	DeviceGone bool `json:",omitempty"`
}

// Plan is an ordered list of operations; an empty plan means converged.
type Plan struct {
	Ops []Op
	// Tables names routing tables for printing (number → name).
	Tables map[uint32]string `json:"-"`
	// RuleBand is the configuration's rule priority band: the kernel
	// seam records it as used before it adds a rule.
	RuleBand model.RuleBand `json:"-"`
}

// Empty reports whether there is nothing to do.
func (p Plan) Empty() bool { return len(p.Ops) == 0 }

// MovesEndpoints reports whether o changes a tunnel in place to other
// endpoints: those the kernel tells tunnels apart by (model.Link's
// SameTunnel), which it refuses when another tunnel holds them.
func (o Op) MovesEndpoints() bool {
	return o.Kind == LinkChange && o.Old != nil && o.Link != nil && !o.Old.SameTunnel(*o.Link)
}

// OnTunnel is the device o sets up, gives an address or routes through
// ("" for other operations): what it needs in place before it.
func (o Op) OnTunnel() string {
	switch o.Kind {
	case LinkUp:
		return o.Name
	case AddrAdd:
		return o.Addr.Link
	case RouteAdd, RouteReplace:
		return o.Route.Dev
	}
	return ""
}

// Object names what an operation touches, for messages
// (`tunnel "moe"`, `route 10.0.2.0/24 table 42`).
func (o Op) Object() string {
	switch {
	case o.Link != nil:
		return o.Link.ID()
	case o.Addr != nil:
		return o.Addr.ID()
	case o.Route != nil:
		return o.Route.ID()
	case o.Rule != nil:
		return o.Rule.ID()
	case o.Sysctl != nil:
		return o.Sysctl.ID()
	case o.Filter != nil || o.Kind == FilterDel:
		return "nftables table inet " + model.TableName
	}
	return "link " + o.Name
}

// TakeOver says what a LinkMark does, for a warning: the tunnel was
// tunneld's only as the one it was creating when it stopped, or as the
// one the daemon found its own before someone changed its alias.
func (o Op) TakeOver() string {
	return fmt.Sprintf("%s: taking over the %s device %s, which does not carry tunneld's alias "+
		"(left by a tunneld stopped while creating it, or its alias changed since): tunneld now owns it and removes it when the configuration drops it",
		o.Link.ID(), o.Link.Mode.Kind(), o.Link.Name)
}
