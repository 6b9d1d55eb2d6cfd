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
