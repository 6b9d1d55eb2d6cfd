package linux

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tunneld/tunneld/pkg/minijson"
)

// saveRecord writes v as indented JSON to the file name in the state
// directory, atomically (a crash leaves the old or the new file, never
// half of one); when empty is set it removes the file instead.
func (k *Kernel) saveRecord(name string, empty bool, v any) error {
	path := filepath.Join(k.opts.StateDir, name)
	if empty {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(k.opts.StateDir, 0o700); err != nil {
		return err
	}
	b, err := minijson.MarshalIndent(v, "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// KeepRecords writes again each record this process keeps (the sysctl
// originals, the rule bands, the tunnels being created) that is not
// empty and whose file is gone: a state directory wiped under a running
// daemon (by hand, or by a clean-up of /run) would otherwise lose the
// originals that a start after a crash, or `tunneld down`, restores.
// Apply calls it first, and the daemon at each resync: only the process
// that holds the state directory's lock applies, or runs. A failure is
// left to the record's next write, which meets it too. First it takes in
// what another daemon handed over (adoptRecords).
func (k *Kernel) KeepRecords() {
	k.adoptRecords()
	for _, r := range []struct {
		name string
		kept bool
		v    any
	}{
		{sysctlFile, k.sysctlsKnown && len(k.sysctls) > 0, k.sysctls},
		{bandsFile, k.bandsKnown && len(k.bands) > 0, k.bands},
		{creatingFile, k.creatingKnown && len(k.creating) > 0, k.creating},
	} {
		if !r.kept {
			continue
		}
		if _, err := os.Stat(filepath.Join(k.opts.StateDir, r.name)); errors.Is(err, fs.ErrNotExist) {
			_ = k.saveRecord(r.name, false, r.v)
		}
	}
}
