package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
)

// The hints below are switches and function-local tables, not
// package-level maps: a switch on a string compiles to no data, and
// they are read only when a file has an error.

// tunnelHint is the message for an unknown option of a [tunnel.NAME]
// section that is netifd's or ip's name for one of tunneld's (the
// mapping in packaging/README.md), or "" for another.
func tunnelHint(key string, v any) string {
	whose, write := "netifd's name", ""
	switch key {
	case "peeraddr":
		write = "remote"
		if s, ok := v.(string); ok {
			write += " = " + strconv.Quote(s)
		}
	case "ipaddr":
		write = "local for the outer address, or address for the tunnel's own (netifd's static interface's ipaddr)"
	case "ip6addr":
		write = "address (an IPv6 address on a sit tunnel)"
	case "netmask":
		write = `the length in address: address = "A/LEN"`
	case "tunlink":
		write = "dev, naming the Linux device, not netifd's interface (eth0.2 or pppoe-wan: ifstatus wan shows it as l3_device)"
	case "df":
		write = "pmtudisc"
		if b, ok := v.(bool); ok {
			write += " = " + strconv.FormatBool(b)
		}
	case "proto", "type":
		if key == "type" {
			whose = "ip's word"
		}
		write = "mode"
		if s, ok := v.(string); ok {
			if m, _ := modeFor(s); m != "" {
				write += " = " + m
			}
		}
	case "nopmtudisc":
		whose, write = "ip's word", "pmtudisc = false"
	case "hoplimit":
		whose, write = "ip's name", "ttl (the outer hop limit of ipip6 and ip6ip6)"
	case "tclass":
		whose, write = "ip's name", "tos (the outer traffic class of ipip6 and ip6ip6)"
	default:
		return ""
	}
	return "unknown option (" + whose + "): write " + write
}

// modeFor is what to write for mode s, quoted, and whose name s is (""
// when it is tunneld's own): netifd's proto, the kernel's link kind, or
// a mode in capitals. Both are "" for a name tunneld cannot map.
func modeFor(s string) (write, whose string) {
	switch s {
	case "6in4":
		return `"sit"`, "netifd's name"
	case "dslite":
		return `"ipip6"`, "netifd's name for IPv4 in IPv6"
	case "ip6tnl":
		return `"ipip6" (IPv4 in IPv6) or "ip6ip6" (IPv6 in IPv6)`, "the kernel's name for both"
	}
	if m, err := model.ParseMode(strings.ToLower(s)); err == nil {
		whose = "modes are lower case"
		if string(m) == s {
			whose = ""
		}
		return strconv.Quote(string(m)), whose
	}
	return "", ""
}

// modeError is the message for a mode tunneld does not know.
func modeError(s string, err error) string {
	if write, whose := modeFor(s); write != "" {
		return fmt.Sprintf("unknown mode %q (%s): write %s", s, whose, write)
	}
	return err.Error()
}

// sectionKeys are the top level's sections, in the reference's order.
func sectionKeys() []string {
	return []string{"global", "tables", "tunnel", "route", "rule", "forward", "masquerade", "redirect"}
}

// topLevelHint is the message for an unknown key of the top level: a
// section, maybe misspelt, or an option of [global] above its header.
func topLevelHint(key string, v any) string {
	known := sectionKeys()
	switch v.(type) {
	case map[string]any, []map[string]any:
		if s := didYouMean(key, known); s != "" {
			return "unknown section (did you mean " + s + "?)"
		}
		return "unknown section (known: " + strings.Join(known, ", ") + ")"
	}
	if slices.Contains(globalKeys, key) {
		return "an option of [global]: write it below a [global] header (above the first header, it is in no section)"
	}
	return ""
}

// didYouMean is the one name of known that s is a slip of: the same but
// for case, or one edit away (a letter added, dropped, changed, or two
// swapped: tunnels, tunel, tll); "" when none or several are.
func didYouMean(s string, known []string) string {
	found := ""
	for _, k := range known {
		if k == s || !strings.EqualFold(k, s) && !oneEdit(s, k) && !swapped(s, k) {
			continue
		}
		if found != "" {
			return ""
		}
		found = k
	}
	return found
}

// swapped reports whether a and b differ by two adjacent letters
// swapped (tll for ttl), which oneEdit counts as two edits.
func swapped(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
}

// dottedTunnel reports the name [tunnel.wan.6in4] meant, "wan.6in4", as
// one error, when t (tunnel.wan) has no mode and holds sub-tables: TOML
// reads the dot as a table 6in4 inside a tunnel wan, and the decoder
// said both that wan misses its mode and that 6in4 is an unknown option.
func (d *decoder) dottedTunnel(t *table) bool {
	if t.has("mode") {
		return false
	}
	var names []string
	for k, v := range t.m {
		name := t.name()
		// [tunnel.a.b.c] is a.b.c: descend while a table holds one
		// table alone.
		for {
			sub, ok := v.(map[string]any)
			if !ok {
				break
			}
			name += "." + k
			if _, ok := sub["mode"]; ok || len(sub) != 1 {
				break
			}
			for k2, v2 := range sub {
				k, v = k2, v2
			}
		}
		if name != t.name() {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return false
	}
	slices.Sort(names)
	for _, name := range names {
		d.add(t.path, true, "a tunnel name with a dot needs quotes: [tunnel.%s]", strconv.Quote(name))
		d.undecodedTunnel(name)
	}
	for k := range t.m {
		t.used[k] = true
	}
	d.undecodedTunnel(t.name())
	return true
}
