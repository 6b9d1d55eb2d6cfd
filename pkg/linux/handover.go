package linux

import (
	"fmt"

	"github.com/tunneld/tunneld/pkg/kernel"
)

// HandOverRecords adds to the state directory's records what this
// process's own hold and they lack: the sysctl originals and the rule
// bands. A daemon calls it when another tunneld took its wiped state
// directory (it stops without the teardown): that one found the sysctls
// already set when it started and recorded no original, and a tester's
// ip_forward stayed 1 after both stopped. What the records have already
// is left as it is; the other process takes the additions into its own
// at its next convergence or stop (KeepRecords).
func (k *Kernel) HandOverRecords() error {
	if k.sysctlsKnown && len(k.sysctls) > 0 {
		file, err := k.readOriginals()
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
		file, err := k.readBands()
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

// adoptRecords takes into this process's records what the files have and
// they lack: what a daemon that lost the state directory to this one
// handed over (HandOverRecords). Only a process that holds the lock
// calls it, and only such a process writes the files otherwise, so an
// entry there that memory lacks is one handed over, never one this
// process removed. A file that cannot be read adds nothing.
func (k *Kernel) adoptRecords() {
	if k.sysctlsKnown {
		if file, err := k.readOriginals(); err == nil {
			for p, e := range file {
				if _, ok := k.sysctls[p]; !ok {
					if k.sysctls == nil {
						k.sysctls = kernel.SysctlRecord{}
					}
					k.sysctls[p] = e
				}
			}
		}
	}
	if k.bandsKnown {
		if file, err := k.readBands(); err == nil {
			k.bands, _ = unionBands(k.bands, file)
		}
	}
}
