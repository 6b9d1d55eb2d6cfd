package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// sysctlFile is where what tunneld changed in sysctls is recorded, so
// that `tunneld down` (or the next start after a crash) can restore it: a
// JSON object of kernel.SysctlEntry by path, written as
// json.MarshalIndent(m, "", "  ") writes it. Older versions kept a JSON
// object of strings, the originals alone (written by encoding/json or
// minijson, either reads the other's); such a record is read too.
const sysctlFile = "sysctl.json"

func (k *Kernel) sysctlPath(p string) (string, error) {
	clean := filepath.Clean("/" + p)
	if strings.Contains(p, "..") || clean == "/" {
		return "", fmt.Errorf("bad sysctl path %q", p)
	}
	return filepath.Join(k.opts.ProcSys, clean), nil
}

func (k *Kernel) readSysctl(p string) (string, error) {
	full, err := k.sysctlPath(p)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (k *Kernel) writeSysctl(p, v string) error {
	full, err := k.sysctlPath(p)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(full, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// inputSysctls reads the sysctls of paths (Scope.ReadSysctls) as
// Inputs.Sysctls: nil for no paths. One that cannot be read (its device
// does not exist) is left out: an input only words a warning, and an
// observation does not fail for it.
func (k *Kernel) inputSysctls(paths []string) map[string]string {
	if len(paths) == 0 {
		return nil
	}
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		if v, err := k.readSysctl(p); err == nil {
			out[p] = v
		}
	}
	return out
}

// originals returns the record (path → entry), a copy of its caller's,
// read from the file the first time and kept as written since (as the
// rule bands are): a state directory wiped under a running daemon does
// not take the originals with it (see keepRecords). A file that cannot
// be read as the record is read as none (setAside).
func (k *Kernel) originals() (kernel.SysctlRecord, error) {
	if k.sysctlsKnown {
		return maps.Clone(k.sysctls), nil
	}
	// No file: not an unreadable one, which has a warning of its own,
	// nor an empty one (markSysctls).
	_, statErr := os.Lstat(filepath.Join(k.opts.StateDir, sysctlFile))
	k.sysctlsNone = errors.Is(statErr, fs.ErrNotExist)
	m, dropped, err := k.readOriginals()
	if err != nil {
		if err = k.setAside(err, lostOriginals); err != nil {
			return nil, err
		}
		m = kernel.SysctlRecord{}
	}
	if len(dropped) > 0 {
		// Said once: the file is written without them by a process
		// that holds the lock (an empty record kept, {}: the file
		// was there), and read so by the next.
		k.warnForeignSysctls(filepath.Join(k.opts.StateDir, sysctlFile), dropped)
		if k.locked {
			_ = k.saveRecord(sysctlFile, false, m)
		}
	}
	k.sysctls, k.sysctlsKnown = m, true
	return maps.Clone(m), nil
}

// readOriginals reads the record from its file (an empty one when there
// is none; a *badRecordError when it cannot be read as the record),
// without the entries of sysctls tunneld never sets, whose paths it
// returns besides (dropForeignSysctls): they are never written.
func (k *Kernel) readOriginals() (kernel.SysctlRecord, []string, error) {
	path := filepath.Join(k.opts.StateDir, sysctlFile)
	b, err := readRecordFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kernel.SysctlRecord{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	m := kernel.SysctlRecord{}
	err = minijson.Unmarshal(b, &m)
	if err != nil {
		// An older version's record: the originals alone.
		old := map[string]string{}
		if minijson.Unmarshal(b, &old) != nil {
			return nil, nil, &badRecordError{path: path, content: b, err: err}
		}
		m = make(kernel.SysctlRecord, len(old))
		for p, o := range old {
			m[p] = kernel.SysctlEntry{Original: o}
		}
	}
	dropped := dropForeignSysctls(m)
	slices.Sort(dropped)
	return m, dropped, nil
}

// lostOriginals says, for the warning of an unreadable sysctl record
// (content, the file's), what is lost with it and what to do: the
// sysctls it names, as far as their names can still be read in it (a
// quoted string that looks like a sysctl's path, net/…), may not be put
// back; each with its value before tunneld where that is still legible
// after it (`"original": "V"` in its entry, or an older record's `"V"`).
func lostOriginals(content []byte) string {
	var names []string
	parts := strings.Split(string(content), `"`)
	colon := func(i int) bool { return i < len(parts) && strings.TrimSpace(parts[i]) == ":" }
	for i := 1; i < len(parts)-1; i += 2 { // between two quotes
		p := parts[i]
		if !strings.HasPrefix(p, "net/") || strings.ContainsAny(p, "\\ \t\n") {
			continue
		}
		n := model.SysctlName(p)
		switch {
		case strings.TrimSpace(parts[i+1]) == ": {" && i+4 < len(parts)-1 && strings.EqualFold(parts[i+2], "original") && colon(i+3):
			n += " (was " + parts[i+4] + ")"
		case colon(i+1) && i+2 < len(parts)-1:
			n += " (was " + parts[i+2] + ")"
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	named := "none legible in the record"
	if len(names) > 0 {
		named = "legible in the record: " + strings.Join(names, ", ")
	}
	return "the sysctls tunneld set (ip_forward, IPv6 forwarding, proxy_arp as the configuration names them, " +
		"and the interfaces' forwarding the kernel copies from these) may not be put back to their values before it (" + named +
		"): after `tunneld down`, check them (sysctl NAME) and set by hand those left as tunneld set them"
}

// saveOriginals writes the record atomically; an empty record removes
// the file. It is for what the kernel has already (values put back,
// devices renamed): setSysctl records before its write instead.
func (k *Kernel) saveOriginals(m kernel.SysctlRecord) error {
	// Kept in memory whether the file could be written or not: this
	// process holds the state directory, and what it must put back is
	// what it knows, not what a broken directory still has (KeepRecords
	// writes it again where it can).
	k.sysctls, k.sysctlsKnown = maps.Clone(m), true
	k.sysctlsUnsaved = k.saveRecord(sysctlFile, len(m) == 0 && !k.sysctlsMarked, m)
	return k.sysctlsUnsaved
}

// markSysctls keeps the sysctl record's file, {} when empty, once p adds
// tunneld's objects in a process whose first observation lost no
// original (Kernel.sysctlsMarked): without it, an apply that found every
// sysctl already set wrote no record, and every later process that found
// its objects would take the originals for lost
// (model.Inputs.SysctlsUnknown). A failure is KeepRecords' to mend.
func (k *Kernel) markSysctls(p plan.Plan) {
	if k.sysctlsMarked || !k.observed || k.sysctlsUnknown || !k.sysctlsKnown {
		return
	}
	if !slices.ContainsFunc(p.Ops, func(op plan.Op) bool {
		switch op.Kind {
		case plan.LinkAdd, plan.LinkMark, plan.RouteAdd, plan.RouteReplace, plan.RuleAdd, plan.FilterReplace:
			return true
		}
		return false
	}) {
		return
	}
	k.sysctlsMarked = true
	if len(k.sysctls) == 0 {
		_ = k.saveOriginals(k.sysctls)
	}
}

// DroppedAll implements engine.Dropper: after a teardown, an empty sysctl
// record (markSysctls) is removed with the rest.
func (k *Kernel) DroppedAll() {
	k.sysctlsMarked = false
	if k.sysctlsKnown && len(k.sysctls) == 0 {
		_ = k.saveOriginals(k.sysctls)
	}
}

// setSysctl records what the write changes (SysctlRecord.Set), with the
// index of the device of each per-device sysctl recorded (indexOf, 0 when
// not known; SysctlRecord.Rekey), then writes the new value. The record
// is in the file before the write, and only then in memory: a record
// that cannot be written (a full state directory) fails the write, and
// the next converge records and writes it again. A tester's reload, with
// the record in memory alone, wrote the sysctl at the converge's next
// round without a word, and a crash lost its original.
func (k *Kernel) setSysctl(p, v string, indexOf func(dev string) uint32) error {
	orig, err := k.originals()
	if err != nil {
		return err
	}
	copies := k.copiesOf(p)
	changed, err := orig.Set(p, v, copies, k.readSysctl)
	if err != nil {
		return err
	}
	boot := k.bootID()
	for _, f := range append(copies, p) {
		e, ok := orig[f]
		dev := model.SysctlDevice(f)
		if !ok || boot == "" || dev == "" || dev == "all" || dev == "default" {
			continue
		}
		// The device's index now: a tunnel the plan created again
		// under its name has a new one.
		if i := indexOf(dev); i != 0 && (e.Index != int(i) || e.Boot != boot) {
			e.Index, e.Boot = int(i), boot
			orig[f] = e
			changed = true
		}
	}
	if changed {
		if err := k.saveRecord(sysctlFile, false, orig); err != nil {
			return fmt.Errorf("not written: its value before tunneld, which down puts back, could not be recorded (%w); tunneld writes it once the state directory %s takes the record (free space there)", err, k.opts.StateDir)
		}
		k.sysctls, k.sysctlsKnown, k.sysctlsUnsaved = orig, true, nil
	}
	return k.writeSysctl(p, v)
}

// restoreSysctl writes back the original value (a SysctlRestore), or
// leaves the value someone else set (a SysctlKeep), and forgets the
// record. A sysctl whose device is gone has nothing left to restore. then
// are the plan's operations after this one (see SysctlRecord.Restoring).
//
// A record that cannot be written (the state directory replaced by a
// file, a full disk) does not keep the original from being put back,
// from memory: a tester's stop left ip_forward on. Nor is it this
// operation's failure: Apply says, after the plan's last sysctl, that the
// record could not follow (unsavedRecord), when its last write failed
// too; a teardown's removes the file, which a full disk allows.
func (k *Kernel) restoreSysctl(op plan.Op, then []plan.Op) error {
	orig, err := k.originals()
	if err != nil {
		return err
	}
	if orig.Restoring(op, then) {
		_ = k.saveOriginals(orig)
	}
	p := op.Sysctl.Path
	if full, err := k.sysctlPath(p); err == nil && exists(full) && op.Kind == plan.SysctlRestore {
		if err := k.writeSysctl(p, op.Sysctl.Original); err != nil {
			return err
		}
	}
	orig.Restored(op, k.readSysctl)
	_ = k.saveOriginals(orig)
	return nil
}

// unsavedRecord is the failure Apply gives, with the last of ops that
// puts a sysctl back (its index, -1 for none), when the sysctl record's
// last write failed: the kernel is as the plan meant it, and the record
// in the state directory still names what was put back
// (kernel.RecordError).
func (k *Kernel) unsavedRecord(ops []plan.Op) (int, error) {
	if k.sysctlsUnsaved == nil {
		return -1, nil
	}
	for i := len(ops) - 1; i >= 0; i-- {
		if ops[i].Kind == plan.SysctlRestore || ops[i].Kind == plan.SysctlKeep {
			return i, &kernel.RecordError{Err: fmt.Errorf("put back in the kernel, but the state record could not be updated (%v): it still names sysctls put back; a running daemon writes it again once the state directory %s can be written (free space there); after down, remove it by hand", k.sysctlsUnsaved, k.opts.StateDir)}
		}
	}
	return -1, nil
}

// bootID is the kernel's boot id, "" when it cannot be read: device
// indexes are of one boot (kernel.SysctlEntry.Boot). It is read once: a
// process lives in one boot, and observations ask at each.
func (k *Kernel) bootID() string {
	if k.boot == "" {
		k.boot, _ = k.readSysctl("kernel/random/boot_id")
	}
	return k.boot
}

// copiesOf lists the sysctls that exist now and that the kernel overwrites
// when p is written (none unless p is a forwarding sysctl).
func (k *Kernel) copiesOf(p string) []string {
	var family string
	switch p {
	case model.IPForward:
		family = "ipv4"
	case model.IPv6Forward:
		family = "ipv6"
	default:
		return nil
	}
	// The entries' names, sorted as os.ReadDir sorts them (which would
	// link a sort instantiated for its entries alone, 9 KB of mipsle).
	var devs []string
	if d, err := os.Open(filepath.Join(k.opts.ProcSys, "net", family, "conf")); err == nil {
		devs, _ = d.Readdirnames(-1)
		d.Close()
	}
	slices.Sort(devs)
	var out []string
	for _, dev := range devs {
		for _, name := range []string{"forwarding", "accept_redirects"} {
			f := "net/" + family + "/conf/" + dev + "/" + name
			if model.SysctlLeader(f) == p {
				out = append(out, f)
			}
		}
	}
	return out
}
