package kernel

import (
	"slices"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// SysctlRecord is what a seam keeps of the sysctls tunneld changed (on
// Linux, sysctl.json in the state directory), by path: the value each had
// before tunneld first wrote it, to be put back. The Linux seam and the
// in-memory kernel keep it alike, with these methods, each called before
// or after the kernel write it prepares or completes, so that a crash at
// any point leaves a record the next plan can finish from.
type SysctlRecord map[string]string

// Set is called before p is written: it records p's current value as its
// original (once), and before a forwarding sysctl is written, the value
// of each of copies (those the kernel overwrites with the write, existing
// now) that has no record yet. read reads a current value; a copy it
// fails to read (its device just went) is left out. It reports whether
// the record changed.
func (r SysctlRecord) Set(p string, copies []string, read func(string) (string, error)) (bool, error) {
	changed := false
	if _, recorded := r[p]; !recorded {
		cur, err := read(p)
		if err != nil {
			return false, err
		}
		r[p], changed = cur, true
	}
	for _, f := range copies {
		if _, recorded := r[f]; recorded {
			continue
		}
		if cur, err := read(f); err == nil {
			r[f], changed = cur, true
		}
	}
	return changed, nil
}

// Restoring is called before op (a SysctlRestore) writes its sysctl back.
// then are the plan's operations after it: for a forwarding sysctl, the
// values they put back on the interfaces the write overwrites are
// recorded first (those with no record), so that a crash in between still
// puts them back. It reports whether the record changed.
func (r SysctlRecord) Restoring(op plan.Op, then []plan.Op) bool {
	changed := false
	for _, t := range copiesAfter(op.Sysctl.Path, then) {
		if _, recorded := r[t.Sysctl.Path]; !recorded {
			r[t.Sysctl.Path], changed = t.Sysctl.Original, true
		}
	}
	return changed
}

// Restored is called once op's sysctl is written back (or found gone):
// its record is forgotten.
func (r SysctlRecord) Restored(op plan.Op) {
	delete(r, op.Sysctl.Path)
}

// copiesAfter are the operations of then on the copies of the forwarding
// sysctl leader.
func copiesAfter(leader string, then []plan.Op) []plan.Op {
	var out []plan.Op
	for _, t := range then {
		if t.Sysctl != nil && (t.Kind == plan.SysctlRestore) && model.SysctlLeader(t.Sysctl.Path) == leader {
			out = append(out, t)
		}
	}
	return slices.Clip(out)
}
