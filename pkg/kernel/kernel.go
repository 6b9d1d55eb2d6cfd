// Package kernel defines the seam between tunneld's pure core and the
// machine: one interface that reads back the state tunneld owns plus the
// inputs it needs, and applies plans. The Linux implementation speaks
// netlink and nftables; package fakekernel holds an in-memory one.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// Kernel is what tunneld needs from the machine.
type Kernel interface {
	// Observe returns the state tunneld owns within scope, and the inputs
	// (devices, main-table underlay routes, others' rules in the scope's
	// band; Resolved is left empty).
	Observe(ctx context.Context, scope model.Scope) (model.State, model.Inputs, error)
	// Apply performs the plan's operations in order. It keeps going past
	// a failed operation and returns every failure, as an *ApplyError.
	Apply(ctx context.Context, p plan.Plan) error
}

// AddrReader is a Kernel that can read the devices' addresses alone,
// without the rest of an observation: what the daemon re-reads after an
// address hint on a device a tunnel takes its local endpoint from.
type AddrReader interface {
	// DeviceAddrs returns the global-scope addresses by device index,
	// primary first, as Observe gives them in Inputs.Devices (Addrs,
	// Secondary and Deprecated; not the Unusable or LinkLocal ones).
	DeviceAddrs(ctx context.Context) (map[int]model.AddrList, error)
}

// Keeper is a Kernel that can be told which tunnels without tunneld's
// alias a running daemon keeps as its own (someone changed the alias,
// and the daemon has not given it back yet: it holds back its repairs of
// a tunnel relabeled again and again). The daemon knows them by the
// memory of its last observation; status, a process of its own, has no
// such memory and would call them someone else's.
type Keeper interface {
	// Keep makes the next observations take the devices named, at
	// these indexes, for tunneld's tunnels whatever their alias.
	Keep(indexes map[string]int)
}

// RouteAsker is a Kernel that can ask its routing for the way to an
// address, as `ip route get DST from SRC` does: by the policy rules, of
// every table, with multipath and source-specific routes (which Observe
// does not read as the underlay). Status asks it for each tunnel's
// remote from its local address.
type RouteAsker interface {
	// Unroutable reports whether the kernel has no route to dst for
	// packets from src: none at all (the WAN's default route gone), or
	// one that refuses them (unreachable, prohibit, blackhole). An
	// error is a question the kernel would not answer: nothing is
	// known. From an address the box does not have, the kernel answers
	// unreachable whatever its routes: ask from one it has.
	Unroutable(ctx context.Context, dst, src netip.Addr) (bool, error)
}

// OpError is the failure of one operation.
type OpError struct {
	Op  plan.Op
	Err error
}

// Error names the object first: `route 10.0.2.0/24 table 42: …`.
func (e *OpError) Error() string { return e.Op.Object() + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// ApplyError holds every operation of a plan that failed.
type ApplyError struct {
	Failed []*OpError
	// Skipped are the operations not tried because one they depend on
	// failed (those on a tunnel whose creation failed; the setting up,
	// addresses and routes of one whose move to other endpoints failed):
	// not done, but not listed by Error either, the failure they follow
	// being the error.
	Skipped []plan.Op
}

// Error lists the failures one per line.
func (e *ApplyError) Error() string {
	s := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		s[i] = f.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap exposes the failures to errors.Is and errors.As.
func (e *ApplyError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// RecordError is an operation's failure to update a state record (in
// the state directory) after its change in the kernel was made: the
// kernel is as the operation meant it, and only the record lags behind
// (a full tmpfs). A teardown that meets only such failures is done.
type RecordError struct{ Err error }

func (e *RecordError) Error() string { return e.Err.Error() }

// Unwrap returns the record's failure.
func (e *RecordError) Unwrap() error { return e.Err }

// OnlyRecords reports whether err, an Apply's, holds failures and all of
// them are RecordErrors: the kernel is as the plan meant it.
func OnlyRecords(err error) bool {
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Failed) == 0 {
		return false
	}
	for _, f := range ae.Failed {
		var re *RecordError
		if !errors.As(f.Err, &re) {
			return false
		}
	}
	return true
}

// Collect adds the failure of op to *ae, allocating it on first use.
func Collect(ae **ApplyError, op plan.Op, err error) {
	if err == nil {
		return
	}
	if *ae == nil {
		*ae = &ApplyError{}
	}
	(*ae).Failed = append((*ae).Failed, &OpError{Op: op, Err: err})
}

// ErrNoDriver is returned when the kernel lacks a tunnel kind.
var ErrNoDriver = errors.New("kernel has no driver")

// NoDriverError explains a missing tunnel driver in words an admin can
// act on.
type NoDriverError struct{ Mode model.Mode }

// Error says which module or package to install.
func (e *NoDriverError) Error() string {
	mod, pkg := e.Mode.Module()
	return fmt.Sprintf("kernel has no %s support (load module %s; on OpenWrt install %s)", e.Mode.Kind(), mod, pkg)
}

// Is makes errors.Is(err, ErrNoDriver) true.
func (e *NoDriverError) Is(target error) bool { return target == ErrNoDriver }

// ErrUnguarded fails the setting up of a tunnel (plan.LinkUp) in a plan
// whose nftables table could not be written (its FilterReplace failed,
// the plan's first operation): both kernel seams refuse to bring a
// tunnel up without the table that guards it. A tester's kernel without
// nft_masq came up with its tunnels forwarding what their forward =
// "drop" refused. The engine then plans the tunnel as refused: down,
// its routes standing as unreachable routes, until the table can be
// written.
var ErrUnguarded = errors.New("not set up: tunneld's nftables table, which guards it, could not be written (see that error)")

// ErrDumpInterrupted is Observe's error when the kernel kept reporting a
// table's dump interrupted by a concurrent change (another process adding
// and deleting addresses or routes in a flood), after the seam started it
// again a few times: nothing is wrong, the next read will likely do.
var ErrDumpInterrupted = errors.New("dump interrupted by a concurrent change")

// ErrForeign is returned when an object that is not tunneld's stands
// where tunneld must put its own.
var ErrForeign = errors.New("an object not managed by tunneld is in the way")

// ErrNoNFTables is returned when the configuration needs tunneld's
// nftables table (firewall = true) and the kernel has no nf_tables.
var ErrNoNFTables = errors.New("kernel has no nf_tables")

// NoNFTablesError explains a missing nf_tables in words an admin can act
// on.
type NoNFTablesError struct {
	// Err is why nf_tables could not be opened (nil: not tried).
	Err error
}

// Error says what needs nf_tables, and what to install or change.
func (e *NoNFTablesError) Error() string {
	s := ErrNoNFTables.Error() + ", which firewall = true (the default) needs: " +
		"load module nf_tables (on OpenWrt install kmod-nft-core) or set firewall = false in [global]"
	if e.Err != nil {
		return e.Err.Error() + ": " + s
	}
	return s
}

// Is makes errors.Is(err, ErrNoNFTables) true.
func (e *NoNFTablesError) Is(target error) bool { return target == ErrNoNFTables }

// Unwrap returns why nf_tables could not be opened.
func (e *NoNFTablesError) Unwrap() error { return e.Err }
