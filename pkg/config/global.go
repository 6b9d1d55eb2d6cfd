package config

import (
	"slices"
	"sort"
	"time"

	"github.com/tunneld/tunneld/pkg/model"
)

// Defaults of the [global] section.
const (
	DefaultResyncInterval  = 5 * time.Minute
	DefaultResolveInterval = 5 * time.Minute
)

func (d *decoder) config(root *table) *Config {
	c := &Config{File: d.file}
	c.Global = d.global(root.sub("global"))
	c.Tables = d.tables(root.sub("tables"))
	c.tableNames = tableNames(c.Tables)
	c.byName = map[string]*Tunnel{}
	for _, t := range root.sections("tunnel") {
		if tun := d.tunnel(t); tun != nil {
			c.Tunnels = append(c.Tunnels, tun)
			c.byName[tun.Name] = tun
		}
	}
	for i, t := range root.repeated("route") {
		c.Routes = append(c.Routes, d.route(c, i, t))
	}
	for i, t := range root.repeated("rule") {
		c.Rules = append(c.Rules, d.rule(c, i, t))
	}
	for i, t := range root.repeated("forward") {
		c.Forwards = append(c.Forwards, d.forward(i, t))
	}
	for i, t := range root.repeated("masquerade") {
		c.Masquerades = append(c.Masquerades, d.masquerade(i, t))
	}
	for i, t := range root.repeated("redirect") {
		c.Redirects = append(c.Redirects, d.redirect(i, t))
	}
	root.hint = topLevelHint
	root.done(sectionKeys()...)
	d.validate(c)
	return c
}

// sub returns the sub-table key (empty when absent).
func (t *table) sub(key string) *table {
	v, _ := t.get(key)
	return t.d.table(t.at(key), v)
}

var globalKeys = []string{"ip_forward", "ipv6_forward", "proxy_arp", "rule_priority_min", "rule_priority_max",
	"keep_on_exit", "firewall", "resync_interval", "resolve_interval"}

func (d *decoder) global(t *table) Global {
	g := Global{
		RulePriorityMin: model.DefaultRulePriorityMin,
		RulePriorityMax: model.DefaultRulePriorityMax,
		ResyncInterval:  DefaultResyncInterval,
		ResolveInterval: DefaultResolveInterval,
	}
	if t.has("ip_forward") {
		b := t.boolean("ip_forward", false)
		g.IPForward = &b
	}
	if t.has("ipv6_forward") {
		b := t.boolean("ipv6_forward", false)
		g.IPv6Forward = &b
	}
	for _, it := range t.list("proxy_arp") {
		if err := checkIfname(it.s); err != nil {
			d.errorf(it.path, "%v", err)
			continue
		}
		// Twice would be one sysctl written twice, and recorded twice.
		if slices.Contains(g.ProxyARP, it.s) {
			d.errorf(it.path, "interface %s is listed twice", it.s)
			continue
		}
		g.ProxyARP = append(g.ProxyARP, it.s)
	}
	if n, ok := t.integer("rule_priority_min", 1, 32765); ok {
		g.RulePriorityMin = uint32(n)
	}
	if n, ok := t.integer("rule_priority_max", 1, 32765); ok {
		g.RulePriorityMax = uint32(n)
	}
	if g.RulePriorityMin > g.RulePriorityMax {
		d.errorf(t.at("rule_priority_max"), "band is empty: rule_priority_min %d is above rule_priority_max %d", g.RulePriorityMin, g.RulePriorityMax)
	}
	g.KeepOnExit = t.boolean("keep_on_exit", false)
	g.Firewall = t.boolean("firewall", true)
	g.ResyncInterval = t.duration("resync_interval", g.ResyncInterval)
	g.ResolveInterval = t.duration("resolve_interval", g.ResolveInterval)
	t.done(globalKeys...)
	return g
}

// duration reads a Go duration string ("30s", "5m") of at least a second.
func (t *table) duration(key string, def time.Duration) time.Duration {
	s, ok := t.str(key)
	if !ok {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		t.errorf(key, "%q is not a duration (e.g. \"30s\", \"5m\")", s)
		return def
	}
	if v < time.Second {
		t.errorf(key, "%s is shorter than 1s", v)
		return def
	}
	return v
}

var reservedTables = map[string]uint32{"main": model.TableMain, "local": model.TableLocal, "default": model.TableDefault}

func (d *decoder) tables(t *table) map[string]uint32 {
	out := map[string]uint32{}
	for k, v := range reservedTables {
		out[k] = v
	}
	byNum := map[uint32]string{}
	names := make([]string, 0, len(t.m))
	for k := range t.m {
		names = append(names, k)
	}
	sortStrings(names)
	if duplicateNumbers(t.m) {
		// Report the later of two tables with one number, as the file
		// reads (positions are only scanned when there is one).
		at := d.positions()
		sort.SliceStable(names, func(i, j int) bool { return at.keys[t.at(names[i])].before(at.keys[t.at(names[j])]) })
	}
	for _, name := range names {
		p := t.at(name)
		v, _ := t.get(name)
		n, ok := d.integer(p, v, 1, 1<<32-1)
		if !ok {
			d.refuseTable(name)
			continue
		}
		id := uint32(n)
		switch {
		case reservedTables[name] != 0:
			d.add(p, true, "table name %q is reserved (it is table %d)", name, reservedTables[name])
		case id == model.TableMain || id == model.TableLocal || id == model.TableDefault:
			d.errorf(p, "table number %d is reserved for table %q", id, reservedName(id))
			d.refuseTable(name)
		case byNum[id] != "":
			d.errorf(p, "table number %d is already used by table %q", id, byNum[id])
			d.refuseTable(name)
		case !bareKey(name) || name[0] >= '0' && name[0] <= '9':
			d.add(p, true, "table name %q must start with a letter and hold only letters, digits, '-' and '_'", name)
			d.refuseTable(name)
		default:
			byNum[id] = name
			out[name] = id
		}
	}
	return out
}

// refuseTable remembers a name of [tables] whose entry was refused (that
// error is the one to fix), so that a route or rule naming it is not
// also told the table is unknown. A reserved name ("main") stays known.
func (d *decoder) refuseTable(name string) {
	if d.refusedTables == nil {
		d.refusedTables = map[string]bool{}
	}
	d.refusedTables[name] = true
}

// duplicateNumbers reports whether two tables share a number.
func duplicateNumbers(m map[string]any) bool {
	seen := map[int64]bool{}
	for _, v := range m {
		if n, ok := v.(int64); ok {
			if seen[n] {
				return true
			}
			seen[n] = true
		}
	}
	return false
}

func reservedName(id uint32) string {
	for k, v := range reservedTables {
		if v == id {
			return k
		}
	}
	return ""
}
