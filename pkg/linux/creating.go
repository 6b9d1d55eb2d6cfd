package linux

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/plan"
)

// creatingFile records the tunnels tunneld is creating, as a JSON object
// of name → kind. A tunnel is created and then given tunneld's alias in
// a second request (see addLink): a crash between the two leaves it
// without the alias, tunneld's only by its name while the configuration
// names it. Once a configuration without it was applied, nothing said
// it was tunneld's, and it stayed for good (a tester's kill -9 of apply,
// then an apply and a down of a file without that tunnel). The names are
// recorded before their creation is sent, and a tunnel of the recorded
// kind found without the alias is tunneld's, unmarked (observe.go): the
// next plan marks or deletes it. An Apply forgets a name once nothing of
// its is left undone: created and marked, deleted, or its creation
// failed (a device of that name is then someone else's).
const creatingFile = "creating.json"

// creatingRecord returns the record (nil when there is none, or one
// that cannot be read: setAside), read from the file the first time.
func (k *Kernel) creatingRecord() (map[string]string, error) {
	if k.creatingKnown {
		return k.creating, nil
	}
	path := filepath.Join(k.opts.StateDir, creatingFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k.creating, k.creatingKnown = nil, true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec map[string]string
	if err := minijson.Unmarshal(b, &rec); err != nil {
		if err := k.setAside(&badRecordError{path: path, content: b, err: err}, lostCreating); err != nil {
			return nil, err
		}
		rec = nil
	}
	k.creating, k.creatingKnown = rec, true
	return rec, nil
}

// lostCreating is what an unreadable record of the tunnels being created
// loses, for its warning (setAside).
func lostCreating([]byte) string {
	return "a tunnel that a crash left created but without tunneld's alias is no longer known as tunneld's: " +
		"one the configuration names is still taken over, one it does not stays; " +
		"look for tunnels without the alias tunneld (ip -d link show) and delete those no one made by hand (ip link del NAME)"
}

// saveCreating writes the record atomically; an empty one removes the
// file.
func (k *Kernel) saveCreating(rec map[string]string) error {
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
// first of them is sent.
func (k *Kernel) recordCreating(p plan.Plan) error {
	old, err := k.creatingRecord()
	if err != nil {
		return err
	}
	rec := maps.Clone(old)
	for _, op := range p.Ops {
		if op.Kind == plan.LinkAdd {
			if rec == nil {
				rec = map[string]string{}
			}
			rec[op.Link.Name] = op.Link.Mode.Kind()
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
	rec := map[string]string{}
	for name, kind := range old {
		if !notCreated[name] && undone(ae, name) {
			rec[name] = kind
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
