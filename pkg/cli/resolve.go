package cli

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
)

// resolveAll looks up the DNS names the configuration's tunnels use once.
// A failed lookup is reported and leaves the name unresolved.
func resolveAll(env *Env, c *config.Config) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, name := range engine.Names(c) {
		ips, err := net.DefaultResolver.LookupNetIP(env.Context, "ip", name)
		if err != nil {
			fmt.Fprintf(env.Stderr, "tunneld: resolve %s: %v\n", name, err)
			continue
		}
		for _, ip := range ips {
			out[name] = append(out[name], ip.Unmap())
		}
	}
	return out
}
