package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// explainExists rewords, in err (what applying s's plan returned), each
// creation or change of a tunnel that the kernel refused with EEXIST: it
// keeps one tunnel of a kind per local, remote and GRE input key (and,
// but for ip6tnl, underlay device), so another tunnel has the endpoints.
// The Linux seam cannot tell that from the name being taken; here the
// observation is at hand. The other tunnel is named when tunneld sees
// it: one of its own, observed or made earlier in the same plan (two
// tunnels that follow one device's address). Else the message says
// where one it cannot see may be: a device of the kind tunneld does not
// own, named alone when the observation carries its endpoints
// (model.Device.Tunnel; a tester's message listed 32 candidates for the
// one that had them), each of the kind otherwise; or one
// moved into another network namespace (`ip link set NAME netns
// …`), which the kernel keeps registered with its endpoints in the
// namespace it was made in; and how to find and delete it there. The
// errno stays wrapped (errors.Is(err, syscall.EEXIST)).
func explainExists(err error, s Snapshot) error {
	var ae *kernel.ApplyError
	if !errors.As(err, &ae) {
		return err
	}
	var tunnels map[string]model.Link // tunneld's, as each operation found them
	for _, f := range ae.Failed {
		var errno syscall.Errno
		if f.Op.Link == nil || f.Op.Kind != plan.LinkAdd && f.Op.Kind != plan.LinkChange ||
			!errors.As(f.Err, &errno) || errno != syscall.EEXIST {
			continue
		}
		if tunnels == nil {
			tunnels = make(map[string]model.Link, len(s.Have.Links))
		}
		clear(tunnels)
		for _, l := range s.Have.Links {
			tunnels[l.Name] = l
		}
		for _, op := range s.Plan.Ops {
			if opEqual(op, f.Op) {
				break
			}
			if op.Link == nil || failed(ae, op) {
				continue
			}
			switch op.Kind {
			case plan.LinkAdd, plan.LinkChange:
				tunnels[op.Link.Name] = *op.Link
			case plan.LinkDel:
				delete(tunnels, op.Link.Name)
			}
		}
		f.Err = fmt.Errorf("%s: %w", sameEndpoints(*f.Op.Link, f.Op.Kind, tunnels, s.Inputs.Devices), errno)
	}
	return err
}

// failed reports whether op failed or was skipped.
func failed(ae *kernel.ApplyError, op plan.Op) bool {
	return slices.ContainsFunc(ae.Failed, func(f *kernel.OpError) bool { return opEqual(f.Op, op) }) ||
		slices.ContainsFunc(ae.Skipped, func(o plan.Op) bool { return opEqual(o, op) })
}

// sameEndpoints words why the kernel refused l (created by an operation
// of kind, or changed), given tunneld's tunnels then and the devices
// observed.
func sameEndpoints(l model.Link, kind plan.Kind, tunnels map[string]model.Link, devices map[string]model.Device) string {
	var names []string
	for name, o := range tunnels {
		if name != l.Name && l.SameTunnel(o) {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		s := fmt.Sprintf("tunnel %q has the same endpoints (%s %s), and the kernel keeps one tunnel per endpoint pair", names[0], l.Mode.Kind(), endpoints(l))
		if l.Mode == model.ModeGRE {
			s += " (give GRE tunnels different keys)"
		}
		return s
	}
	k := l.Mode.Kind()
	// The foreign devices of the kind: the one with the endpoints when
	// the observation has theirs (the Linux seam's has), else each.
	var same, foreign []string
	for name, d := range devices {
		if _, ours := tunnels[name]; ours || d.Kind != k || name == l.Name || model.FallbackDevices[name] == k {
			continue
		}
		switch {
		case d.Tunnel == nil:
			foreign = append(foreign, name)
		case l.SameTunnel(*d.Tunnel):
			same = append(same, name)
		}
	}
	if len(same) > 0 {
		slices.Sort(same)
		s := fmt.Sprintf("the %s tunnel %s, which tunneld does not own, has the same endpoints (%s), and the kernel keeps one tunnel per endpoint pair: delete it (ip link del %s, or remove the OpenWrt interface that made it) or give this tunnel other endpoints", k, same[0], endpoints(l), model.LinkArg(same[0]))
		if l.Mode == model.ModeGRE {
			s += " (or another key)"
		}
		return s
	}
	slices.Sort(foreign)
	var b strings.Builder
	fmt.Fprintf(&b, "the kernel holds another %s tunnel with the same endpoints (%s), one tunneld does not see: ", k, endpoints(l))
	if len(foreign) > 0 {
		what := "a " + k + " device"
		if len(foreign) > 1 {
			what = k + " devices"
		}
		fmt.Fprintf(&b, "perhaps %s, %s tunneld does not own, or ", strings.Join(foreign, ", "), what)
	}
	fmt.Fprintf(&b, `one moved into another network namespace (ip link set NAME netns …) stays registered here: find it with "ip -all netns exec ip -d link show type %s" (or nsenter into a container's) and delete it there (ip -n NS link del NAME)`, k)
	if kind == plan.LinkAdd {
		fmt.Fprintf(&b, ", unless a device named %s appeared since tunneld looked", l.Name)
	}
	return b.String()
}

// endpoints words l's endpoints as ip does: "local 192.0.2.1 remote
// 198.51.100.2 ikey 5 dev wan".
func endpoints(l model.Link) string {
	local, remote := "any", "any"
	if l.Local.IsValid() {
		local = l.Local.String()
	}
	if l.Remote.IsValid() {
		remote = l.Remote.String()
	}
	s := "local " + local + " remote " + remote
	if l.HasIKey && !l.Mode.OuterIPv6() {
		s += fmt.Sprintf(" ikey %d", l.IKey)
	}
	if l.Dev != "" && !l.Mode.OuterIPv6() {
		s += " dev " + l.Dev
	}
	return s
}
