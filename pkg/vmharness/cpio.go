package vmharness

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// File-type bits of a cpio mode field (the same values as the Unix st_mode
// bits; spelled out because io/fs uses its own encoding).
const (
	cpioTypeDir     = 0o040000
	cpioTypeChar    = 0o020000
	cpioTypeRegular = 0o100000
	cpioTypeSymlink = 0o120000
)

// cpioWriter writes an archive in the "newc" format (the one the Linux
// kernel unpacks as an initramfs): a 110-byte ASCII header, the NUL-ended
// name and the data, each padded to a multiple of four bytes.
//
// Entries are written in call order; a parent directory must be written
// before what it holds (use mkdirAll). Each entry gets its own inode number
// and a link count of one, so the kernel never treats two files as hard
// links of each other.
type cpioWriter struct {
	w      io.Writer
	off    int64
	ino    uint32
	dirs   map[string]bool
	closed bool
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{}}
}

// unixPerm converts permission bits to the Unix encoding: Go's
// fs.ModeSetuid, ModeSetgid and ModeSticky become 04000, 02000 and 01000;
// those octal bits given directly (fs.FileMode(0o1777)) are kept as well.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm()) | uint32(m)&0o7000
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// cleanArchivePath turns a guest path into the relative form cpio archives
// use ("/bin/sh" → "bin/sh").
func cleanArchivePath(p string) (string, error) {
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("cpio: empty path %q", p)
	}
	return c, nil
}

func (c *cpioWriter) header(name string, mode uint32, size int64, nlink uint32, rdevMajor, rdevMinor uint32) error {
	if c.closed {
		return fmt.Errorf("cpio: write after close")
	}
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: %s: size %d does not fit the newc format", name, size)
	}
	ino := c.ino
	c.ino++
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if err := c.write([]byte(hdr)); err != nil {
		return err
	}
	if err := c.write(append([]byte(name), 0)); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// mkdirAll writes directory entries for p and each of its missing parents.
func (c *cpioWriter) mkdirAll(p string, perm fs.FileMode) error {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" || c.dirs[name] { // the root exists already
		return nil
	}
	if err := c.mkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	c.dirs[name] = true
	return c.header(name, cpioTypeDir|unixPerm(perm), 0, 2, 0, 0)
}

// parents writes the directories above p.
func (c *cpioWriter) parents(p string) (string, error) {
	name, err := cleanArchivePath(p)
	if err != nil {
		return "", err
	}
	return name, c.mkdirAll(path.Dir(name), 0o755)
}

// addBytes writes a regular file holding data.
func (c *cpioWriter) addBytes(p string, data []byte, perm fs.FileMode) error {
	name, err := c.parents(p)
	if err != nil {
		return err
	}
	if err := c.header(name, cpioTypeRegular|unixPerm(perm), int64(len(data)), 1, 0, 0); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

// addFile copies the regular host file src to guest path p. A zero perm
// keeps the host file's permission bits.
func (c *cpioWriter) addFile(p, src string, perm fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cpio: %s is not a regular file", src)
	}
	if perm == 0 {
		perm = st.Mode()
	}
	name, err := c.parents(p)
	if err != nil {
		return err
	}
	if err := c.header(name, cpioTypeRegular|unixPerm(perm), st.Size(), 1, 0, 0); err != nil {
		return err
	}
	n, err := io.Copy(writerFunc(c.write), f)
	if err != nil {
		return err
	}
	if n != st.Size() {
		return fmt.Errorf("cpio: %s changed size while being archived", src)
	}
	return c.pad()
}

// addSymlink writes a symbolic link p pointing at target.
func (c *cpioWriter) addSymlink(p, target string) error {
	name, err := c.parents(p)
	if err != nil {
		return err
	}
	if err := c.header(name, cpioTypeSymlink|0o777, int64(len(target)), 1, 0, 0); err != nil {
		return err
	}
	if err := c.write([]byte(target)); err != nil {
		return err
	}
	return c.pad()
}

// addCharDev writes a character device node.
func (c *cpioWriter) addCharDev(p string, perm fs.FileMode, major, minor uint32) error {
	name, err := c.parents(p)
	if err != nil {
		return err
	}
	return c.header(name, cpioTypeChar|unixPerm(perm), 0, 1, major, minor)
}

// close writes the trailer entry. It does not close the underlying writer.
func (c *cpioWriter) close() error {
	if err := c.header("TRAILER!!!", 0, 0, 1, 0, 0); err != nil {
		return err
	}
	c.closed = true
	return nil
}

// writerFunc adapts a write-everything function to io.Writer.
type writerFunc func([]byte) error

func (f writerFunc) Write(b []byte) (int, error) {
	if err := f(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
