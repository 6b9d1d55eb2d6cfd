package cli

import (
	"net/netip"
	"strings"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
)

// emptyObservation is what `plan --from-empty` plans against: a kernel
// with nothing of tunneld's in it, holding lo and the devices the
// configuration names (up, MTU 1500, no addresses), with forwarding and
// proxy ARP off and IPv6 router advertisements accepted (accept_ra 1).
// It is pure, so the production binary needs no in-memory kernel for it.
func emptyObservation(c *config.Config) (model.State, model.Inputs) {
	in := model.Inputs{Devices: map[string]model.Device{
		"lo": {Name: "lo", Index: 1, MTU: 65536, Up: true, Running: true,
			Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
	}}
	for _, name := range namedDevices(c) {
		if _, ok := in.Devices[name]; !ok && name != "" && c.TunnelByName(name) == nil {
			in.Devices[name] = model.Device{Name: name, Index: len(in.Devices) + 1, MTU: 1500, Up: true, Running: true}
		}
	}
	// Like a kernel, every device has its proxy_arp sysctl.
	present := map[string]bool{"net/ipv4/ip_forward": true, "net/ipv6/conf/all/forwarding": true}
	for name := range in.Devices {
		present["net/ipv4/conf/"+name+"/proxy_arp"] = true
	}
	var have model.State
	for _, p := range engine.Scope(c).Sysctls {
		if present[p] {
			delete(present, p) // once, however often the configuration names it
			have.Sysctls = append(have.Sysctls, model.Sysctl{Path: p, Value: "0"})
		}
	}
	have.Sort()
	if reads := engine.Scope(c).ReadSysctls; len(reads) > 0 {
		in.Sysctls = map[string]string{}
		for _, p := range reads {
			if _, ok := in.Devices[model.SysctlDevice(p)]; ok && strings.HasSuffix(p, "/accept_ra") {
				in.Sysctls[p] = "1"
			}
		}
	}
	return have, in
}

// namedDevices are the devices a configuration refers to, in the order
// it names them (empty names included).
func namedDevices(c *config.Config) []string {
	var out []string
	for _, t := range c.Tunnels {
		out = append(out, t.Dev, t.LocalDev)
	}
	for _, r := range c.Routes {
		out = append(out, r.Dev)
	}
	out = append(out, c.Global.ProxyARP...)
	for _, m := range c.Masquerades {
		out = append(out, m.OIF)
	}
	for _, f := range c.Forwards {
		out = append(out, f.Interface)
	}
	for _, r := range c.Redirects {
		out = append(out, r.IIF)
	}
	return out
}
