package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// creatingFile records the tunnels tunneld is creating, as a JSON object
// of name → the tunnel (creatingEntry). A tunnel is created and then
// given tunneld's alias in a second request (see addLink): a crash
// between the two leaves it without the alias, and nothing else says it
// is tunneld's: once a configuration without it was applied, it stayed
// for good (a tester's kill -9 of apply, then an apply and a down of a
// file without that tunnel). The tunnels are recorded before their creation
// is sent, and a tunnel found without the alias is tunneld's, unmarked
// (observe.go), when it is the one recorded under its name: of its
// mode, endpoints, underlay device and GRE keys (creatingEntry.is); the
// next plan marks or deletes it. Any other device of the name is
// foreign, and stays: the record names every tunnel of a plan before the
// first is sent, and after a crash early in a large apply an admin may
// make one of those names by hand (a tester's ipip t180, with other
// endpoints, which the next apply or down of a file without it deleted
// when the kind alone was recorded). An Apply forgets a name once
// nothing of its is left undone: created and marked, deleted, or its
// creation failed (a device of that name is then someone else's).
const creatingFile = "creating.json"

// creatingEntry is what the record holds of one tunnel being created:
// its mode and what the kernel tells tunnels apart by
// (model.Link.SameTunnel), with the output key besides. It is written as
// a string of ip(8)'s words, `MODE local ADDR|any remote ADDR|any [dev
// DEV] [ikey N] [okey N]` (ip tunnel's modes: ipip, gre, sit, ipip6,
// ip6ip6), so that the file stays a JSON object of strings, as an older
// version wrote it (`"t1": "ipip"`, the kind alone): such a version
// reads this one's record without error, and its comparison of the
// string with a device's kind never matches, so it takes no device for
// its own by the record (it stays foreign to it). An older version's
// entry, read by this one, is any tunnel of its kind, whatever its
// endpoints, as that version took it: it is a crash-recovery record
// whose endpoints nobody knows, and taking tunneld's own tunnel for
// foreign would leave it for good. But only a tunnel the configuration
// names (createdTunnel): anyone who can write the state directory can
// write such an entry.
type creatingEntry struct {
	kind string // the kernel's link kind
	// link holds the Mode, Local, Remote, Dev and GRE keys of the
	// tunnel; its Mode is empty in an older version's entry.
	link model.Link
}

// newCreatingEntry is the entry of l, a tunnel being created.
func newCreatingEntry(l model.Link) creatingEntry {
	e := creatingEntry{kind: l.Mode.Kind(), link: model.Link{Mode: l.Mode, Local: anyAddr(l.Local), Remote: anyAddr(l.Remote),
		Dev: l.Dev, HasIKey: l.HasIKey, HasOKey: l.HasOKey}}
	if l.HasIKey {
		e.link.IKey = l.IKey
	}
	if l.HasOKey {
		e.link.OKey = l.OKey
	}
	return e
}

// anyAddr is a with the unspecified address as the zero Addr, the
// kernel's any as linkFromData reads it.
func anyAddr(a netip.Addr) netip.Addr {
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// is reports whether the tunnel of the given kind that the kernel holds,
// observed as ml (linkFromData), is the one the entry records: of its
// mode (an ip6tnl one of its inner protocol, not any), endpoints,
// underlay device and keys; or, for an older version's entry, of its
// kind.
func (e *creatingEntry) is(kind string, ml *model.Link) bool {
	if e.kind != kind {
		return false
	}
	r := &e.link
	if r.Mode == "" {
		return true
	}
	return ml.SameAs(*r)
}

// MarshalText implements encoding.TextMarshaler (see creatingEntry).
func (e creatingEntry) MarshalText() ([]byte, error) {
	l := &e.link
	if l.Mode == "" {
		return []byte(e.kind), nil
	}
	b := append([]byte(l.Mode), " local "...)
	b = appendAny(b, l.Local)
	b = append(b, " remote "...)
	b = appendAny(b, l.Remote)
	if l.Dev != "" {
		b = append(append(b, " dev "...), l.Dev...)
	}
	if l.HasIKey {
		b = strconv.AppendUint(append(b, " ikey "...), uint64(l.IKey), 10)
	}
	if l.HasOKey {
		b = strconv.AppendUint(append(b, " okey "...), uint64(l.OKey), 10)
	}
	return b, nil
}

// appendAny appends a, or "any" for the zero Addr.
func appendAny(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "any"...)
	}
	return a.AppendTo(b)
}

// UnmarshalText implements encoding.TextUnmarshaler (see creatingEntry):
// a word alone is an older version's entry, the kind; the words a newer
// version may add, each followed by its value, are skipped, and a mode
// this one does not know makes an entry that is none of its tunnels.
func (e *creatingEntry) UnmarshalText(b []byte) error {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return errors.New("empty entry")
	}
	*e = creatingEntry{}
	if len(f) == 1 {
		e.kind = f[0]
		return nil
	}
	if len(f)%2 == 0 {
		return fmt.Errorf("%q: a word without its value", b)
	}
	l := model.Link{Mode: model.Mode(f[0])}
	var local, remote bool
	for i := 1; i < len(f); i += 2 {
		word, v := f[i], f[i+1]
		switch word {
		case "local", "remote":
			a := netip.Addr{}
			if v != "any" {
				var err error
				if a, err = netip.ParseAddr(v); err != nil {
					return err
				}
			}
			if word == "local" {
				l.Local, local = anyAddr(a), true
			} else {
				l.Remote, remote = anyAddr(a), true
			}
		case "dev":
			l.Dev = v
		case "ikey", "okey":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("%s: %w", word, err)
			}
			if word == "ikey" {
				l.IKey, l.HasIKey = uint32(n), true
			} else {
				l.OKey, l.HasOKey = uint32(n), true
			}
		}
	}
	if !local || !remote {
		return fmt.Errorf("%q: no local or no remote", b)
	}
	// A mode this version does not know (a newer one's) is of no kind
	// it manages: the entry is none of its tunnels.
	if slices.Contains(model.Modes, l.Mode) {
		e.kind = l.Mode.Kind()
	}
	e.link = l
	return nil
}

// creatingRecord returns the record (nil when there is none, or one
// that cannot be read: setAside), read from the file the first time.
func (k *Kernel) creatingRecord() (map[string]creatingEntry, error) {
	if k.creatingKnown {
		return k.creating, nil
	}
	path := filepath.Join(k.opts.StateDir, creatingFile)
	b, err := readRecordFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k.creating, k.creatingKnown = nil, true
		return nil, nil
	}
	var rec map[string]creatingEntry
	if err == nil {
		if uerr := minijson.Unmarshal(b, &rec); uerr != nil {
			err, rec = &badRecordError{path: path, content: b, err: uerr}, nil
		}
	}
	if err != nil {
		if err := k.setAside(err, lostCreating); err != nil {
			return nil, err
		}
	}
	k.creating, k.creatingKnown = rec, true
	return rec, nil
}

// createdTunnel reports whether the tunnel called name, of the kind,
// observed as ml (linkFromData) without tunneld's alias, is the one the
// record of the tunnels being created (creating) names under its name
// (creatingEntry.is). An older version's entry, of the kind alone, takes
// it only when the configuration names it (scope.Links): such an entry
// is whatever tunnel of its kind, and a forged one ({"fo3": "ipip"},
// a tester's, written by someone who could write the state directory)
// had apply delete a foreign tunnel that no configuration named. Any
// other such entry is dropped (dropOlderEntry), the tunnel left alone.
func (k *Kernel) createdTunnel(creating map[string]creatingEntry, name, kind string, ml *model.Link, scope model.Scope) bool {
	e, recorded := creating[name]
	if !recorded || !e.is(kind, ml) {
		return false
	}
	if _, configured := scope.Links[name]; configured || e.link.Mode != "" {
		return true
	}
	k.dropOlderEntry(name, kind)
	return false
}

// dropOlderEntry drops the older version's entry of the tunnel called
// name, of the kind, that no configured tunnel has (createdTunnel), with
// a warning (Inputs.Warnings): from the file when the caller holds the
// lock, from memory alone otherwise, so that it is said once.
func (k *Kernel) dropOlderEntry(name, kind string) {
	path := filepath.Join(k.opts.StateDir, creatingFile)
	dropped := "dropped from the record"
	if !k.locked {
		dropped = "left in the record for the next tunneld that changes the kernel (apply, down or run) to drop"
	}
	n := shownName(name)
	k.warnings = append(k.warnings, fmt.Sprintf("state record %s names tunnel %s (%s) in an older version's form, of the kind alone, and the configuration has no tunnel %s: "+
		"not taken for tunneld's, the record maybe not tunneld's doing "+notOurs+"; %s, and the tunnel left alone "+
		"(if it is a leftover of tunneld's, `ip link del %s` deletes it)", path, n, kind, n, dropped, n))
	rec := maps.Clone(k.creating)
	delete(rec, name)
	if k.locked {
		_ = k.saveCreating(rec)
		return
	}
	if len(rec) == 0 {
		rec = nil
	}
	k.creating = rec
}

// lostCreating is what an unreadable record of the tunnels being created
// loses, for its warning (setAside).
func lostCreating([]byte) string {
	return "a tunnel that a crash left created but without tunneld's alias is no longer known as tunneld's, and stays: " +
		"one the configuration names is down, its name taken; " +
		"look for tunnels without the alias tunneld (ip -d link show; busybox: cat /sys/class/net/*/ifalias): give back tunneld's (ip link set NAME alias tunneld; busybox: echo tunneld > /sys/class/net/NAME/ifalias), or delete (ip link del NAME), those no one made by hand"
}

// saveCreating writes the record atomically; an empty one removes the
// file.
func (k *Kernel) saveCreating(rec map[string]creatingEntry) error {
	if err := k.saveRecord(creatingFile, len(rec) == 0, rec); err != nil {
		k.creatingKnown = false // read it again: it may or may not be written
		return err
	}
	if len(rec) == 0 {
		rec = nil
	}
	k.creating, k.creatingKnown = rec, true
	return nil
}

// recordCreating adds the tunnels p creates to the record, before the
// first of them is sent; a name recorded already takes the tunnel p
// creates under it.
func (k *Kernel) recordCreating(p plan.Plan) error {
	old, err := k.creatingRecord()
	if err != nil {
		return err
	}
	rec := maps.Clone(old)
	for _, op := range p.Ops {
		if op.Kind == plan.LinkAdd {
			if rec == nil {
				rec = map[string]creatingEntry{}
			}
			rec[op.Link.Name] = newCreatingEntry(*op.Link)
		}
	}
	if maps.Equal(rec, old) {
		return nil
	}
	return k.saveCreating(rec)
}

// settleCreating runs at the end of an Apply while the record holds
// names: it keeps those of tunnels an operation left undone (made, but
// the alias failed; or a deletion or marking that failed: ae), and drops
// the rest: tunnels made and marked, deleted, marked, never made (their
// creation failed: notCreated), or not in the plan at all, which observe
// would have found without the alias and the plan marked or deleted.
func (k *Kernel) settleCreating(ae *kernel.ApplyError, notCreated map[string]bool) error {
	old, err := k.creatingRecord()
	if err != nil || len(old) == 0 {
		return err
	}
	rec := map[string]creatingEntry{}
	for name, e := range old {
		if !notCreated[name] && undone(ae, name) {
			rec[name] = e
		}
	}
	if maps.Equal(rec, old) {
		return nil
	}
	return k.saveCreating(rec)
}

// undone reports whether an operation that creates, marks or deletes
// the tunnel called name failed or was not tried.
func undone(ae *kernel.ApplyError, name string) bool {
	if ae == nil {
		return false
	}
	for _, f := range ae.Failed {
		if onTunnel(f.Op, name) {
			return true
		}
	}
	for _, op := range ae.Skipped {
		if onTunnel(op, name) {
			return true
		}
	}
	return false
}

// onTunnel reports whether op creates, marks or deletes the tunnel
// called name.
func onTunnel(op plan.Op, name string) bool {
	return onAnyTunnel(op) && op.Link.Name == name
}

// onAnyTunnel reports whether op creates, marks or deletes a tunnel.
func onAnyTunnel(op plan.Op) bool {
	switch op.Kind {
	case plan.LinkAdd, plan.LinkMark, plan.LinkDel:
		return op.Link != nil
	}
	return false
}
