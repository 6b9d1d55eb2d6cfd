package model

import (
	"net/netip"
	"sort"
)

// Inputs is the part of the environment that tunneld reads but does not
// own: the devices on the box, the main table's underlay routes, the
// policy rules of others in tunneld's rule band and the current DNS
// answers for peers given by name.
type Inputs struct {
	// Devices are the links by name (tunneld's own tunnels included).
	Devices map[string]Device
	// Routes are the main table's routes that tunneld does not own, used to
	// find the way to a tunnel's remote (its gateway, device and MTU).
	Routes []UnderlayRoute
	// Resolved maps a peer's DNS name to its current addresses.
	Resolved map[string][]netip.Addr
	// Sysctls are the values of the scope's ReadSysctls by path; one that
	// cannot be read (its device does not exist) is left out.
	Sysctls map[string]string
	// ForeignRules are the IPv4 and IPv6 policy rules with a priority in
	// the scope's band (Scope.Band) that are not among tunneld's
	// observed rules (another protocol, or one tunneld cannot read as
	// its own), sorted by priority, then family. A kernel that keeps no
	// rule protocol (before 4.17) gives none: its rules cannot be told
	// from tunneld's.
	ForeignRules []ForeignRule
	// StrayRules are the IPv4 and IPv6 policy rules of tunneld's
	// protocol (RuleProtocol) with a priority outside every band it
	// owns (the scope's and the recorded ones: Scope.OwnsRule): not
	// tunneld's, so never changed or removed, yet in its protocol: the
	// rules of an earlier band whose record was lost (the state
	// directory wiped, or its record unreadable), or someone's. The
	// desired state names each in a warning with the command that
	// deletes it. They are read as the seam reads its own rules (Extra
	// names what tunneld's rules never carry), sorted as State.Sort
	// sorts rules; nil while there are none, as there mostly are.
	StrayRules []Rule
	// HeldTunnels are the configured tunnels whose repairs the daemon
	// holds back (something else keeps deleting or changing them): while
	// one is missing or down, the routes through it stand as unreachable
	// routes, as for any tunnel that is not up. Nil outside the daemon.
	HeldTunnels map[string]bool
	// Refused are the configured tunnels whose creation (or
	// re-creation in another mode) or setting up the kernel refused in
	// the last apply of the same converge, with the reason that says
	// so ("creating it failed: …"): a tunnel it refused is not up, and
	// the routes through it stand as unreachable routes, as for any
	// tunnel that is not up (absent, they let its traffic fall through
	// to main and out by the WAN unencapsulated). Nil outside a
	// converge (status gives the running daemon's), and in its first
	// round.
	Refused map[string]string
	// AddrsUnread says that the devices' addresses were not read (plan
	// --from-empty): a tunnel that follows one waits for that read, not
	// for an address the device lacks.
	AddrsUnread bool
	// SysctlsUnknown says that this process's first observation found
	// tunneld's own objects in the kernel (tunnels with its alias, routes
	// of its protocol, rules in its band, its nftables table) and no
	// sysctl record in the state directory: kept at a stop with
	// keep_on_exit, or by a crash, and the directory wiped since. The
	// values before tunneld of the sysctls found as the configuration
	// sets them are then unknown (desired.UnknownOriginalsWarning).
	SysctlsUnknown bool
	// Warnings are what the seam met reading the kernel and its records
	// that the admin must hear of: a record in the state directory it
	// could not read, and so went on without (what is lost with it, and
	// what to do). Each is given once, by the observation that met it.
	// The engine adds them to the desired state's (desired.Result.Warnings),
	// which apply, plan, status and the daemon's log say.
	Warnings []string
}

// ForeignRule is a policy rule tunneld does not own, as far as placing
// its own rules around it needs: the rules of one family are looked at in
// priority order, and two at one priority in the order they were added.
type ForeignRule struct {
	Priority uint32
	// Family is 4 or 6.
	Family int
}

// SortForeignRules sorts rules by priority, then family. It sorts with
// sort.Sort, which leaves equal elements in the very order
// slices.SortFunc does (both are the one pattern-defeating quicksort,
// generated from one template) without a sort instantiated for
// ForeignRule alone (about 11 KB of the mipsle binary; sort.Sort is
// linked anyway).
func SortForeignRules(rules []ForeignRule) {
	if len(rules) > 1 {
		sort.Sort(foreignRuleOrder(rules))
	}
}

// foreignRuleOrder is SortForeignRules' sort.Interface.
type foreignRuleOrder []ForeignRule

func (s foreignRuleOrder) Len() int      { return len(s) }
func (s foreignRuleOrder) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s foreignRuleOrder) Less(i, j int) bool {
	return s[i].Priority < s[j].Priority || s[i].Priority == s[j].Priority && s[i].Family < s[j].Family
}

// Device is a network device as observed.
type Device struct {
	Name  string
	Index int
	// Kind is the link kind ("" for physical devices, "veth", "ipip", …).
	Kind string
	MTU  int
	// Up is the administrative state, Running the operational one.
	Up, Running bool
	// Addrs are the device's global-scope addresses it can send from
	// (none in duplicate address detection or failed it): preferred
	// primary ones first, then preferred secondary (IPv6: temporary)
	// ones, then deprecated ones; IPv6 newest first, as the kernel lists
	// them.
	Addrs []netip.Prefix
	// Secondary and Deprecated count the addresses of Addrs that are
	// preferred secondary (IPv6: temporary) ones and deprecated ones,
	// which come last, in that order: the others are preferred primary
	// ones (AddrRank).
	Secondary, Deprecated int
	// Unusable are the device's global-scope addresses left out of Addrs
	// because duplicate address detection has not passed, in the
	// kernel's order: never followed, they say why a device has none to
	// follow.
	Unusable []UnusableAddr
	// LinkLocal is the device's first IPv6 link-local address (fe80::…)
	// it can send from, or the zero Addr: never followed either, it says
	// why a device with only that has no IPv6 address to follow.
	LinkLocal netip.Addr
	// Tunnel holds the parameters of a tunnel device tunneld does not
	// own (nil for other devices, and for tunneld's own, which are in
	// State.Links): its endpoints, which the kernel holds one tunnel per,
	// name the device in the way of a tunnel it refuses to create.
	Tunnel *Link
	// Alias is the interface alias of a tunnel device tunneld does not
	// own (ip link set NAME alias …), "" for none: one whose alias
	// someone changed from tunneld's is no longer tunneld's, and the
	// status of the tunnel whose name it holds says how to give it back.
	Alias string `json:",omitempty"`
	// Stats are the device's counters (zero where unknown).
	Stats Stats
}

// AddrRank is the rank of the device's address Addrs[i]: 0 for a
// preferred primary one, 1 for a preferred secondary (IPv6: temporary)
// one, 2 for a deprecated one.
func (d Device) AddrRank(i int) int {
	switch {
	case i >= len(d.Addrs)-d.Deprecated:
		return 2
	case i >= len(d.Addrs)-d.Deprecated-d.Secondary:
		return 1
	}
	return 0
}

// AddrList is a device's addresses as Device holds them: Addrs, and how
// many of them are secondary and deprecated.
type AddrList struct {
	Addrs                 []netip.Prefix
	Secondary, Deprecated int
}

// UnusableAddr is an address its device cannot send from.
type UnusableAddr struct {
	Prefix netip.Prefix
	// Failed: duplicate address detection found the address in use on
	// the link (dadfailed), and the kernel will not use it; else it is
	// still in detection (tentative, not optimistic) and may pass.
	Failed bool
}

// Why says in words what keeps the address unusable: "is in duplicate
// address detection" or "failed duplicate address detection".
func (u UnusableAddr) Why() string {
	if u.Failed {
		return "failed duplicate address detection"
	}
	return "is in duplicate address detection"
}

// Stats are a device's packet counters.
type Stats struct {
	RxPackets, TxPackets, RxBytes, TxBytes, RxErrors, TxErrors, RxDropped, TxDropped uint64
}

// Counter is an nftables rule counter.
type Counter struct {
	Packets, Bytes uint64
}

// UnderlayRoute is a main-table route tunneld does not own: unicast ones
// reach the remote endpoints, and any of them can hold a key tunneld's
// own routes in main would need.
type UnderlayRoute struct {
	Dst    netip.Prefix
	Via    netip.Addr
	Dev    string
	Metric uint32
	// Proto is its route protocol (RTPROT_*: 2 kernel, 3 boot, 4
	// static, 9 ra, 16 dhcp, …), which says where it comes from.
	Proto uint8
	// Type is unicast, or a type that drops what it matches (an
	// admin's blackhole route): those have no Via or Dev, and Lookup
	// passes them by.
	Type RouteType
	// Src is the route's preferred source address (RTA_PREFSRC, `ip
	// route … src`), which the kernel sends from by it.
	Src netip.Addr
	// Expired is set on a route whose lifetime ran out (an IPv6 router
	// advertisement's default route once the router stopped sending
	// them): the kernel lists it until its garbage collection, and no
	// longer takes it; Lookup passes it by. It still holds its key.
	Expired bool
}

// Lookup returns the most specific route containing a, with the lowest
// metric among equally specific ones, of those the kernel takes (unicast,
// not expired).
func Lookup(routes []UnderlayRoute, a netip.Addr) (UnderlayRoute, bool) {
	return LookupBy(routes, a, "")
}

// LookupBy is Lookup among the routes by the device dev ("": all).
func LookupBy(routes []UnderlayRoute, a netip.Addr, dev string) (UnderlayRoute, bool) {
	var best UnderlayRoute
	found := false
	for _, r := range routes {
		if r.Type != RouteUnicast || r.Expired || !r.Dst.Contains(a) || dev != "" && r.Dev != dev {
			continue
		}
		if !found || r.Dst.Bits() > best.Dst.Bits() ||
			(r.Dst.Bits() == best.Dst.Bits() && r.Metric < best.Metric) {
			best, found = r, true
		}
	}
	return best, found
}
