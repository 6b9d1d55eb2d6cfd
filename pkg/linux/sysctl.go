package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tunneld/tunneld/pkg/minijson"
)

// sysctlFile is where the original values of the sysctls tunneld changed
// are recorded, so that `tunneld down` (or the next start after a crash)
// can restore them. It holds a JSON object of strings, written as
// json.MarshalIndent(m, "", "  ") writes it (older versions used
// encoding/json; a record either one wrote is read by the other).
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

// originals reads the recorded original values (path → value).
func (k *Kernel) originals() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(k.opts.StateDir, sysctlFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := minijson.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(k.opts.StateDir, sysctlFile), err)
	}
	return m, nil
}

// saveOriginals writes the record atomically; an empty record removes
// the file.
func (k *Kernel) saveOriginals(m map[string]string) error {
	return k.saveRecord(sysctlFile, len(m) == 0, m)
}

// setSysctl records the current value as the original (once), then
// writes the new one.
func (k *Kernel) setSysctl(p, v string) error {
	orig, err := k.originals()
	if err != nil {
		return err
	}
	if _, recorded := orig[p]; !recorded {
		cur, err := k.readSysctl(p)
		if err != nil {
			return err
		}
		orig[p] = cur
		if err := k.saveOriginals(orig); err != nil {
			return fmt.Errorf("record original value: %w", err)
		}
	}
	return k.writeSysctl(p, v)
}

// restoreSysctl writes back the original value and forgets it. A sysctl
// whose device is gone has nothing left to restore.
func (k *Kernel) restoreSysctl(p, v string) error {
	orig, err := k.originals()
	if err != nil {
		return err
	}
	if full, err := k.sysctlPath(p); err == nil && exists(full) {
		if err := k.writeSysctl(p, v); err != nil {
			return err
		}
	}
	delete(orig, p)
	return k.saveOriginals(orig)
}
