package cli

import (
	"fmt"
	"io"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/engine"
	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

func runPlan(env *Env, args []string) int {
	fs, path := flags(env, "plan")
	fromEmpty := fs.Bool("from-empty", false, "plan against an empty kernel that has only the devices the configuration names (needs no privileges)")
	if fs.Parse(args) != nil {
		return 2
	}
	c, ok := load(env, *path)
	if !ok {
		return 1
	}
	var k kernel.Kernel
	if *fromEmpty {
		k = EmptyKernel(c)
	} else if k, ok = openKernel(env); !ok {
		return 1
	}
	s, err := engine.Look(env.Context, k, c, resolveAll(env, c))
	if err != nil {
		fmt.Fprintf(env.Stderr, "tunneld: %v\n", err)
		return 1
	}
	PrintPlan(env.Stdout, s)
	return 0
}

// PrintPlan writes a snapshot's notes and waiting tunnels as comments,
// then its plan.
func PrintPlan(w io.Writer, s engine.Snapshot) {
	for _, t := range s.Want.Tunnels {
		if !t.Up {
			fmt.Fprintf(w, "# tunnel %q is down: %s\n", t.Name, t.Reason)
		}
	}
	for _, n := range s.Want.Notes {
		fmt.Fprintf(w, "# %s\n", n)
	}
	if s.Plan.Empty() {
		fmt.Fprintln(w, "# nothing to do: the kernel matches the configuration")
		return
	}
	fmt.Fprint(w, s.Plan)
}

// EmptyKernel is a kernel with nothing of tunneld's in it, holding only
// the devices the configuration names (up, MTU 1500, no addresses).
func EmptyKernel(c *config.Config) *fakekernel.Kernel {
	k := fakekernel.New()
	add := func(name string) {
		if name == "" || c.TunnelByName(name) != nil {
			return
		}
		if _, ok := k.Devices[name]; !ok {
			k.AddDevice(model.Device{Name: name, MTU: 1500, Up: true, Running: true})
		}
	}
	for _, t := range c.Tunnels {
		add(t.Dev)
		add(t.LocalDev)
	}
	for _, r := range c.Routes {
		add(r.Dev)
	}
	for _, d := range c.Global.ProxyARP {
		add(d)
	}
	for _, m := range c.Masquerades {
		add(m.OIF)
	}
	for _, f := range c.Forwards {
		add(f.Interface)
	}
	for _, r := range c.Redirects {
		add(r.IIF)
	}
	return k
}
