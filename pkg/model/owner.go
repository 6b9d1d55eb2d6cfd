package model

import (
	"fmt"
	"slices"
	"strconv"
)

// Ownership markers. Everything tunneld creates carries one of them; every
// object without one is foreign and is never changed or removed.
const (
	// RouteProtocol is the rtm_protocol of every route tunneld installs
	// (`ip route show proto 116`). Unassigned in iproute2's rt_protos.
	RouteProtocol = 116
	// RuleProtocol is the FRA_PROTOCOL of every policy rule tunneld installs
	// (`ip rule show protocol 116`); kernels since 4.17 keep it.
	RuleProtocol = 116
	// DefaultRulePriorityMin and DefaultRulePriorityMax bound the default
	// priority band for tunneld's rules; a rule is owned only when it has
	// RuleProtocol and a priority inside the configured band.
	DefaultRulePriorityMin = 20000
	DefaultRulePriorityMax = 20999
	// TableName is the nftables table tunneld owns (family inet). It is
	// replaced as a whole, atomically, and never touched otherwise.
	TableName = "tunneld"
	// LinkAlias is written as IFLA_IFALIAS on every link tunneld creates, so
	// that a link left behind by an older configuration is still recognised.
	LinkAlias = "tunneld"
	// StateDir holds what tunneld must remember across restarts: the
	// original values of the sysctls it changed and the rule priority
	// bands it has put rules in.
	StateDir = "/run/tunneld"
)

// RouteProtocolRA is the route protocol of the routes the kernel adds
// from router advertisements (RTPROT_RA: `ip route` shows "proto ra").
const RouteProtocolRA = 9

// RouteProtocolWord is a route protocol as ip(8) writes the ones a route
// tunneld does not own mostly has (kernel, boot, static, ra, dhcp), the
// others by number.
func RouteProtocolWord(p uint8) string {
	switch p {
	case 2:
		return "kernel"
	case 3:
		return "boot"
	case 4:
		return "static"
	case RouteProtocolRA:
		return "ra"
	case 16:
		return "dhcp"
	}
	return strconv.FormatUint(uint64(p), 10)
}

// Table numbers with fixed meaning in the kernel.
const (
	TableUnspec  = 0
	TableDefault = 253
	TableMain    = 254
	TableLocal   = 255
)

// TableWord is a table as ip(8) and the configuration write it: main,
// local and default by name, the others by number.
func TableWord(t uint32) string {
	switch t {
	case TableMain:
		return "main"
	case TableLocal:
		return "local"
	case TableDefault:
		return "default"
	}
	return strconv.FormatUint(uint64(t), 10)
}

// Scope tells the kernel seam what to read back as tunneld's own.
type Scope struct {
	// Links are the link names of the configuration with their modes; links
	// carrying LinkAlias are included whatever their name.
	Links map[string]Mode
	// Band is the configuration's rule priority band. The kernel seam
	// owns the rules in the bands it recorded as used as well (a
	// configuration may have moved the band since): see OwnsRule.
	Band RuleBand
	// Sysctls are the sysctl paths the configuration sets; paths with a
	// recorded original are included as well.
	Sysctls []string
	// Devices, when non-nil, limits which foreign devices are reported in
	// Inputs (nil means all).
	Devices []string
	// ReadSysctls are sysctl paths read as inputs (Inputs.Sysctls), never
	// owned: values that what the configuration does depends on, which
	// tunneld does not write.
	ReadSysctls []string
}

// OwnsRule reports whether a rule of tunneld's protocol at priority is
// tunneld's: inside the scope's band or one of the recorded ones.
func (s Scope) OwnsRule(recorded []RuleBand, priority uint32) bool {
	if s.Band.Contains(priority) {
		return true
	}
	for _, b := range recorded {
		if b.Contains(priority) {
			return true
		}
	}
	return false
}

// RuleBand is a range of rule priorities, both ends included. The kernel
// seam records every band it adds rules in, so that a rule of tunneld's
// stays its own after the configuration moves the band.
type RuleBand struct {
	Min, Max uint32
}

// Contains reports whether a priority lies inside the band.
func (b RuleBand) Contains(priority uint32) bool {
	return priority >= b.Min && priority <= b.Max
}

// BandsInUse is what the record of bands holds after a plan that added
// or deleted rules, given the priorities of the rules of tunneld's
// protocol now in the kernel: current (the plan's band) if one of them
// lies in it, and each other recorded band in which one lies outside
// current. A band it drops has nothing of tunneld's left in it (or only
// what current covers).
func BandsInUse(recorded []RuleBand, current RuleBand, priorities []uint32) []RuleBand {
	used := func(b RuleBand, exceptCurrent bool) bool {
		for _, p := range priorities {
			if b.Contains(p) && !(exceptCurrent && current.Contains(p)) {
				return true
			}
		}
		return false
	}
	var keep []RuleBand
	if used(current, false) {
		keep = append(keep, current)
	}
	for _, b := range recorded {
		if b != current && !slices.Contains(keep, b) && used(b, true) {
			keep = append(keep, b)
		}
	}
	return keep
}

// String prints the band as the configuration gives it: 20000-20999.
func (b RuleBand) String() string { return fmt.Sprintf("%d-%d", b.Min, b.Max) }
