package config

import "net/netip"

// CarriesIPv6 reports whether IPv6 goes through the tunnel t of c, so that
// its MTU must be at least model.IPv6MinMTU: its mode's inner packets are
// IPv6 (sit, ip6ip6), or its mode can carry IPv6 (gre) and the
// configuration gives it an IPv6 address, routes an IPv6 destination
// through it (a [[route]] with dev the tunnel, in any table), has an IPv6
// [[rule]] with it as iif or oif, or accepts IPv6 from it (an IPv6
// allowed_sources prefix, a [[forward]] on it with an IPv6 src or dst).
// ipip and ipip6 tunnels carry only IPv4 (the configuration refuses IPv6
// on them). What is not in the configuration (IPv6 routes added by hand
// through a gre tunnel) is not seen.
func (c *Config) CarriesIPv6(t *Tunnel) bool {
	if !t.Mode.CarriesIPv6() {
		return false
	}
	if !t.Mode.CarriesIPv4() {
		return true
	}
	for _, a := range t.Addresses {
		if a.Prefix.Addr().Is6() {
			return true
		}
	}
	if anyIPv6(t.AllowedSources) {
		return true
	}
	for _, r := range c.Routes {
		if r.Dev == t.Name && r.To.Addr().Is6() {
			return true
		}
	}
	for _, r := range c.Rules {
		if r.Family == 6 && (r.IIF == t.Name || r.OIF == t.Name) {
			return true
		}
	}
	for _, f := range c.Forwards {
		if f.Tunnel == t.Name && (anyIPv6(f.Src) || anyIPv6(f.Dst)) {
			return true
		}
	}
	return false
}

func anyIPv6(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}
