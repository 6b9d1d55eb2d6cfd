package linux

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tunneld/tunneld/pkg/kernel"
)

// HandOverRecords adds to the state directory's records what this
// process's own hold and they lack: the sysctl originals and the rule
// bands. A daemon calls it when another tunneld took its wiped state
// directory (it stops without the teardown): that one found the sysctls
// already set when it started and recorded no original, and a tester's
// ip_forward stayed 1 after both stopped. What the records have already
// is left as it is; the other process takes the additions into its own
// at its next convergence or stop (AdoptRecords).
func (k *Kernel) HandOverRecords() error {
	if k.sysctlsKnown && len(k.sysctls) > 0 {
		// Without the entries of sysctls tunneld never sets: the
		// other process warns of them, and drops them too.
		file, _, err := k.readOriginals()
		var bad *badRecordError
		if errors.As(err, &bad) {
			// Unreadable: what this daemon hands over replaces it (the
			// other keeps its own in memory, and takes these in).
			file, err = kernel.SysctlRecord{}, nil
		}
		if err != nil {
			return fmt.Errorf("sysctl originals: %w", err)
		}
		added := false
		for p, e := range k.sysctls {
			if _, ok := file[p]; !ok {
				file[p], added = e, true
			}
		}
		if added {
			if err := k.saveRecord(sysctlFile, false, file); err != nil {
				return fmt.Errorf("sysctl originals: %w", err)
			}
		}
	}
	if k.bandsKnown && len(k.bands) > 0 {
		file, _, err := k.readBands()
		var bad *badRecordError
		if errors.As(err, &bad) {
			file, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("rule bands: %w", err)
		}
		if merged, added := unionBands(file, k.bands); added {
			if err := k.saveRecord(bandsFile, false, merged); err != nil {
				return fmt.Errorf("rule bands: %w", err)
			}
		}
	}
	return nil
}

// AdoptRecords takes into this process's records what the files have and
// they lack: what a daemon that lost the state directory to this one
// handed over (HandOverRecords). Only a process that holds the lock
// calls it, and only such a process writes the files otherwise, so an
// entry there that memory lacks is one handed over, never one this
// process removed. A file that cannot be read adds nothing.
//
// The daemon calls it before each of its convergences and its teardown
// (the keep of its state directory), not Apply: the short way's apply
// would read both files at each address hint (the reaction was 1.2× at
// p50 beside bebd474, three runs).
func (k *Kernel) AdoptRecords() {
	if k.sysctlsKnown {
		file, dropped, err := k.readOriginals()
		for p, e := range file {
			if _, ok := k.sysctls[p]; !ok {
				if k.sysctls == nil {
					k.sysctls = kernel.SysctlRecord{}
				}
				k.sysctls[p] = e
			}
		}
		k.rewriteBroken(err, sysctlFile, len(k.sysctls) == 0, k.sysctls)
		if len(dropped) > 0 {
			// Written in the file since the daemon read it: said
			// once, the file written again from memory without them.
			k.warnForeignSysctls(filepath.Join(k.opts.StateDir, sysctlFile), dropped)
			rec := k.sysctls
			if rec == nil {
				rec = kernel.SysctlRecord{}
			}
			_ = k.saveRecord(sysctlFile, false, rec)
		}
	}
	if k.bandsKnown {
		file, dropped, err := k.readBands()
		k.bands, _ = unionBands(k.bands, file)
		k.rewriteBroken(err, bandsFile, len(k.bands) == 0, k.bands)
		if len(dropped) > 0 {
			// As for the sysctl record's above.
			k.warnForeignBands(filepath.Join(k.opts.StateDir, bandsFile), dropped)
			_ = k.saveRecord(bandsFile, len(k.bands) == 0, k.bands)
		}
	}
}

// rewriteBroken deals with a record found unreadable (err a
// *badRecordError) while this process, which holds the lock, keeps it in
// memory: the file is moved aside and written again from memory, with a
// warning. Nothing is lost, unlike at a start (setAside). A tester's
// record garbled under a running daemon stayed garbled, for a crash to
// lose, until that record's next write.
func (k *Kernel) rewriteBroken(err error, name string, empty bool, v any) {
	var bad *badRecordError
	if !errors.As(err, &bad) {
		return
	}
	to, rerr := moveAside(bad.path)
	if rerr != nil {
		k.warnings = append(k.warnings, fmt.Sprintf("state record %s is unreadable (%v), and could not be moved aside (%v): the daemon keeps it in memory, and its next write replaces it", bad.path, bad.err, rerr))
		return
	}
	if werr := k.saveRecord(name, empty, v); werr != nil {
		k.warnings = append(k.warnings, fmt.Sprintf("state record %s was unreadable (%v): moved aside to %s, but not written again (%v); the daemon keeps it in memory", bad.path, bad.err, to, werr))
		return
	}
	k.warnings = append(k.warnings, fmt.Sprintf("state record %s was unreadable (%v): moved aside to %s and written again from the daemon's memory; nothing is lost", bad.path, bad.err, to))
}
