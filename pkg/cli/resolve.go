package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/resolve"
)

// resolveAll looks up the DNS names the configuration's tunnels use once,
// all at once, each for at most resolve.LookupTimeout. A failed lookup is
// reported and leaves the name unresolved.
func resolveAll(env *Env, c *config.Config) map[string][]netip.Addr {
	names := engine.Names(c)
	lookup := env.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, name string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		}
	}
	answers := make([][]netip.Addr, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(env.Context, resolve.LookupTimeout)
			defer cancel()
			answers[i], errs[i] = lookup(ctx, name)
		}()
	}
	wg.Wait()
	out := map[string][]netip.Addr{}
	for i, name := range names {
		if errs[i] != nil {
			fmt.Fprintf(env.Stderr, "tunneld: resolve %s: %v\n", name, errs[i])
			continue
		}
		for _, ip := range answers[i] {
			out[name] = append(out[name], ip.Unmap())
		}
		// In order, as the daemon keeps them, for plan's and status's
		// output (which address of several a tunnel takes is desired's
		// choice, whatever the order).
		model.SortAddrs(out[name])
	}
	return out
}
