package config

import (
	"net/netip"
	"strconv"

	"github.com/tunneld/tunneld/pkg/model"
)

// tableRef resolves a table given by name or number.
func (d *decoder) tableRef(c *Config, p keyPath, v any) (uint32, bool) {
	switch v := v.(type) {
	case string:
		if id, ok := c.Tables[v]; ok {
			return id, true
		}
		switch {
		case d.refusedTables[v]: // its entry's error says it
		case validTable(v):
			// A tester's table = "300".
			d.errorf(p, "unknown table %q (a number goes without quotes: table = %s; or name it in [tables])", v, v)
		default:
			d.errorf(p, "unknown table %q (name it in [tables])", v)
		}
	case int64:
		switch {
		case v == model.TableMain || v == model.TableLocal || v == model.TableDefault:
			d.errorf(p, "table %d is reserved: write %q", v, reservedName(uint32(v)))
		case v < 1 || v > 1<<32-1:
			d.errorf(p, "table %d is out of range 1–4294967295", v)
		default:
			return uint32(v), true
		}
	default:
		d.errorf(p, "must be a table name or number, not %s", typeName(v))
	}
	return 0, false
}

var (
	routeKeys = []string{"to", "type", "via", "dev", "onlink", "metric", "table", "src"}
	ruleKeys  = []string{"from", "to", "iif", "oif", "fwmark", "priority", "table", "family"}
)

func (d *decoder) route(c *Config, i int, t *table) Route {
	r := Route{Index: i, Table: model.TableMain}
	isDefault := false
	if s, ok := t.str("to"); ok {
		if s == "default" {
			isDefault = true
		} else if p, err := parsePrefix(s); err != nil {
			t.errorf("to", "%v", err)
		} else {
			r.To = p
		}
	} else if !t.has("to") {
		d.add(t.path, true, `missing option to (a prefix or "default")`)
	}
	typeUnknown := false
	if s, ok := t.str("type"); ok {
		if typ, ok := model.ParseRouteType(s); ok {
			r.Type = typ
		} else {
			t.errorf("type", `must be "unicast", "unreachable", "blackhole" or "prohibit", not %q`, s)
			typeUnknown = true
		}
	} else if t.has("type") {
		typeUnknown = true // not a string: said so
	}
	if r.Type != model.RouteUnicast {
		d.dropRoute(t, r.Type)
	} else {
		d.forwardingRoute(t, &r, !typeUnknown)
	}
	if n, ok := t.integer("metric", 0, 1<<32-1); ok {
		r.Metric = uint32(n)
	}
	if v, ok := t.get("table"); ok {
		if id, ok := d.tableRef(c, t.at("table"), v); ok {
			r.Table = id
		} else {
			r.Table = 0 // refused, and said so: no follow-on errors
		}
	}
	t.done(routeKeys...)
	d.routeFamily(c, t, &r, isDefault)
	return r
}

// dropRoute checks an unreachable, blackhole or prohibit route: the
// kernel drops what it matches, and refuses it a gateway or device.
func (d *decoder) dropRoute(t *table, typ model.RouteType) {
	article := "a"
	if typ == model.RouteUnreachable {
		article = "an"
	}
	for _, k := range []string{"via", "dev", "src"} {
		if _, ok := t.get(k); ok {
			t.errorf(k, "%s %s route has no %s", article, typ, k)
		}
	}
	if t.boolean("onlink", false) {
		t.errorf("onlink", "%s %s route has no onlink", article, typ)
	}
}

// forwardingRoute reads a unicast route's gateway, device and source;
// one of the first two is needed unless the type was not understood.
func (d *decoder) forwardingRoute(t *table, r *Route, needNexthop bool) {
	if s, ok := t.str("via"); ok {
		if s == "peer" {
			r.ViaPeer = true
		} else if a, err := parseAddr(s); err != nil {
			t.errorf("via", `%v (want an address or "peer")`, err)
		} else {
			r.Via = a
		}
	}
	if s, ok := t.str("dev"); ok {
		if err := checkIfname(s); err != nil {
			t.errorf("dev", "%v", err)
		}
		r.Dev = s
	}
	if needNexthop && !t.has("dev") && !t.has("via") {
		d.add(t.path, true, "a route needs dev, via or both")
	}
	if r.Via.Is6() && r.Via.IsLinkLocalUnicast() && !t.has("dev") {
		// Every link has the fe80::/64: the kernel refuses it
		// ("Egress device not specified").
		t.errorf("via", "a link-local gateway needs dev (the link it is on)")
	}
	r.OnLink = t.boolean("onlink", false)
	if r.OnLink && !t.has("dev") {
		// The kernel refuses it ("Nexthop device required for
		// onlink"): the gateway is taken as on a link it must be told.
		t.errorf("onlink", "needs dev, the link the gateway is on")
	}
	if s, ok := t.str("src"); ok {
		if a, err := parseAddr(s); err != nil {
			t.errorf("src", "%v", err)
		} else {
			r.Src = a
		}
	}
}

// GatewayTunnel is the configured tunnel whose own subnet (an address's
// prefix, or its peer) holds the gateway via, the narrowest of them as
// the kernel's lookup of the gateway takes it; nil for none. A route with
// that gateway and no dev goes through the tunnel, unless a device
// tunneld does not know holds a narrower subnet with it (the kernel then
// takes that one; config cannot know).
func (c *Config) GatewayTunnel(via netip.Addr) *Tunnel {
	if !via.IsValid() {
		return nil
	}
	var best *Tunnel
	bits := -1
	for _, t := range c.Tunnels {
		for _, a := range t.Addresses {
			n := -1
			switch {
			case a.Peer.IsValid() && a.Peer == via:
				n = via.BitLen()
			case !a.Peer.IsValid() && a.Prefix.Masked().Contains(via):
				n = a.Prefix.Bits()
			}
			if n > bits {
				best, bits = t, n
			}
		}
	}
	return best
}

// routeFamily settles "default" to the family the route is for and checks
// that destination, gateway, source and tunnel agree.
func (d *decoder) routeFamily(c *Config, t *table, r *Route, isDefault bool) {
	tun := c.TunnelByName(r.Dev)
	if r.Dev == "" && r.Type == model.RouteUnicast {
		tun = c.GatewayTunnel(r.Via)
	}
	if tun != nil {
		r.Through = tun.Name
	}
	if r.ViaPeer && tun == nil {
		if !d.undecodedTunnels[r.Dev] {
			t.errorf("via", `"peer" needs dev to name one of the configured tunnels`)
		}
		r.ViaPeer = false
	}
	var want6, known bool
	switch {
	case r.Via.IsValid():
		want6, known = r.Via.Is6(), true
	case r.ViaPeer:
		want6, known = !tun.Mode.CarriesIPv4(), true
	case tun != nil:
		want6, known = !tun.Mode.CarriesIPv4(), true
	}
	if isDefault {
		r.To = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if known && want6 {
			r.To = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	}
	if !r.To.IsValid() {
		return
	}
	is6 := r.To.Addr().Is6()
	if r.Via.IsValid() && r.Via.Is6() != is6 {
		t.errorf("via", "gateway %s and destination %s are of different families", r.Via, r.To)
	}
	if r.Src.IsValid() && r.Src.Is6() != is6 {
		t.errorf("src", "source %s and destination %s are of different families", r.Src, r.To)
	}
	if tun != nil && (is6 && !tun.Mode.CarriesIPv6() || !is6 && !tun.Mode.CarriesIPv4()) {
		t.errorf("dev", "tunnel %q (mode %s) does not carry %s", tun.Name, tun.Mode, familyName(r.To.Addr()))
	}
}

func (d *decoder) rule(c *Config, i int, t *table) Rule {
	r := Rule{Index: i}
	for _, k := range []string{"from", "to"} {
		s, ok := t.str(k)
		if !ok {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			t.errorf(k, "%v", err)
			continue
		}
		if k == "from" {
			r.From = p
		} else {
			r.To = p
		}
	}
	for _, k := range []string{"iif", "oif"} {
		s, ok := t.str(k)
		if !ok {
			continue
		}
		if err := checkIfname(s); err != nil {
			t.errorf(k, "%v", err)
		}
		if k == "iif" {
			r.IIF = s
		} else {
			r.OIF = s
		}
	}
	if v, ok := t.get("fwmark"); ok {
		switch v := v.(type) {
		case int64:
			if n, ok := d.integer(t.at("fwmark"), v, 0, 1<<32-1); ok {
				r.Mark, r.Mask, r.HasMark = uint32(n), 0xffffffff, true
			}
		case string:
			m, k, err := parseMark(v)
			if err != nil {
				t.errorf("fwmark", "%v", err)
			}
			r.Mark, r.Mask, r.HasMark = m, k, err == nil
		default:
			t.errorf("fwmark", "must be a number or \"MARK/MASK\", not %s", typeName(v))
		}
	}
	if n, ok := t.integer("priority", 1, 32765); ok {
		r.Priority = uint32(n)
		if r.Priority < c.Global.RulePriorityMin || r.Priority > c.Global.RulePriorityMax {
			t.errorf("priority", "%d is outside tunneld's rule band %d–%d (global.rule_priority_min/max)", n, c.Global.RulePriorityMin, c.Global.RulePriorityMax)
		}
	}
	if v, ok := t.get("table"); ok {
		if id, ok := d.tableRef(c, t.at("table"), v); ok {
			r.Table = id
		}
	} else {
		d.add(t.path, true, "missing option table")
	}
	r.Family = 4
	if s, ok := t.str("family"); ok {
		switch s {
		case "ipv4":
		case "ipv6":
			r.Family = 6
		default:
			t.errorf("family", `must be "ipv4" or "ipv6", not %q`, s)
		}
	}
	d.ruleFamily(t, &r)
	t.done(ruleKeys...)
	return r
}

func (d *decoder) ruleFamily(t *table, r *Rule) {
	var fam int
	for _, p := range []netip.Prefix{r.From, r.To} {
		if !p.IsValid() {
			continue
		}
		f := 4
		if p.Addr().Is6() {
			f = 6
		}
		if fam != 0 && f != fam {
			t.errorf("to", "from and to are of different families")
			return
		}
		fam = f
	}
	if fam == 0 {
		return
	}
	if t.has("family") && fam != r.Family {
		t.errorf("family", "does not match the family of from/to")
	}
	r.Family = fam
}

// validTable reports whether s is a table number a route or rule may
// name, in digits: the hint to drop the quotes must not lead to another
// refusal (a tester's "254").
func validTable(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n >= 1 && n != model.TableMain && n != model.TableLocal && n != model.TableDefault
}
