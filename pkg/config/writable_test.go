package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWritableWarnings: Load warns when the file, a hook, or a directory
// holding either may be written by others than its owner (a tester's
// 0666 file naming a 0777 hook, which runs as root under procd, was
// taken without a word); /tmp's sticky bit, a hook that is missing (check
// says so) and files only their owner writes say nothing.
func TestWritableWarnings(t *testing.T) {
	const (
		fileOthers = ": is writable by other users (mode 0666): anyone who can edit it decides the tunnels, routes and filter tunneld sets up, and the hooks it runs (as root under procd); chmod go-w "
		fileGroup  = ": is writable by its group (mode 0664): anyone who can edit it decides the tunnels, routes and filter tunneld sets up, and the hooks it runs (as root under procd); chmod go-w "
		hookAt     = ":6:8: tunnel.moe.hook: "
		hookOthers = " is writable by other users (mode 0777): anyone who can edit it runs code with tunneld's privileges (root's under procd) when the tunnel comes up or moves; chmod go-w "
		hookGroup  = " is writable by its group (mode 0775): anyone who can edit it runs code with tunneld's privileges (root's under procd) when the tunnel comes up or moves; chmod go-w "
	)
	dirOpen := func(dir, mode string) string {
		return "directory " + dir + " is writable by other users, without the sticky bit (mode " + mode + ")"
	}
	for _, tt := range []struct {
		name string
		// The modes of the file, its directory, the hook and its
		// directory (0 for the file's).
		file, dir, hook, hookDir fs.FileMode
		noHook                   bool
		want                     func(file, hook string) []string
	}{
		{name: "owner's alone", file: 0o644, dir: 0o755, hook: 0o755},
		{name: "file writable by others", file: 0o666, dir: 0o755, hook: 0o755, want: func(f, h string) []string {
			return []string{f + fileOthers + f}
		}},
		{name: "file writable by its group", file: 0o664, dir: 0o755, hook: 0o755, want: func(f, h string) []string {
			return []string{f + fileGroup + f}
		}},
		{name: "hook writable by others", file: 0o600, dir: 0o700, hook: 0o777, want: func(f, h string) []string {
			return []string{f + hookAt + h + hookOthers + h}
		}},
		{name: "hook writable by its group", file: 0o600, dir: 0o700, hook: 0o775, want: func(f, h string) []string {
			return []string{f + hookAt + h + hookGroup + h}
		}},
		{name: "directory writable by others, said once", file: 0o644, dir: 0o777, hook: 0o755, want: func(f, h string) []string {
			d := filepath.Dir(f)
			return []string{f + ": " + dirOpen(d, "0777") + ": anyone can put another configuration in its place; chmod o-w " + d}
		}},
		{name: "hook's directory writable by others", file: 0o644, dir: 0o755, hook: 0o755, hookDir: 0o757, want: func(f, h string) []string {
			d := filepath.Dir(h)
			return []string{f + hookAt + h + "'s " + dirOpen(d, "0757") + ": anyone can put another program in its place; chmod o-w " + d}
		}},
		{name: "sticky directory", file: 0o644, dir: 0o777 | fs.ModeSticky, hook: 0o755},
		{name: "hook missing", file: 0o644, dir: 0o755, noHook: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "etc")
			hookDir := dir
			if tt.hookDir != 0 {
				hookDir = filepath.Join(base, "hooks")
			}
			path, hook := filepath.Join(dir, "tunneld.toml"), filepath.Join(hookDir, "up.sh")
			mkdir(t, dir, tt.dir)
			if hookDir != dir {
				mkdir(t, hookDir, tt.hookDir)
			}
			write(t, path, moe+"hook = \""+hook+"\"\n", tt.file)
			if !tt.noHook {
				write(t, hook, "#!/bin/sh\n", tt.hook)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tt.want != nil {
				want = tt.want(path, hook)
			}
			if diff := cmp.Diff(want, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWritableWarningsLink: a configuration file given by a symbolic link
// is warned about by the directory of the file it leads to too.
func TestWritableWarningsLink(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	mkdir(t, open, 0o777)
	real := filepath.Join(open, "tunneld.toml")
	write(t, real, moe, 0o644)
	link := filepath.Join(base, "tunneld.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{link + ": directory " + open + " is writable by other users, without the sticky bit (mode 0777): anyone can put another configuration in its place; chmod o-w " + open}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // not the umask's
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestOwnedByOther: a configuration file or a hook owned by another user
// than root (or this process's) is warned about whatever its mode: that
// user may edit it (a tester's 0644 hook of an unprivileged user's, which
// root ran). Root is needed to give a file away.
func TestOwnedByOther(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	dir := t.TempDir()
	path, hook := filepath.Join(dir, "tunneld.toml"), filepath.Join(dir, "up.sh")
	write(t, path, moe+"hook = \""+hook+"\"\n", 0o644)
	write(t, hook, "#!/bin/sh\n", 0o755)
	for _, p := range []string{path, hook} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		path + ": is owned by uid 65534, not root: that user decides the tunnels, routes and filter tunneld sets up, and the hooks it runs (as root under procd); chown root " + path,
		path + ":6:8: tunnel.moe.hook: " + hook + " is owned by uid 65534, not root: that user runs code with tunneld's privileges (root's under procd) when the tunnel comes up or moves; chown root " + hook,
	}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
