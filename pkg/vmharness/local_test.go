package vmharness

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareLocal: the big-endian guest's kernel and busybox come from
// the files the environment names; without them the error says which
// variables to set; with them the base initramfs is built once, from
// the busybox given, and the kernel's release is read beside vmlinux.
func TestPrepareLocal(t *testing.T) {
	g, err := lookupGuest(MIPS)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvMIPSKernel, "")
	t.Setenv(EnvMIPSBusybox, "")
	var me *MissingError
	if _, err := prepareLocal(g, t.TempDir(), io.Discard); !errors.As(err, &me) || !strings.Contains(me.Fix, EnvMIPSKernel) {
		t.Fatalf("without the variables: %v, want a MissingError naming %s", err, EnvMIPSKernel)
	}

	src := t.TempDir()
	kernel, busybox := filepath.Join(src, "vmlinux"), filepath.Join(src, "busybox")
	if err := os.MkdirAll(filepath.Join(src, "include", "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string]string{kernel: "kernel", busybox: "busybox", filepath.Join(src, "include", "config", "kernel.release"): "6.1.192\n"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(EnvMIPSKernel, kernel)
	t.Setenv(EnvMIPSBusybox, busybox)
	cache := t.TempDir()
	k, err := prepareLocal(g, cache, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if k.Arch != MIPS || k.Version != "6.1.192" {
		t.Errorf("kernel %+v, want arch mips, version 6.1.192", k)
	}
	if b, err := os.ReadFile(k.Vmlinuz); err != nil || string(b) != "kernel" {
		t.Errorf("vmlinux in the cache: %q, %v", b, err)
	}
	fi, err := os.Stat(k.BaseInitrd)
	if err != nil {
		t.Fatal(err)
	}
	// A second call reuses what the first built.
	k2, err := prepareLocal(g, cache, io.Discard)
	if err != nil || k2.Vmlinuz != k.Vmlinuz || k2.BaseInitrd != k.BaseInitrd {
		t.Fatalf("second call: %+v, %v; want %+v", k2, err, k)
	}
	if fi2, err := os.Stat(k.BaseInitrd); err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the base initramfs was built again")
	}
	// Another busybox is another base.
	if err := os.WriteFile(busybox, []byte("busybox 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k3, err := prepareLocal(g, cache, io.Discard); err != nil || k3.BaseInitrd == k.BaseInitrd {
		t.Errorf("after busybox changed: %+v, %v; want a new base", k3, err)
	}
}
