package kernel

import (
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// SysctlRecord is what a seam keeps of the sysctls tunneld changed (on
// Linux, sysctl.json in the state directory), by path. The Linux seam and
// the in-memory kernel keep it alike, with these methods, each called
// before or after the kernel write it prepares or completes, so that a
// crash at any point leaves a record the next plan can finish from.
type SysctlRecord map[string]SysctlEntry

// SysctlEntry is the record of one sysctl.
type SysctlEntry struct {
	// Original is the value to put back: the one found before tunneld
	// first wrote the sysctl.
	Original string `json:"original"`
	// Ours are the values that mean no one else has changed the sysctl
	// since tunneld did (model.Sysctl.Ours); nil in a record an older
	// version wrote, which did not keep them.
	Ours []string `json:"ours,omitempty"`
	// Index is the index of the device a per-device sysctl
	// (net/ipv4/conf/DEV/…) belongs to, 0 when not known, and Boot the
	// kernel's boot id (kernel/random/boot_id) when it was read: a
	// device renamed since takes its record along (Rekey), so that what
	// tunneld set there is still put back. After a reboot (a state
	// directory that outlives one) the indexes are another device's.
	Index int    `json:"index,omitempty"`
	Boot  string `json:"boot,omitempty"`
}

// Rekey moves the record of each per-device sysctl whose device was
// renamed (its Index now has another name, by nameOf) to the sysctl's
// new path (a tester's LAN device, renamed while the daemon ran, kept
// proxy_arp 1 after it stopped: the record went with the old name). Only
// an entry of this boot moves ("" is not known); a new path recorded
// already, or an index gone, leaves the entry as it is too. It reports
// whether the record changed.
func (r SysctlRecord) Rekey(boot string, nameOf func(index int) (string, bool)) bool {
	changed := false
	for p, e := range r {
		dev := model.SysctlDevice(p)
		if e.Index == 0 || dev == "" || boot == "" || e.Boot != boot {
			continue
		}
		now, ok := nameOf(e.Index)
		if !ok || now == dev {
			continue
		}
		parts := strings.Split(p, "/")
		parts[3] = now
		np := strings.Join(parts, "/")
		if _, taken := r[np]; taken {
			continue
		}
		delete(r, p)
		r[np] = e
		changed = true
	}
	return changed
}

// Set is called before v is written to p: it records p's current value
// as its original (once) and v as ours; for a forwarding sysctl, each of
// copies (those the kernel overwrites with the write, existing now) the
// same way, with the value the kernel copies onto it as ours. read reads
// a current value; a copy it fails to read (its device just went) is
// left out. It reports whether the record changed.
func (r SysctlRecord) Set(p, v string, copies []string, read func(string) (string, error)) (bool, error) {
	changed, err := r.set(p, []string{v}, read)
	if err != nil {
		return false, err
	}
	for _, f := range copies {
		// A plan writes a forwarding sysctl when its value differs
		// from v, so the kernel makes the copies (IPv4 copies only a
		// change).
		if c, err := r.set(f, []string{model.CopiedValue(f, v)}, read); err == nil {
			changed = changed || c
		}
	}
	return changed, nil
}

func (r SysctlRecord) set(p string, ours []string, read func(string) (string, error)) (bool, error) {
	e, recorded := r[p]
	if !recorded {
		cur, err := read(p)
		if err != nil {
			return false, err
		}
		e.Original = cur
	}
	if recorded && slices.Equal(e.Ours, ours) {
		return false, nil
	}
	e.Ours = ours
	r[p] = e
	return true, nil
}

// Restoring is called before op (a SysctlRestore or a SysctlKeep) writes
// its sysctl back or leaves it. For a forwarding sysctl written back,
// then are the plan's operations after it: each one on an interface's
// copy is recorded first, as the value it is to end with and as ours both
// the value it has now and the one the write will copy onto it; the
// other copies recorded (those the copy leaves right, or whose operation
// the daemon holds back) take the copied value as ours as well; and the
// value written back is added to the forwarding sysctl's ours. A crash
// after the write then leaves a record from which the next plan, seeing
// the copies the write made, puts the same values back. It reports
// whether the record changed.
func (r SysctlRecord) Restoring(op plan.Op, then []plan.Op) bool {
	p := op.Sysctl.Path
	if op.Kind != plan.SysctlRestore || !model.IsForwarding(p) {
		return false
	}
	written := op.Sysctl.Original
	if e, ok := r[p]; ok && e.Ours != nil && !slices.Contains(e.Ours, written) {
		e.Ours = append(slices.Clip(e.Ours), written)
		r[p] = e
	}
	// The others recorded (their value is right after the write, or
	// their operation is held back) take the copy as ours too.
	for f, e := range r {
		if model.SysctlLeader(f) == p && e.Ours != nil {
			if c := model.CopiedValue(f, written); !slices.Contains(e.Ours, c) {
				e.Ours = append(slices.Clip(e.Ours), c)
				r[f] = e
			}
		}
	}
	for _, t := range copiesAfter(p, then) {
		s := t.Sysctl
		if s.Value == "" {
			continue
		}
		end := s.Original
		if t.Kind == plan.SysctlKeep {
			end = s.Value
		}
		ours := []string{s.Value}
		if c := model.CopiedValue(s.Path, written); c != s.Value {
			ours = append(ours, c)
		}
		r[s.Path] = SysctlEntry{Original: end, Ours: ours}
	}
	return true
}

// Restored is called once op's sysctl is written back, found gone or left
// as someone else set it: its record is forgotten. For a forwarding
// sysctl, so are the records of its copies that are gone or have the
// value they are to end with (model.Sysctl.End), read with read: the
// kernel's copy left them right, or someone else's value stays. The
// others are left to the plan's later operations, or, where one is held
// back, to a later plan.
func (r SysctlRecord) Restored(op plan.Op, read func(string) (string, error)) {
	p := op.Sysctl.Path
	delete(r, p)
	if !model.IsForwarding(p) {
		return
	}
	for f, e := range r {
		if model.SysctlLeader(f) != p {
			continue
		}
		v, err := read(f)
		if err != nil || v == (model.Sysctl{Path: f, Value: v, Original: e.Original, Ours: e.Ours}).End() {
			delete(r, f)
		}
	}
}

// copiesAfter are the operations of then on the copies of the forwarding
// sysctl leader.
func copiesAfter(leader string, then []plan.Op) []plan.Op {
	var out []plan.Op
	for _, t := range then {
		if t.Sysctl != nil && (t.Kind == plan.SysctlRestore || t.Kind == plan.SysctlKeep) && model.SysctlLeader(t.Sysctl.Path) == leader {
			out = append(out, t)
		}
	}
	return out
}
