package vmharness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// EnvCache names the environment variable that overrides the cache
// directory.
const EnvCache = "TUNNELD_VM_CACHE"

// DefaultCacheDir returns the cache directory: $TUNNELD_VM_CACHE if set,
// else $XDG_CACHE_HOME/tunneld-vm, else ~/.cache/tunneld-vm. Deleting it is
// always safe; the next run rebuilds it.
//
// Layout:
//
//	apt/pkgcache.bin                    apt-cache's package cache (Debian
//	                                    images often disable apt's own)
//	debs/*.deb                          downloads, named as in the Debian pool
//	ARCH/current                        "KERNEL-VERSION KEY" of the last build
//	ARCH/KERNEL-VERSION/vmlinuz         the kernel qemu boots
//	ARCH/KERNEL-VERSION/base-KEY/root/  the modules shipped, after depmod
//	ARCH/KERNEL-VERSION/base-KEY/base.cpio.gz  busybox + modules initramfs
//	ARCH/KERNEL-VERSION/base-KEY/manifest      packages and modules in it
//
// KERNEL-VERSION comes from the kernel package apt resolves at run time, so
// a new ABI gets a new directory; KEY hashes the busybox package, the
// module list and the archive layout.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "tunneld-vm"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("vmharness: no cache directory: set %s: %w", EnvCache, err)
	}
	return filepath.Join(home, ".cache", "tunneld-vm"), nil
}

// lockDir takes an exclusive flock on dir/.lock, so two processes never
// build the same cache entry at once; it gives up when ctx ends. The
// returned func releases the lock.
func lockDir(ctx context.Context, dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("vmharness: locking %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("vmharness: waiting for the cache lock in %s: %w", dir, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
