package config

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/tunneld/tunneld/pkg/model"
)

var tunnelKeys = []string{"mode", "local", "remote", "dev", "address", "mtu", "ttl", "tos", "pmtudisc",
	"key", "ikey", "okey", "encaplimit", "host_route", "allowed_sources", "forward", "mss_clamp", "hook"}

func (d *decoder) tunnel(t *table) *Tunnel {
	t.hint = tunnelHint
	if d.dottedTunnel(t) {
		return nil
	}
	tun := &Tunnel{Name: t.name(), PMTUDisc: true, MSSClamp: true, EncapLimit: 4}
	if err := checkIfname(tun.Name); err != nil {
		d.add(t.path, true, "%v", err)
	} else if module, ok := fallbackModules[tun.Name]; ok {
		d.add(t.path, true, "%s is the fallback device the kernel's %s module creates (tunneld keeps it down): give the tunnel another name", tun.Name, module)
	}
	if s, ok := t.str("mode"); ok {
		m, err := model.ParseMode(s)
		if err != nil {
			t.errorf("mode", "%s", modeError(s, err))
			d.undecoded(t, tun.Name)
			return nil
		}
		tun.Mode = m
	} else {
		// netifd's proto and ip's type get their own hint: write mode.
		if !t.has("mode") && !t.has("proto") && !t.has("type") {
			d.add(t.path, true, "missing option mode (ipip, gre, sit, ipip6 or ip6ip6)")
		}
		d.undecoded(t, tun.Name)
		return nil
	}
	d.endpoints(t, tun)
	if s, ok := t.str("dev"); ok {
		if err := checkIfname(s); err != nil {
			t.errorf("dev", "%v", err)
		} else if s == tun.Name {
			t.errorf("dev", "the tunnel cannot be bound to itself (dev names the device its packets leave by)")
		}
		tun.Dev = s
	}
	if !t.has("dev") {
		// Every link has fe80::/64: without dev the kernel's ip6tnl
		// has no link to send from or to such an address, and a tester
		// saw check and apply pass, status say up, and nothing pass.
		for _, e := range []struct {
			option string
			a      netip.Addr
		}{{"local", tun.Local}, {"remote", tun.Remote}} {
			if e.a.Is6() && e.a.IsLinkLocalUnicast() {
				t.errorf(e.option, "a link-local address needs dev (the link it is on)")
			}
		}
	}
	seen := map[netip.Addr]bool{}
	for _, it := range t.list("address") {
		local, peer, err := parseIfAddr(it.s)
		if err != nil {
			d.errorf(it.path, "%v", err)
			continue
		}
		// The same address on two tunnels is allowed: seed 001's proxy
		// uses its address on both of its tunnels, as the kernel permits.
		if seen[local.Addr()] {
			d.errorf(it.path, "address %s is listed twice", local.Addr())
			continue
		}
		seen[local.Addr()] = true
		if local.Addr().Is4() && !tun.Mode.CarriesIPv4() || local.Addr().Is6() && !tun.Mode.CarriesIPv6() {
			d.errorf(it.path, "mode %s does not carry %s", tun.Mode, familyName(local.Addr()))
			continue
		}
		tun.Addresses = append(tun.Addresses, model.Addr{Link: tun.Name, Prefix: local, Peer: peer})
	}
	d.tunnelParams(t, tun)
	d.hook(t, tun)
	t.done(tunnelKeys...)
	return tun
}

// hook reads the path of the program the daemon runs when the tunnel
// comes up or moves. It is one absolute path, without arguments: the
// program learns what changed from its environment, and nothing in the
// string is split or given to a shell. Whether the file exists is not
// checked here: the configuration may be read on another host (tunneld
// check warns when it is missing).
func (d *decoder) hook(t *table, tun *Tunnel) {
	s, ok := t.str("hook")
	if !ok {
		return
	}
	switch {
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		t.errorf("hook", "%q holds whitespace or a control character: hook is the path of one program, without arguments (it reads what changed from its environment)", s)
	case !path.IsAbs(s):
		t.errorf("hook", "%q is not an absolute path: give the program's full path (/etc/tunneld/NAME.sh)", s)
	case strings.HasSuffix(s, "/"):
		t.errorf("hook", "%q names a directory: give the path of a program", s)
	default:
		tun.Hook = s
	}
}

// undecoded finishes a tunnel whose mode is missing or wrong: the other
// options cannot be checked against a mode, but a misspelt one is still
// reported, and the name is remembered so that routes and forward rules
// naming the tunnel do not add "unknown tunnel" to the one real error.
func (d *decoder) undecoded(t *table, name string) {
	for _, k := range tunnelKeys {
		t.get(k)
	}
	t.done(tunnelKeys...)
	d.undecodedTunnel(name)
}

// undecodedTunnel remembers name as a tunnel that exists but is not in
// the Config.
func (d *decoder) undecodedTunnel(name string) {
	if d.undecodedTunnels == nil {
		d.undecodedTunnels = map[string]bool{}
	}
	d.undecodedTunnels[name] = true
}

// endpoints reads local and remote.
func (d *decoder) endpoints(t *table, tun *Tunnel) {
	outer := "IPv4"
	if tun.Mode.OuterIPv6() {
		outer = "IPv6"
	}
	local, hasLocal := t.str("local")
	remote, hasRemote := t.str("remote")
	if !t.has("local") {
		d.add(t.path, true, `missing option local (an address, a device whose address to follow, or "any")`)
	}
	if !t.has("remote") {
		d.add(t.path, true, `missing option remote (an address, a host name, or "any")`)
	}
	if hasLocal && local != "any" {
		if a, err := parseAddr(local); err == nil {
			switch {
			case a.Is6() != tun.Mode.OuterIPv6():
				t.errorf("local", "mode %s needs an %s local address, not %s", tun.Mode, outer, a)
			case a.IsUnspecified():
				t.errorf("local", `%s is the unspecified address: write "any"`, a)
			}
			tun.Local = a
		} else if looksLikeAddr(local) {
			t.errorf("local", "%v", err)
		} else if err := checkIfname(local); err != nil {
			t.errorf("local", "neither an address nor a device: %v", err)
		} else if local == tun.Name {
			t.errorf("local", "the tunnel cannot take its local address from itself")
		} else {
			tun.LocalDev = local
		}
	}
	if hasRemote && remote != "any" {
		if a, err := parseAddr(remote); err == nil {
			switch {
			case a.Is6() != tun.Mode.OuterIPv6():
				t.errorf("remote", "mode %s needs an %s remote address, not %s", tun.Mode, outer, a)
			case a.IsUnspecified():
				// The kernel keeps it as any, which `ip tunnel`
				// writes 0.0.0.0: taken as an address, the tunnel
				// never matched the kernel's, and the filter
				// accepted its packets from 0.0.0.0 alone (a
				// tester's).
				t.errorf("remote", `%s is the unspecified address: write "any"`, a)
			case a.IsLoopback():
				t.errorf("remote", "%s is a loopback address: a tunnel to it never leaves this box", a)
			case tun.Local.IsValid() && a == tun.Local:
				t.errorf("remote", "%s is the tunnel's local address too: the remote is the other end", a)
			}
			tun.Remote = a
		} else if looksLikeAddr(remote) {
			t.errorf("remote", "%v", err)
		} else if err := checkHostname(remote); err != nil {
			t.errorf("remote", "%v", err)
		} else {
			tun.RemoteHost = remote
		}
	}
	if hasLocal && hasRemote && local == "any" && remote == "any" {
		d.errorf(t.at("remote"), "local and remote are both any: the kernel's fallback device %s already is that tunnel", fallbackName(tun.Mode))
	}
}

// fallbackModules are the names of the kernel's fallback tunnel devices,
// with the module that creates each: they cannot be configured as
// tunnels (the kernel refuses to change them) and tunneld sets them down.
var fallbackModules = map[string]string{
	"tunl0": "ipip", "gre0": "ip_gre", "gretap0": "ip_gre", "erspan0": "ip_gre",
	"sit0": "sit", "ip6tnl0": "ip6_tunnel", "ip6gre0": "ip6_gre",
}

func fallbackName(m model.Mode) string {
	switch m {
	case model.ModeGRE:
		return "gre0"
	case model.ModeSIT:
		return "sit0"
	case model.ModeIPIP:
		return "tunl0"
	}
	return "ip6tnl0"
}

// looksLikeAddr tells a mistyped address from a device name.
func looksLikeAddr(s string) bool {
	if strings.Contains(s, ":") || strings.Contains(s, "/") {
		return true
	}
	return strings.Trim(s, "0123456789.") == "" && strings.Count(s, ".") >= 1
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// hexTOSHint is what to write for a tos given as netifd and ip take it,
// a string of hexadecimal digits ("10" is 0x10), or "".
func hexTOSHint(s string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
	if err != nil || n&1 == 1 {
		return ""
	}
	return fmt.Sprintf(" (netifd and ip read it as hexadecimal: write tos = %#x, a number)", n)
}

// tunnelParams reads mtu, ttl, tos, pmtudisc, keys and the rest.
func (d *decoder) tunnelParams(t *table, tun *Tunnel) {
	if n, ok := t.integer("mtu", 68, 65535); ok {
		tun.MTU = int(n)
	}
	tun.PMTUDisc = t.boolean("pmtudisc", true)
	if t.has("pmtudisc") && tun.Mode.OuterIPv6() {
		t.errorf("pmtudisc", "only ipip, gre and sit tunnels have path-MTU discovery to set (the kernel's ip6tnl has no such parameter)")
		tun.PMTUDisc = true
	}
	ttlSet := false
	if v, ok := t.get("ttl"); ok {
		if s, isStr := v.(string); isStr {
			if s != "inherit" {
				t.errorf("ttl", "must be 1–255 or \"inherit\", not %q", s)
			}
		} else if n, ok := d.integer(t.at("ttl"), v, 1, 255); ok {
			tun.TTL = uint8(n)
			ttlSet = true
		}
	} else if tun.PMTUDisc {
		tun.TTL = 64
	}
	if ttlSet && !tun.PMTUDisc {
		t.errorf("ttl", "a fixed ttl needs pmtudisc (the kernel refuses ttl %d with nopmtudisc): set ttl = \"inherit\" or pmtudisc = true", tun.TTL)
	}
	if v, ok := t.get("tos"); ok {
		if s, isStr := v.(string); isStr {
			if s == "inherit" {
				tun.TOS = 1
			} else {
				t.errorf("tos", "must be an even number 0–254 or \"inherit\", not %q%s", s, hexTOSHint(s))
			}
		} else if n, ok := d.integer(t.at("tos"), v, 0, 254); ok {
			if n&1 == 1 {
				t.errorf("tos", "%d has bit 0 set, which the kernel reads as inherit: write \"inherit\" or an even value", n)
			}
			tun.TOS = uint8(n)
		}
	}
	d.keys(t, tun)
	if max := maxMTU(tun); tun.MTU > max {
		t.errorf("mtu", "%d is more than %d, the largest the kernel gives %s: 65535 less its %d-byte outer header", tun.MTU, max, modeWithKey(tun), 65535-max)
	}
	if v, ok := t.get("encaplimit"); ok {
		if !tun.Mode.OuterIPv6() {
			t.errorf("encaplimit", "only ipip6 and ip6ip6 tunnels have an encapsulation limit")
		} else if s, isStr := v.(string); isStr {
			if s == "none" {
				tun.EncapLimit = -1
			} else {
				t.errorf("encaplimit", "must be 0–255 or \"none\", not %q", s)
			}
		} else if n, ok := d.integer(t.at("encaplimit"), v, 0, 255); ok {
			tun.EncapLimit = int(n)
		}
	}
	if v, ok := t.get("host_route"); ok {
		switch v {
		case "auto":
		case true:
			tun.HostRoute = HostRouteOn
		case false:
			tun.HostRoute = HostRouteOff
		default:
			t.errorf("host_route", "must be true, false or \"auto\", not %s", typeName(v))
		}
	}
	if t.has("allowed_sources") {
		tun.AllowedSources = append([]netip.Prefix{}, d.prefixes(t, "allowed_sources")...)
		d.filterOption(tun, "allowed_sources")
	}
	if s, ok := t.str("forward"); ok {
		switch s {
		case "accept":
		case "drop":
			tun.ForwardDrop = true
			d.filterOption(tun, `forward = "drop"`)
		default:
			t.errorf("forward", "must be \"accept\" or \"drop\", not %q", s)
		}
	}
	tun.MSSClamp = t.boolean("mss_clamp", true)
	if tun.MSSClamp && t.has("mss_clamp") {
		d.filterOption(tun, "mss_clamp = true")
	}
}

// filterOption remembers a tunnel option given that only the nftables
// table does (see ignoredFilter).
func (d *decoder) filterOption(tun *Tunnel, option string) {
	d.filterOptions = append(d.filterOptions, strconv.Quote(tun.Name)+" "+option)
}

// maxMTU is the largest MTU the kernel gives tun. An ipip or gre device
// (ip_tunnel) takes at most IP_MAX_MTU (65535) less its outer header,
// and a gre one's header has its output key: it clamps a larger one at
// creation without a word, then refuses it in a change (EINVAL), so a
// converge would retry for ever (a tester's mtu = 65535 on ipip, 65515
// in the kernel). An ipip6 one (ip6tnl carrying IPv4) takes IP_MAX_MTU
// less its 40-byte outer header as well, with or without the
// encapsulation limit (a tester's, in the amd64 VM: 65495, where 65535
// was clamped to 1452 at creation, then refused). sit and ip6ip6 devices
// take 65535 (their limit, from IPv6's, is higher still: 65555 for sit in
// the amd64 VM).
func maxMTU(tun *Tunnel) int {
	switch tun.Mode {
	case model.ModeIPIP, model.ModeGRE, model.ModeIPIP6:
		return 65535 - tun.Mode.Overhead(tun.HasOKey)
	}
	return 65535
}

// modeWithKey names tun, ipip, ipip6 or gre, for maxMTU's error: "an
// ipip tunnel", "a gre tunnel", "a gre tunnel with an output key".
func modeWithKey(tun *Tunnel) string {
	switch {
	case tun.Mode == model.ModeGRE && tun.HasOKey:
		return "a gre tunnel with an output key"
	case tun.Mode == model.ModeGRE:
		return "a gre tunnel"
	}
	return "an " + string(tun.Mode) + " tunnel"
}

func (d *decoder) keys(t *table, tun *Tunnel) {
	for _, k := range []string{"key", "ikey", "okey"} {
		if !t.has(k) {
			continue
		}
		var n int64
		ok := false
		s, _ := t.m[k].(string)
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			// ip's dotted form of a key: "1.2.3.4" is 0x01020304.
			b := a.As4()
			t.get(k)
			t.errorf(k, "must be an integer, not the string %q (ip's dotted form: write %s = %d)", a, k, uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))
		} else {
			n, ok = t.integer(k, 0, 1<<32-1)
		}
		if tun.Mode != model.ModeGRE {
			t.errorf(k, "only gre tunnels have keys (mode is %s)", tun.Mode)
			continue
		}
		if !ok {
			continue
		}
		switch k {
		case "key":
			if t.has("ikey") || t.has("okey") {
				t.errorf(k, "set either key or ikey/okey, not both")
				continue
			}
			tun.IKey, tun.OKey, tun.HasIKey, tun.HasOKey = uint32(n), uint32(n), true, true
		case "ikey":
			tun.IKey, tun.HasIKey = uint32(n), true
		case "okey":
			tun.OKey, tun.HasOKey = uint32(n), true
		}
	}
}
