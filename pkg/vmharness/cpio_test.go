package vmharness

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one parsed newc entry.
type cpioEntry struct {
	name              string
	ino, mode, nlink  uint32
	rdevMaj, rdevMin  uint32
	data              string
	headerOff, length int
}

// readNewc parses a newc archive strictly (magic, alignment, trailer) and
// returns its entries before the trailer and the bytes after it.
func readNewc(t *testing.T, b []byte) ([]cpioEntry, []byte) {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off%4 != 0 {
			t.Fatalf("header at unaligned offset %d", off)
		}
		if len(b)-off < 110 {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d: %v", i, err)
			}
			return uint32(v)
		}
		e := cpioEntry{ino: field(0), mode: field(1), nlink: field(4), rdevMaj: field(9), rdevMin: field(10), headerOff: off}
		size, nameSize := int(field(6)), int(field(11))
		if field(12) != 0 {
			t.Fatal("check field not zero")
		}
		nameEnd := off + 110 + nameSize
		if b[nameEnd-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", off)
		}
		e.name = string(b[off+110 : nameEnd-1])
		dataOff := align(nameEnd)
		e.data = string(b[dataOff : dataOff+size])
		off = align(dataOff + size)
		e.length = off - e.headerOff
		if e.name == "TRAILER!!!" {
			return out, b[off:]
		}
		out = append(out, e)
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	if err := c.mkdirAll("/tmp", 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := c.addBytes("/etc/tunneld-vm/a.sh", []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.addBytes("etc/b", []byte("xyz"), 0o644); err != nil { // relative, same parent
		t.Fatal(err)
	}
	if err := c.addSymlink("/bin/sh", "/bin/busybox"); err != nil {
		t.Fatal(err)
	}
	if err := c.addCharDev("/dev/console", 0o600, 5, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.addBytes("/empty", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if err := c.addBytes("/late", nil, 0o600); err == nil {
		t.Error("write after close succeeded")
	}
	entries, rest := readNewc(t, buf.Bytes())
	if len(rest) != 0 {
		t.Errorf("%d bytes after the trailer", len(rest))
	}
	var names []string
	inos := map[uint32]bool{}
	for _, e := range entries {
		names = append(names, e.name)
		if inos[e.ino] {
			t.Errorf("inode %d reused", e.ino)
		}
		inos[e.ino] = true
	}
	want := "tmp etc etc/tunneld-vm etc/tunneld-vm/a.sh etc/b bin bin/sh dev dev/console empty"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	byName := map[string]cpioEntry{}
	for _, e := range entries {
		byName[e.name] = e
	}
	check := func(name string, mode uint32, data string) {
		t.Helper()
		e := byName[name]
		if e.mode != mode || e.data != data {
			t.Errorf("%s: mode %o data %q, want %o %q", name, e.mode, e.data, mode, data)
		}
	}
	check("tmp", 0o041777, "")
	check("etc", 0o040755, "")
	check("etc/tunneld-vm/a.sh", 0o100755, "echo hi\n")
	check("etc/b", 0o100644, "xyz")
	check("bin/sh", 0o120777, "/bin/busybox")
	check("dev/console", 0o020600, "")
	check("empty", 0o100600, "")
	if e := byName["dev/console"]; e.rdevMaj != 5 || e.rdevMin != 1 {
		t.Errorf("console rdev %d:%d", e.rdevMaj, e.rdevMin)
	}
	if e := byName["etc/b"]; e.nlink != 1 {
		t.Errorf("file nlink %d, want 1 (no hard links)", e.nlink)
	}
}

func TestCPIOAddFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin.test")
	if err := os.WriteFile(src, []byte("12345"), 0o750); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	if err := c.addFile("/root/x.test", src, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.addFile("/root/y", src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.addFile("/root/dir", dir, 0); err == nil {
		t.Error("archiving a directory as a file succeeded")
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := readNewc(t, buf.Bytes())
	if len(entries) != 3 || entries[1].mode != 0o100750 || entries[1].data != "12345" || entries[2].mode != 0o100600 {
		t.Errorf("entries %+v", entries)
	}
}

func TestUnixPerm(t *testing.T) {
	for in, want := range map[fs.FileMode]uint32{
		0o755:                              0o755,
		0o1777:                             0o1777,
		fs.ModeSticky | 0o777:              0o1777,
		fs.ModeSetuid | 0o755:              0o4755,
		fs.ModeSetgid | fs.ModeDir | 0o750: 0o2750,
	} {
		if got := unixPerm(in); got != want {
			t.Errorf("unixPerm(%v) = %o, want %o", in, got, want)
		}
	}
}

func TestCleanArchivePath(t *testing.T) {
	for in, want := range map[string]string{"/bin/sh": "bin/sh", "bin//sh": "bin/sh", "/a/../b": "b", "../../etc": "etc"} {
		if got, err := cleanArchivePath(in); err != nil || got != want {
			t.Errorf("cleanArchivePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := cleanArchivePath("/"); err == nil {
		t.Error("root path accepted")
	}
}

// TestCPIOBusyboxReads checks the writer against an independent reader,
// busybox cpio, when the host has it.
func TestCPIOBusyboxReads(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	for i := range 5 {
		if err := c.addBytes(fmt.Sprintf("/d%d/f%d", i%2, i), bytes.Repeat([]byte{'x'}, i*7), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.addSymlink("/l", "d0/f0"); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d", "-H", "newc")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio: %v: %s", err, out)
	}
	for i := range 5 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("d%d/f%d", i%2, i)))
		if err != nil || len(b) != i*7 {
			t.Errorf("f%d: %d bytes, %v", i, len(b), err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "l")); err != nil || target != "d0/f0" {
		t.Errorf("symlink %q, %v", target, err)
	}
}

// gunzipAll decompresses concatenated gzip members, as the kernel does.
func gunzipAll(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr) // multistream by default
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return out
}
