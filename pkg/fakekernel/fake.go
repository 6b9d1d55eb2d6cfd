// Package fakekernel is an in-memory kernel.Kernel. It keeps devices,
// tunnels, addresses, routes, rules, sysctls and nftables tables the way
// the Linux kernel does, including the behaviours tunneld must live with:
// routes through a device vanish when it goes down or is deleted, a route
// through a down device is refused, one tunnel per endpoint pair, a gre
// tunnel with ignore-df refuses a change to pmtudisc, foreign objects
// that share a key with tunneld's (a foreign route beside
// one of tunneld's with its table, destination and metric stays as it is
// when tunneld's changes, unless the change would join tunneld's IPv6
// route to it: refused, as by Linux's seam), unreachable, blackhole
// and prohibit routes that refuse a gateway or device, and the copies of the
// forwarding sysctls: writing net.ipv4.ip_forward (when its value changes)
// writes it to every interface's and "default"'s forwarding, and its
// opposite to all.accept_redirects; every write of
// net.ipv6.conf.all.forwarding writes it to every interface's and
// "default"'s IPv6 forwarding; a new device takes "default"'s, and
// "default"'s accept_ra (1, as the kernel has it) and proxy_arp (0): a
// tunnel deleted and created again loses what was written to its own.
package fakekernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// Route is a route in the fake kernel with its protocol.
type Route struct {
	model.Route
	Proto uint8
}

// Rule is a rule in the fake kernel with its protocol.
type Rule struct {
	model.Rule
	Proto uint8
}

// Kernel is the in-memory kernel. Its exported fields may be set up and
// inspected by tests while no call is running.
type Kernel struct {
	mu sync.Mutex
	// Devices are all links by name, tunnels included.
	Devices map[string]*model.Device
	// Tunnels are the tunnel parameters of tunnel devices, by name.
	Tunnels map[string]model.Link
	// Aliases holds IFLA_IFALIAS by device name.
	Aliases map[string]string
	Addrs   []model.Addr
	Routes  []Route
	Rules   []Rule
	// Creating holds the tunnels a crash left without the alias while
	// they were being created (Linux: creating.json): tunneld's by their
	// name. Any other tunnel without the alias is foreign.
	Creating map[string]bool
	// owned are the tunnels the last observation found tunneld's, with
	// their device indexes, by name: as the Linux seam, one found again
	// without the alias, the same device and the same tunnel, is still
	// tunneld's, unmarked.
	owned map[string]ownedTunnel
	// Sysctls are the values under /proc/sys by path; set them with
	// SetSysctl to have the kernel copy a forwarding sysctl's value.
	Sysctls map[string]string
	// Originals are the record of the sysctls tunneld changed (what
	// /run/tunneld keeps on Linux).
	Originals kernel.SysctlRecord
	// Bands are the rule priority bands recorded as used (what
	// /run/tunneld keeps on Linux): tunneld's rules in them are owned
	// whatever the scope's band.
	Bands []model.RuleBand
	// Tables are nftables tables by "family name"; tunneld's is
	// "inet tunneld", anything else is foreign.
	Tables map[string]string
	filter *model.Filter
	// Drivers lists the tunnel kinds the kernel supports (nil: all).
	Drivers map[string]bool
	// Writes counts state-changing operations applied.
	Writes int
	// AddrReads counts the calls of DeviceAddrs.
	AddrReads int
	// Fail, when set, may fail an operation before it is applied (or, with
	// an error wrapping ErrTorn, half-way through it).
	Fail func(plan.Op) error
	// ObserveFail, when set, may fail an Observe before it reads (as
	// the real seam's does when a flood of foreign changes keeps
	// interrupting its dumps).
	ObserveFail func() error
	next        int
}

// ownedTunnel is a tunnel an observation found tunneld's (Kernel.owned).
type ownedTunnel struct {
	index int
	link  model.Link
	// kept: on a running daemon's word (Keep), whatever the tunnel is.
	kept bool
}

// Keep implements kernel.Keeper.
func (k *Kernel) Keep(indexes map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, i := range indexes {
		if k.owned == nil {
			k.owned = map[string]ownedTunnel{}
		}
		k.owned[name] = ownedTunnel{index: i, kept: true}
	}
}

// Forget drops the memory of the tunnels the last observation found
// tunneld's, which a new process's seam (status, apply) starts without.
func (k *Kernel) Forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.owned)
}

// New returns a kernel with a loopback device and the usual sysctls.
func New() *Kernel {
	k := &Kernel{
		Devices: map[string]*model.Device{},
		Tunnels: map[string]model.Link{},
		Aliases: map[string]string{},
		Sysctls: map[string]string{
			model.IPForward: "0", "net/ipv4/conf/all/accept_redirects": "1", "net/ipv4/conf/default/forwarding": "0",
			model.IPv6Forward: "0", "net/ipv6/conf/default/forwarding": "0",
			"net/ipv6/conf/all/accept_ra": "1", "net/ipv6/conf/default/accept_ra": "1",
			"net/ipv4/conf/default/proxy_arp": "0",
		},
		Originals: kernel.SysctlRecord{},
		Tables:    map[string]string{},
	}
	k.AddDevice(model.Device{Name: "lo", MTU: 65536, Up: true, Running: true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}})
	return k
}

// AddDevice adds a foreign device (and its proxy_arp sysctl, the
// forwarding ones and IPv6 accept_ra, as "default" has them).
func (k *Kernel) AddDevice(d model.Device) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.addDevice(d)
}

func (k *Kernel) addDevice(d model.Device) *model.Device {
	k.next++
	d.Index = k.next
	if d.MTU == 0 {
		d.MTU = 1500
	}
	k.Devices[d.Name] = &d
	k.Sysctls["net/ipv4/conf/"+d.Name+"/proxy_arp"] = k.Sysctls["net/ipv4/conf/default/proxy_arp"]
	for _, f := range []string{"ipv4", "ipv6"} {
		k.Sysctls["net/"+f+"/conf/"+d.Name+"/forwarding"] = k.Sysctls["net/"+f+"/conf/default/forwarding"]
	}
	k.Sysctls["net/ipv6/conf/"+d.Name+"/accept_ra"] = k.Sysctls["net/ipv6/conf/default/accept_ra"]
	return &d
}

// ErrTorn, wrapped in an error Fail returns, stops an operation half-way,
// where the real kernel seam sends it in two datagrams and a process can be
// killed between them: a LinkAdd creates the tunnel without tunneld's
// alias. Other operations are stopped before they start, as without it.
var ErrTorn = errors.New("torn")

// SetFail sets Fail while no operation is being applied.
func (k *Kernel) SetFail(f func(plan.Op) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Fail = f
}

// SetObserveFail sets ObserveFail while no observation is being made.
func (k *Kernel) SetObserveFail(f func() error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ObserveFail = f
}

// DelDevice removes a device and everything that referred to it.
func (k *Kernel) DelDevice(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.delDevice(name)
}

func (k *Kernel) delDevice(name string) {
	delete(k.Devices, name)
	delete(k.Tunnels, name)
	delete(k.Aliases, name)
	delete(k.Creating, name)
	for p := range k.Sysctls {
		if model.SysctlDevice(p) == name {
			delete(k.Sysctls, p)
		}
	}
	k.Addrs = slices.DeleteFunc(k.Addrs, func(a model.Addr) bool { return a.Link == name })
	k.flushRoutes(name)
}

// SetUp sets a device's administrative state; down flushes its routes.
func (k *Kernel) SetUp(name string, up bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.Devices[name]; ok {
		d.Up, d.Running = up, up
		if !up {
			k.flushRoutes(name)
		}
	}
}

// SetAddrs replaces a device's addresses (a WAN address change).
func (k *Kernel) SetAddrs(name string, addrs ...netip.Prefix) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.Devices[name]; ok {
		d.Addrs = addrs
	}
}

// SetUnusable replaces a device's addresses in duplicate address
// detection or failed it (Device.Unusable), which it reports apart from
// the others, as the Linux seam does.
func (k *Kernel) SetUnusable(name string, addrs ...model.UnusableAddr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.Devices[name]; ok {
		d.Unusable = addrs
	}
}

func (k *Kernel) flushRoutes(dev string) {
	k.Routes = slices.DeleteFunc(k.Routes, func(r Route) bool { return r.Dev == dev })
}

// AddForeignRoute installs a route tunneld does not own.
func (k *Kernel) AddForeignRoute(r model.Route, proto uint8) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Routes = append(k.Routes, Route{r, proto})
}

// AddForeignRule installs a rule tunneld does not own.
func (k *Kernel) AddForeignRule(r model.Rule, proto uint8) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Rules = append(k.Rules, Rule{r, proto})
}

// Filter returns tunneld's table as the fake holds it.
func (k *Kernel) Filter() *model.Filter {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.filter
}

// SetFilter replaces tunneld's table behind its back (nil deletes it).
func (k *Kernel) SetFilter(f *model.Filter) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setFilter(f)
}

func (k *Kernel) setFilter(f *model.Filter) {
	k.filter = f
	key := "inet " + model.TableName
	if f == nil {
		delete(k.Tables, key)
	} else {
		k.Tables[key] = f.String()
	}
}

var _ kernel.Kernel = (*Kernel)(nil)

// Observe implements kernel.Kernel.
func (k *Kernel) Observe(ctx context.Context, scope model.Scope) (model.State, model.Inputs, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ObserveFail != nil {
		if err := k.ObserveFail(); err != nil {
			return model.State{}, model.Inputs{}, err
		}
	}
	var s model.State
	for name, l := range k.Tunnels {
		d := k.Devices[name]
		o, seen := k.owned[name]
		ours := k.Aliases[name] == model.LinkAlias || k.Creating[name] ||
			seen && d != nil && d.Index == o.index && (o.kept || l.SameAs(o.link))
		if !ours {
			continue
		}
		l.MTU, l.Up, l.Unmarked = d.MTU, d.Up, k.Aliases[name] != model.LinkAlias
		s.Links = append(s.Links, l)
		for _, a := range k.Addrs {
			if a.Link == name {
				s.Addrs = append(s.Addrs, a)
			}
		}
	}
	clear(k.owned)
	for _, l := range s.Links {
		if k.owned == nil {
			k.owned = map[string]ownedTunnel{}
		}
		k.owned[l.Name] = ownedTunnel{index: k.Devices[l.Name].Index, link: l}
	}
	in := model.Inputs{Devices: map[string]model.Device{}}
	for _, r := range k.Routes {
		if r.Proto == model.RouteProtocol {
			s.Routes = append(s.Routes, r.Route)
		} else if r.Table == model.TableMain {
			in.Routes = append(in.Routes, model.UnderlayRoute{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Proto: r.Proto, Type: r.Type, Src: r.Src})
		}
	}
	for _, r := range k.Rules {
		switch {
		case r.Proto == model.RuleProtocol && scope.OwnsRule(k.Bands, r.Priority):
			s.Rules = append(s.Rules, r.Rule)
		case scope.Band.Contains(r.Priority):
			in.ForeignRules = append(in.ForeignRules, model.ForeignRule{Priority: r.Priority, Family: r.Family})
		case r.Proto == model.RuleProtocol:
			// Outside every band tunneld owns: the Linux seam's
			// strayRule.
			in.StrayRules = append(in.StrayRules, r.Rule)
		}
	}
	model.SortForeignRules(in.ForeignRules)
	in.StrayRules = model.SortedRules(in.StrayRules)
	for _, p := range k.observedSysctls(scope) {
		o, recorded := k.Originals[p]
		if v, ok := k.Sysctls[p]; ok {
			s.Sysctls = append(s.Sysctls, model.Sysctl{Path: p, Value: v, Original: o.Original, Ours: o.Ours})
		} else if recorded {
			s.Sysctls = append(s.Sysctls, model.Sysctl{Path: p, Original: o.Original, Ours: o.Ours})
		}
	}
	if len(scope.ReadSysctls) > 0 {
		in.Sysctls = make(map[string]string, len(scope.ReadSysctls))
	}
	for _, p := range scope.ReadSysctls {
		if v, ok := k.Sysctls[p]; ok {
			in.Sysctls[p] = v
		}
	}
	s.Filter = k.filter
	for name, d := range k.Devices {
		c := *d
		c.Addrs, c.Unusable = slices.Clone(d.Addrs), slices.Clone(d.Unusable)
		if l, ok := k.Tunnels[name]; ok && !slices.ContainsFunc(s.Links, func(o model.Link) bool { return o.Name == name }) {
			l.Name = name
			c.Tunnel = &l // someone else's
		}
		in.Devices[name] = c
	}
	s.Sort()
	slices.SortFunc(in.Routes, func(a, b model.UnderlayRoute) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return s, in, ctx.Err()
}

// Apply implements kernel.Kernel.
func (k *Kernel) Apply(ctx context.Context, p plan.Plan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ae *kernel.ApplyError
	rulesChanged, unguarded := false, false
	var notMoved map[string]bool   // as the Linux seam: tunnels whose move failed
	var notCreated map[string]bool // and those whose creation failed
	for i, op := range p.Ops {
		if err := ctx.Err(); err != nil {
			kernel.Collect(&ae, op, err)
			continue
		}
		if op.Kind == plan.LinkUp && unguarded {
			// As the Linux seam: no tunnel up without its table.
			kernel.Collect(&ae, op, kernel.ErrUnguarded)
			continue
		}
		if dev := op.OnTunnel(); dev != "" && notMoved[dev] || dev != "" && notCreated[dev] ||
			op.Kind == plan.SysctlSet && notCreated[model.SysctlDevice(op.Sysctl.Path)] {
			// As the Linux seam: not set up, addressed or routed
			// through where it was left; nothing sent to a tunnel
			// whose creation failed, the one error.
			if ae == nil {
				ae = &kernel.ApplyError{}
			}
			ae.Skipped = append(ae.Skipped, op)
			continue
		}
		failed := func() {
			if op.MovesEndpoints() {
				notMoved = setTrue(notMoved, op.Link.Name)
			}
			if op.Kind == plan.LinkAdd {
				notCreated = setTrue(notCreated, op.Link.Name)
			}
		}
		if k.Fail != nil {
			if err := k.Fail(op); err != nil {
				if errors.Is(err, ErrTorn) && op.Kind == plan.LinkAdd && k.linkAdd(*op.Link) == nil {
					// Created, the alias not yet written: tunneld's
					// as the one it was creating (creating.json).
					delete(k.Aliases, op.Link.Name)
					k.Creating = setTrue(k.Creating, op.Link.Name)
				}
				kernel.Collect(&ae, op, err)
				unguarded = unguarded || op.Kind == plan.FilterReplace
				failed()
				continue
			}
		}
		switch op.Kind {
		case plan.RuleAdd:
			if !slices.Contains(k.Bands, p.RuleBand) {
				k.Bands = append(k.Bands, p.RuleBand)
			}
			rulesChanged = true
		case plan.RuleDel:
			rulesChanged = true
		}
		err := k.apply(op, p.Ops[i+1:])
		if err == nil {
			k.Writes++
		} else {
			failed()
		}
		unguarded = unguarded || op.Kind == plan.FilterReplace && err != nil
		kernel.Collect(&ae, op, err)
	}
	if rulesChanged {
		k.syncBands(p.RuleBand)
	}
	if ae != nil {
		return ae
	}
	return nil
}

// syncBands keeps the recorded bands model.BandsInUse keeps, as the
// Linux seam does after a plan that changed rules.
func (k *Kernel) syncBands(current model.RuleBand) {
	var prios []uint32
	for _, r := range k.Rules {
		if r.Proto == model.RuleProtocol {
			prios = append(prios, r.Priority)
		}
	}
	k.Bands = model.BandsInUse(k.Bands, current, prios)
}

func errno(e syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), e)
}

var _ kernel.AddrReader = (*Kernel)(nil)

// DeviceAddrs implements kernel.AddrReader. AddrReads counts the calls.
func (k *Kernel) DeviceAddrs(ctx context.Context) (map[int]model.AddrList, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.AddrReads++
	out := map[int]model.AddrList{}
	for _, d := range k.Devices {
		if len(d.Addrs) > 0 {
			out[d.Index] = model.AddrList{Addrs: slices.Clone(d.Addrs), Secondary: d.Secondary, Deprecated: d.Deprecated}
		}
	}
	return out, ctx.Err()
}

// SetSysctl writes a sysctl as an admin would, with the kernel's copies.
func (k *Kernel) SetSysctl(p, v string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writeSysctl(p, v)
}

// writeSysctl writes p, and what the kernel copies the write onto.
func (k *Kernel) writeSysctl(p, v string) {
	old := k.Sysctls[p]
	k.Sysctls[p] = v
	if !model.WriteCopies(p, old, v) {
		return
	}
	for _, f := range k.copiesOf(p) {
		k.Sysctls[f] = model.CopiedValue(f, v)
	}
}

// copiesOf lists the sysctls that exist and that the kernel overwrites
// when p is written, sorted.
func (k *Kernel) copiesOf(p string) []string {
	if p != model.IPForward && p != model.IPv6Forward {
		return nil
	}
	var out []string
	for f := range k.Sysctls {
		if model.SysctlLeader(f) == p {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// observedSysctls are the paths Observe reads, as the Linux seam picks
// them: those in scope; the recorded ones, but for the copies of a
// forwarding sysctl in scope; and every copy of a recorded forwarding
// sysctl out of scope.
func (k *Kernel) observedSysctls(scope model.Scope) []string {
	paths := slices.Clone(scope.Sysctls)
	for p := range k.Originals {
		if l := model.SysctlLeader(p); l != "" && slices.Contains(scope.Sysctls, l) {
			continue
		}
		paths = append(paths, p)
	}
	for _, leader := range []string{model.IPForward, model.IPv6Forward} {
		if _, recorded := k.Originals[leader]; recorded && !slices.Contains(scope.Sysctls, leader) {
			paths = append(paths, k.copiesOf(leader)...)
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// setTrue sets m[name], making m if it is nil.
func setTrue(m map[string]bool, name string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[name] = true
	return m
}
