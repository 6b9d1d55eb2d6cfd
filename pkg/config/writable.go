package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writableFiles warns when the configuration file at path (fi, as read),
// a tunnel's hook, or the directory holding either may be written by
// users other than its owner: whoever may edit the file decides what
// tunneld sets up and which hooks it runs, and whoever may edit a hook
// runs code with tunneld's privileges, root's under procd (a tester's
// 0666 file naming a 0777 hook was taken without a word). A file is
// writable by its group or others; a directory by others, without the
// sticky bit (/tmp's 1777 lets no one replace another's file). Files
// that cannot be read are left to their own errors and warnings. So does
// either that another user than root (or this process's) owns.
func (d *decoder) writableFiles(c *Config, path string, fi fs.FileInfo) {
	seen := map[string]bool{}
	if who := writableBy(fi.Mode()); who != "" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: is writable by %s (mode %04o): anyone who can edit it decides the tunnels, routes and filter tunneld sets up, and the hooks it runs (as root under procd); chmod go-w %s",
			path, who, fi.Mode().Perm(), path))
	}
	if uid, ok := otherOwner(fi); ok {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: is owned by uid %d, not root: that user decides the tunnels, routes and filter tunneld sets up, and the hooks it runs (as root under procd); chown root %s",
			path, uid, path))
	}
	for _, dir := range dirsOf(path) {
		if w := openDir(dir, seen); w != "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: anyone can put another configuration in its place; chmod o-w %s", path, w, dir))
		}
	}
	for _, t := range c.Tunnels {
		if t.Hook == "" {
			continue
		}
		p := tunnelPath(t.Name).key("hook")
		warn := func(msg string) {
			at := d.where(p, false)
			w := &Error{File: d.file, Line: at.Line, Col: at.Col, Path: string(p), Msg: msg}
			c.Warnings = append(c.Warnings, w.Error())
		}
		hi, err := os.Stat(t.Hook)
		if err != nil {
			continue // tunneld check says it cannot run it
		}
		if who := writableBy(hi.Mode()); who != "" && !seen[t.Hook] {
			seen[t.Hook] = true
			warn(fmt.Sprintf("%s is writable by %s (mode %04o): anyone who can edit it runs code with tunneld's privileges (root's under procd) when the tunnel comes up or moves; chmod go-w %s",
				t.Hook, who, hi.Mode().Perm(), t.Hook))
		}
		if uid, ok := otherOwner(hi); ok && !seen["owner "+t.Hook] {
			seen["owner "+t.Hook] = true
			warn(fmt.Sprintf("%s is owned by uid %d, not root: that user runs code with tunneld's privileges (root's under procd) when the tunnel comes up or moves; chown root %s",
				t.Hook, uid, t.Hook))
		}
		for _, dir := range dirsOf(t.Hook) {
			if w := openDir(dir, seen); w != "" {
				warn(fmt.Sprintf("%s's %s: anyone can put another program in its place; chmod o-w %s", t.Hook, w, dir))
			}
		}
	}
}

// otherOwner returns the owner of the file fi describes when it is
// neither root nor this process's user: that user may edit it whatever
// its mode (a tester's 0644 hook of an unprivileged user's, run by root).
func otherOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == os.Geteuid() {
		return 0, false
	}
	return int(st.Uid), true
}

// writableBy says who besides a file's owner may write it, by its mode:
// "other users", "its group", or "" for no one.
func writableBy(m fs.FileMode) string {
	switch {
	case m&0o002 != 0:
		return "other users"
	case m&0o020 != 0:
		return "its group"
	}
	return ""
}

// dirsOf is the directory holding path, and, when path is a symbolic
// link, the one holding what it leads to: a writable one of either lets
// the file be replaced.
func dirsOf(path string) []string {
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		if d := filepath.Dir(real); d != dirs[0] {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// openDir says how the directory dir is open to other users, who may
// then replace what it holds (writable by others, without the sticky
// bit), or "" when it is not, or was seen already.
func openDir(dir string, seen map[string]bool) string {
	if seen[dir] {
		return ""
	}
	seen[dir] = true
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode()&0o002 == 0 || fi.Mode()&fs.ModeSticky != 0 {
		return ""
	}
	return fmt.Sprintf("directory %s is writable by other users, without the sticky bit (mode %04o)", dir, fi.Mode().Perm())
}
