// Package linux is the kernel seam's Linux implementation: links,
// addresses, routes and rules over one rtnetlink socket, sysctls as files
// under /proc/sys, and tunneld's nftables table over nfnetlink. It never
// starts a process.
package linux

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/iptun"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/nft"
)

// Options configure a Kernel.
type Options struct {
	// StateDir holds the recorded original sysctl values
	// (default model.StateDir, /run/tunneld).
	StateDir string
	// ProcSys is the sysctl tree (default /proc/sys). Sysctls under
	// /proc/sys/net belong to the network namespace of the thread that
	// opens them.
	ProcSys string
	// NoFilter disables the nftables part (the table is neither read nor
	// written).
	NoFilter bool
	// FilterOptional lets Open go on without the nftables part when the
	// kernel has no nf_tables, for a configuration with firewall = false.
	// Where nf_tables exists it is opened all the same, so that a table
	// left by an earlier configuration is still seen and removed.
	// Without it, a kernel without nf_tables is a *kernel.NoNFTablesError.
	FilterOptional bool
}

// openNFT opens nf_tables in the calling thread's namespace (a variable
// for tests: no kernel without nf_tables is at hand).
var openNFT = func() (*nft.Conn, error) { return nft.Open(0) }

// Kernel talks to the running Linux kernel in the calling thread's
// network namespace.
type Kernel struct {
	nl   *netlink.Conn // owns the request socket (options, port, deadlines)
	w    transport     // its messages
	seq  uint32        // the last request's sequence number
	nft  *nft.Conn
	opts Options
	// ask is the socket Unroutable asks the kernel's routing over,
	// dialled at its first question.
	ask *netlink.Conn
	// scratch holds the arrays of the last observation's dumps, reused
	// by the next (a Kernel serves one caller at a time). Apply takes the
	// device indexes from its links.
	scratch struct {
		links  []observedLink
		addrs  []observedAddr
		routes [2][]observedRoute // tunneld's, the main table's
		rules  []ruleMsg
	}
	// linkDumps counts the link dumps taken (tests).
	linkDumps int
	// bands is the record of rule priority bands (bandsFile) as read or
	// written last, once bandsKnown: only this process writes it while
	// it holds the state directory's lock, so the daemon's observations
	// need not read the file again each time.
	bands      []model.RuleBand
	bandsKnown bool
	// creating is the record of tunnels being created (creatingFile),
	// kept as bands is, once creatingKnown.
	creating      map[string]creatingEntry
	creatingKnown bool
	// sysctls is the record of sysctls changed (sysctlFile), kept as
	// bands is, once sysctlsKnown. unsaved is the failure of its last
	// write, while the file lags behind it (KeepRecords writes it
	// again).
	sysctls        kernel.SysctlRecord
	sysctlsKnown   bool
	sysctlsUnsaved error
	// sysctlsNone is set when the first read of the sysctl record found
	// none; observed once the first observation is made, and
	// sysctlsUnknown then when it found tunneld's objects too
	// (model.Inputs.SysctlsUnknown).
	sysctlsNone, observed, sysctlsUnknown bool
	// sysctlsMarked keeps the sysctl record's file when it is empty
	// ({}), from the first plan this process applies that adds
	// tunneld's objects, its first observation having lost no
	// original (markSysctls): a later process that finds the objects
	// then knows that no value before tunneld was lost.
	sysctlsMarked bool
	// writeRecord writes a record's temporary file, just made: writeAll,
	// or a test's failure (a full state directory).
	writeRecord func(f *os.File, data []byte) error
	// locked is set once the caller holds the state directory's lock
	// (StateLocked); warnings are those of unreadable records
	// (setAside) that no observation has given yet.
	locked   bool
	warnings []string
	// boot is the kernel's boot id, once read (bootID).
	boot string
	// owned are the tunnels the last observation found tunneld's, by
	// name: one of them found again without the alias (someone changed
	// it: ip link set NAME alias LABEL) is still tunneld's, unmarked, in
	// this process (the daemon's), when it is the same device (its
	// index) and the same tunnel (creatingEntry.is: a tester made one by
	// hand with the index of tunneld's, deleted while the daemon did
	// not look, and other endpoints, which the daemon took).
	owned map[string]ownedLink
}

// ownedLink is a tunnel an observation found tunneld's (Kernel.owned).
type ownedLink struct {
	index  uint32
	tunnel creatingEntry
	// kept is set on a running daemon's word (Keep): the tunnel at the
	// index is tunneld's whatever it is now.
	kept bool
}

// Keep implements kernel.Keeper.
func (k *Kernel) Keep(indexes map[string]int) {
	for name, i := range indexes {
		if k.owned == nil {
			k.owned = make(map[string]ownedLink, len(indexes))
		}
		k.owned[name] = ownedLink{index: uint32(i), kept: true}
	}
}

var _ kernel.Kernel = (*Kernel)(nil)

// Open dials rtnetlink (and nfnetlink unless opts.NoFilter).
func Open(opts Options) (*Kernel, error) {
	if opts.StateDir == "" {
		opts.StateDir = model.StateDir
	}
	if opts.ProcSys == "" {
		opts.ProcSys = "/proc/sys"
	}
	if err := iptun.Register(); err != nil {
		return nil, fmt.Errorf("register tunnel drivers: %w", err)
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Strict: true})
	if err != nil {
		// Kernels before 4.20 have no strict checking.
		c, err = netlink.Dial(unix.NETLINK_ROUTE, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	w, err := newWire(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	k := &Kernel{nl: c, w: w, opts: opts}
	if !opts.NoFilter {
		if k.nft, err = openNFT(); err != nil {
			if opts.FilterOptional && errors.Is(err, nft.ErrUnavailable) {
				return k, nil // see RequireFilter
			}
			c.Close()
			if errors.Is(err, nft.ErrUnavailable) {
				return nil, &kernel.NoNFTablesError{Err: err}
			}
			return nil, err // nft's errors begin with "nftables: "
		}
	}
	return k, nil
}

// RequireFilter makes sure the nftables part is there for a
// configuration that turns the filter on (a reload may): when Open went
// on without it, nf_tables is opened now (a module may have been
// installed since); when the kernel still has none, the error is a
// *kernel.NoNFTablesError.
func (k *Kernel) RequireFilter() error {
	if k.nft != nil || k.opts.NoFilter {
		return nil
	}
	c, err := openNFT()
	if errors.Is(err, nft.ErrUnavailable) {
		return &kernel.NoNFTablesError{Err: err}
	}
	if err != nil {
		return err
	}
	k.nft = c
	return nil
}

// Close releases the sockets.
func (k *Kernel) Close() error {
	var errs []error
	errs = append(errs, k.nl.Close())
	if k.nft != nil {
		errs = append(errs, k.nft.Close())
	}
	if k.ask != nil {
		errs = append(errs, k.ask.Close())
	}
	return errors.Join(errs...)
}

// exists reports whether a path exists (for sysctls of vanished devices).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// PortID is the netlink port of the request socket: notifications caused
// by tunneld's own requests carry it.
func (k *Kernel) PortID() uint32 { return k.nl.PID() }

// FilterCounters reads the counters of tunneld's nftables rules.
func (k *Kernel) FilterCounters() (map[string]model.Counter, error) {
	if k.nft == nil {
		return nil, nil
	}
	cs, err := k.nft.Counters()
	if err != nil {
		return nil, err
	}
	out := make(map[string]model.Counter, len(cs))
	for key, c := range cs {
		chain, tag, _ := strings.Cut(key, "\t")
		out[chain+": "+tag] = model.Counter{Packets: c.Packets, Bytes: c.Bytes}
	}
	return out, nil
}
