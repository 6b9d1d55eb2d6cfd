package config

import (
	"net/netip"
	"slices"
)

var (
	forwardKeys    = []string{"tunnel", "direction", "interface", "src", "dst", "proto", "dport", "action"}
	masqueradeKeys = []string{"src", "oif"}
	redirectKeys   = []string{"iif", "dst", "proto", "port", "to_port"}
)

// prefixes reads a list of prefixes. One listed twice is an error at the
// second: the filter's rules are made for each combination of a
// section's lists, and it would repeat them.
func (d *decoder) prefixes(t *table, key string) []netip.Prefix {
	var out []netip.Prefix
	for _, it := range t.list(key) {
		p, err := parsePrefix(it.s)
		if err != nil {
			d.errorf(it.path, "%v", err)
			continue
		}
		if slices.Contains(out, p) {
			d.errorf(it.path, "%s is listed twice", p)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *decoder) ifname(t *table, key string) string {
	s, ok := t.str(key)
	if ok {
		if err := checkIfname(s); err != nil {
			t.errorf(key, "%v", err)
		}
	}
	return s
}

// ports reads a port or a list of ports.
func (d *decoder) ports(t *table, key string) []uint16 {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	items, isList := v.([]any)
	if !isList {
		items = []any{v}
	}
	var out []uint16
	for i, e := range items {
		p := t.at(key)
		if isList {
			p = p.index(i)
		}
		if n, ok := d.integer(p, e, 1, 65535); ok {
			if slices.Contains(out, uint16(n)) {
				d.errorf(p, "port %d is listed twice", n)
				continue
			}
			out = append(out, uint16(n))
		}
	}
	return out
}

func (d *decoder) forward(i int, t *table) Forward {
	f := Forward{Index: i}
	if s, ok := t.str("tunnel"); ok {
		f.Tunnel = s
		if s == "" {
			t.errorf("tunnel", "is empty: name one of the configured tunnels")
		}
	} else if !t.has("tunnel") {
		d.add(t.path, true, "missing option tunnel")
	}
	if s, ok := t.str("direction"); ok {
		switch s {
		case "in":
			f.In = true
		case "out":
		default:
			t.errorf("direction", `must be "in" (from the tunnel) or "out" (into it), not %q`, s)
		}
	} else if !t.has("direction") {
		d.add(t.path, true, `missing option direction ("in" or "out")`)
	}
	f.Interface = d.ifname(t, "interface")
	f.Src = d.prefixes(t, "src")
	f.Dst = d.prefixes(t, "dst")
	for _, it := range t.list("proto") {
		n, err := parseProto(it.s)
		if err != nil {
			d.errorf(it.path, "%v", err)
			continue
		}
		if slices.Contains(f.Protos, n) {
			d.errorf(it.path, "protocol %s is listed twice", it.s)
			continue
		}
		f.Protos = append(f.Protos, n)
	}
	f.DPorts = d.ports(t, "dport")
	if len(f.DPorts) > 0 {
		for _, p := range f.Protos {
			if p != 6 && p != 17 && p != 132 {
				t.errorf("dport", "ports need proto tcp, udp or sctp")
				break
			}
		}
		if len(f.Protos) == 0 {
			t.errorf("dport", "ports need proto tcp, udp or sctp")
		}
	}
	if s, ok := t.str("action"); ok {
		switch s {
		case "accept":
		case "drop":
			f.Drop = true
		default:
			t.errorf("action", `must be "accept" or "drop", not %q`, s)
		}
	}
	d.sameFamily(t, f.Src, f.Dst)
	t.done(forwardKeys...)
	return f
}

// sameFamily checks that a rule's source and destination lists can meet.
func (d *decoder) sameFamily(t *table, src, dst []netip.Prefix) {
	if len(src) == 0 || len(dst) == 0 {
		return
	}
	for _, s := range src {
		for _, x := range dst {
			if s.Addr().Is4() == x.Addr().Is4() {
				return
			}
		}
	}
	t.errorf("dst", "no destination has the family of any source")
}

func (d *decoder) masquerade(i int, t *table) Masquerade {
	m := Masquerade{Index: i}
	m.Src = d.prefixes(t, "src")
	m.OIF = d.ifname(t, "oif")
	if !t.has("oif") {
		d.add(t.path, true, "missing option oif (the interface to masquerade behind)")
	}
	t.done(masqueradeKeys...)
	return m
}

func (d *decoder) redirect(i int, t *table) Redirect {
	r := Redirect{Index: i, Proto: 6}
	r.IIF = d.ifname(t, "iif")
	r.Dst = d.prefixes(t, "dst")
	if s, ok := t.str("proto"); ok {
		switch s {
		case "tcp":
		case "udp":
			r.Proto = 17
		default:
			t.errorf("proto", `must be "tcp" or "udp", not %q`, s)
		}
	}
	if p := d.ports(t, "port"); len(p) == 1 {
		r.Port = p[0]
	} else if len(p) > 1 {
		t.errorf("port", "one port only")
	} else if !t.has("port") {
		d.add(t.path, true, "missing option port")
	}
	r.ToPort = r.Port
	if p := d.ports(t, "to_port"); len(p) == 1 {
		r.ToPort = p[0]
	} else if len(p) > 1 {
		t.errorf("to_port", "one port only")
	}
	t.done(redirectKeys...)
	return r
}
