package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/otheruser"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// TestUnreadableRecords: a record that cannot be read (empty, cut short,
// garbage, JSON of the wrong shape) is read as missing, not an error that
// stops every command (a tester's empty sysctl.json failed apply, status,
// down and run alike); a warning names it, what is lost with it (the
// sysctls still legible in a sysctl record) and what to do. A kernel
// whose caller holds the state directory's lock moves it aside, its
// content kept, once; one that does not (status, plan) leaves it.
func TestUnreadableRecords(t *testing.T) {
	type record struct {
		name  string
		good  string                       // cut short below
		wrong string                       // JSON of another shape
		lost  string                       // in each warning
		read  func(k *Kernel) (int, error) // the record's length
	}
	records := []record{
		{sysctlFile, `{"net/ipv4/conf/lan0/proxy_arp": {"Original": "0", "Ours": ["1"]}, "net/ipv4/ip_forward": {"Original": "0", "Ours": ["1"]}}`, `["net/ipv4/ip_forward"]`,
			"after `tunneld down`, check them (sysctl NAME)",
			func(k *Kernel) (int, error) { m, err := k.originals(); return len(m), err }},
		{bandsFile, `[{"Min": 25000, "Max": 25999}]`, `{"Min": 25000}`,
			"ip rule show proto 116",
			func(k *Kernel) (int, error) { b, err := k.ruleBands(); return len(b), err }},
		{creatingFile, `{"t1": "ipip", "t2": "gre"}`, `{"t1": 1}`,
			"ip -d link show",
			func(k *Kernel) (int, error) { m, err := k.creatingRecord(); return len(m), err }},
	}
	for _, r := range records {
		for _, content := range []string{"", r.good[:len(r.good)-8], "\x00\xffgarbage{", r.wrong} {
			for _, locked := range []bool{true, false} {
				dir := t.TempDir()
				path := filepath.Join(dir, r.name)
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				k := &Kernel{opts: Options{StateDir: dir}}
				if locked {
					k.StateLocked()
				}
				what := r.name + " " + strings.ToValidUTF8(content, "?")
				if locked {
					what += ", locked"
				}
				if n, err := r.read(k); err != nil || n != 0 {
					t.Errorf("%s: read %d entries, %v; want none, no error", what, n, err)
					continue
				}
				if len(k.warnings) != 1 {
					t.Errorf("%s: warnings %q, want one", what, k.warnings)
					continue
				}
				w := k.warnings[0]
				if !strings.HasPrefix(w, "state record "+path+" is unreadable (") || !strings.Contains(w, r.lost) {
					t.Errorf("%s: warning %q does not name the file and what is lost", what, w)
				}
				if r.name == sysctlFile {
					named := "legible in the record: net.ipv4.conf.lan0.proxy_arp (was 0), net.ipv4.ip_forward (was 0))"
					if content == r.wrong {
						named = "legible in the record: net.ipv4.ip_forward)"
					}
					if content == "" || content[0] == 0 {
						named = "none legible in the record"
					}
					if !strings.Contains(w, named) {
						t.Errorf("%s: warning %q does not say %q", what, w, named)
					}
				}
				aside, _ := filepath.Glob(path + ".broken-*")
				if !locked {
					if b, err := os.ReadFile(path); err != nil || string(b) != content || len(aside) != 0 {
						t.Errorf("%s: the record was moved (%v, %q; aside %q), want it left", what, err, b, aside)
					}
					if !strings.Contains(w, "left for the next tunneld that changes the kernel") {
						t.Errorf("%s: warning %q does not say it is left", what, w)
					}
					continue
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("%s: the record is still there: %v", what, err)
				}
				if len(aside) != 1 {
					t.Errorf("%s: moved aside as %q, want one file", what, aside)
					continue
				}
				if b, err := os.ReadFile(aside[0]); err != nil || string(b) != content {
					t.Errorf("%s: moved aside %q, %v; want the content kept", what, b, err)
				}
				if !strings.Contains(w, "moved aside to "+aside[0]+", and tunneld goes on without it") {
					t.Errorf("%s: warning %q does not say where it went", what, w)
				}
				// Said once: it is known as missing now, in this
				// process and in the next.
				k.warnings = nil
				for _, k := range []*Kernel{k, {opts: k.opts, locked: true}} {
					if n, err := r.read(k); err != nil || n != 0 || len(k.warnings) != 0 {
						t.Errorf("%s: read again: %d entries, %v, warnings %q", what, n, err, k.warnings)
					}
				}
			}
		}
	}
}

// TestUnreadableRecordWrittenAnew: once the unreadable record is moved
// aside, the next change writes a new one, readable, in its place.
func TestUnreadableRecordWrittenAnew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, bandsFile)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	band := model.RuleBand{Min: 25000, Max: 25999}
	k := &Kernel{opts: Options{StateDir: dir}}
	k.StateLocked()
	if err := k.recordBand(band); err != nil {
		t.Fatal(err)
	}
	got, _, err := (&Kernel{opts: k.opts}).readBands()
	if err != nil || len(got) != 1 || got[0] != band {
		t.Errorf("record after the move: %v, %v", got, err)
	}
	if len(k.warnings) != 1 {
		t.Errorf("warnings %q, want one", k.warnings)
	}
}

// TestRecordNotAFile: a directory, a FIFO or a symbolic link where a record's file was is
// unreadable as garbage is: read as missing, with a warning, moved aside
// by a caller that holds the lock, left by one that does not. A tester's
// directory failed every command with "is a directory" and the daemon's
// teardown; a FIFO hung status and apply for good (this test would).
func TestRecordNotAFile(t *testing.T) {
	for _, kind := range []string{"a directory", "a FIFO", "a symbolic link"} {
		for _, locked := range []bool{false, true} {
			for _, name := range []string{sysctlFile, bandsFile, creatingFile} {
				dir := t.TempDir()
				path := filepath.Join(dir, name)
				var err error
				switch kind {
				case "a directory":
					err = os.Mkdir(path, 0o700)
				case "a FIFO":
					err = unix.Mkfifo(path, 0o600)
				default:
					// To a file that reads as the record: not read
					// for all that (the file may be one only root
					// may read).
					target := filepath.Join(t.TempDir(), "target")
					if err = os.WriteFile(target, []byte(`{}`), 0o600); err == nil {
						err = os.Symlink(target, path)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				k := &Kernel{opts: Options{StateDir: dir}}
				if locked {
					k.StateLocked()
				}
				switch name {
				case sysctlFile:
					_, err = k.originals()
				case bandsFile:
					_, err = k.ruleBands()
				case creatingFile:
					_, err = k.creatingRecord()
				}
				if err != nil {
					t.Errorf("%s as %s (locked %v): %v, want it read as missing", kind, name, locked, err)
					continue
				}
				if len(k.warnings) != 1 || !strings.Contains(k.warnings[0], "not a regular file: "+kind) {
					t.Errorf("%s as %s: warnings %q, want one saying so", kind, name, k.warnings)
				}
				_, statErr := os.Lstat(path)
				if moved := errors.Is(statErr, fs.ErrNotExist); moved != locked {
					t.Errorf("%s as %s (locked %v): moved aside %v", kind, name, locked, moved)
				}
			}
		}
	}
}

// TestLostOriginals: the warning of an unreadable sysctl record names
// each sysctl still legible in it with its value before tunneld, where
// that is legible too (this version's entry, an older version's plain
// value), so that the admin can put it back by hand.
func TestLostOriginals(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{`{"net/ipv4/ip_forward": {"original": "0", "ours": ["1"]}, "net/ipv6/conf/all/forwarding": {"original": "1"`,
			"legible in the record: net.ipv4.ip_forward (was 0), net.ipv6.conf.all.forwarding (was 1))"},
		{`{"net/ipv4/ip_forward": "1", "net/ipv4/conf/lan0/proxy_arp": "0"`,
			"legible in the record: net.ipv4.ip_forward (was 1), net.ipv4.conf.lan0.proxy_arp (was 0))"},
		// The value cut off, or in no shape tunneld writes: the name alone.
		{`{"net/ipv4/ip_forward": {"original": "0`, "legible in the record: net.ipv4.ip_forward)"},
		{`{"net/ipv4/ip_forward": {"ours": ["1"], "original": "0"}}`, "legible in the record: net.ipv4.ip_forward)"},
		{`["net/ipv4/ip_forward", "net/ipv4/ip_forward"]`, "legible in the record: net.ipv4.ip_forward)"},
		{"\x00garbage", "(none legible in the record)"},
	} {
		if got := lostOriginals([]byte(tc.content)); !strings.Contains(got, tc.want) {
			t.Errorf("lostOriginals(%q) = %q, want it to say %q", tc.content, got, tc.want)
		}
	}
}

// TestMoveAside: records set aside in the same second each keep their
// own file (a rename over the earlier one lost it), and only the
// keptAside newest stay.
func TestMoveAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), sysctlFile)
	var moved []string
	for i := 1; i <= keptAside+2; i++ {
		if err := os.WriteFile(path, []byte{byte('0' + i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		to, err := moveAside(path)
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, to)
	}
	var got []string
	aside, _ := filepath.Glob(path + ".broken-*")
	for _, p := range aside {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if want := []string{"3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("kept %q (files %q), want the newest %q", got, aside, want)
	}
	if !slices.Equal(aside, moved[2:]) {
		t.Errorf("files %q, want the last three moved, %q", aside, moved[2:])
	}
}

// TestRecordsOfTheServiceUser: a root tunneld (`tunneld apply` between
// two runs of a service that runs as its own user, whose state directory
// systemd keeps) writes its records with the directory's owner, so that
// the service can read them (a tester's next start failed every
// convergence on root's 0600 files); and a service that meets a record
// it cannot read (one a root tunneld of an earlier version wrote) sets it
// aside, as an unreadable one, instead of failing on it.
func TestRecordsOfTheServiceUser(t *testing.T) {
	if os.Getenv("TUNNELD_RECORD_HELPER") != "" {
		// The service: another user, in the directory it owns.
		k := &Kernel{opts: Options{StateDir: os.Getenv("TUNNELD_RECORD_HELPER")}}
		k.StateLocked()
		m, err := k.originals()
		fmt.Printf("entries %d, err %v\n", len(m), err)
		for _, w := range k.warnings {
			fmt.Println("warning:", w)
		}
		return
	}
	const uid, gid = otheruser.UID, otheruser.UID
	base := otheruser.Dir(t)
	dir := filepath.Join(base, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	k := &Kernel{opts: Options{StateDir: dir}}
	rec := kernel.SysctlRecord{"net/ipv4/ip_forward": {Original: "0", Ours: []string{"1"}}}
	if err := k.saveOriginals(rec); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, sysctlFile)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Uid != uid || st.Gid != gid {
		t.Errorf("root's record: uid %d gid %d (%v), want the directory's, %d:%d", st.Uid, st.Gid, err, uid, gid)
	}
	helper := func() string {
		t.Helper()
		return otheruser.Run(t, base, "TestRecordsOfTheServiceUser", "TUNNELD_RECORD_HELPER="+dir)
	}
	if out := helper(); !strings.HasPrefix(out, "entries 1, err <nil>\n") || strings.Contains(out, "warning") {
		t.Errorf("the service reading root's record:\n%s", out)
	}
	// A record root wrote before: root's, 0600.
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	out := helper()
	if !strings.HasPrefix(out, "entries 0, err <nil>\n") ||
		!strings.Contains(out, "warning: state record "+path+" is unreadable (permission denied: owned by uid 0, mode -rw-------): moved aside to "+path+".broken-") {
		t.Errorf("the service reading a record only root can read:\n%s", out)
	}
	if aside, _ := filepath.Glob(path + ".broken-*"); len(aside) != 1 {
		t.Errorf("set aside: %q, want one", aside)
	}
}

// TestMoveAsideClockStepped: the file just set aside is kept whatever its
// name, with the newest others by name: after the wall clock stepped back
// (a router without a real-time clock, NTP), its name sorts first, and a
// tester's was deleted at once, the warning naming a file that was gone.
func TestMoveAsideClockStepped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // set aside earlier, by their time
		kept   []string // of before, those that stay with the new one
	}{
		{"clock stepped back", []string{"20991205T030001Z", "20991205T030003Z", "20991205T030005Z"}, []string{"20991205T030003Z", "20991205T030005Z"}},
		{"clock stepped back, one before", []string{"20991205T030001Z"}, []string{"20991205T030001Z"}},
		{"clock in order", []string{"20000101T000001Z", "20000101T000002Z", "20000101T000003Z", "20000101T000004Z"}, []string{"20000101T000003Z", "20000101T000004Z"}},
		{"none before", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), sysctlFile)
			for _, b := range tc.before {
				if err := os.WriteFile(path+".broken-"+b, []byte(b), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			to, err := moveAside(path)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			aside, _ := filepath.Glob(path + ".broken-*")
			for _, p := range aside {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				got[p] = string(b)
			}
			want := map[string]string{to: "garbage"}
			for _, k := range tc.kept {
				want[path+".broken-"+k] = k
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("set aside (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecordTmpLink: a record is written through no symbolic link, and
// no file but its own is given the state directory's owner. A tester,
// as the owner of the state directory (systemd's DynamicUser), planted
// sysctl.json.tmp -> a file of root's: root's apply wrote the record
// into that file and chowned it to the tester. A link to no file made
// that file; a stale temporary file of another's is replaced.
func TestRecordTmpLink(t *testing.T) {
	const uid = otheruser.UID
	base := otheruser.Dir(t)
	for _, name := range []string{sysctlFile, bandsFile, creatingFile} {
		for _, planted := range []string{"a link to a file", "a link to none", "a file"} {
			what := name + ".tmp as " + planted
			dir := filepath.Join(base, name+"-"+strings.ReplaceAll(planted, " ", "-"))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, uid, uid); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(base, "victim-"+filepath.Base(dir))
			tmp := filepath.Join(dir, name+".tmp")
			var err error
			switch planted {
			case "a link to a file":
				if err = os.WriteFile(victim, []byte("root:x:0:0\n"), 0o600); err == nil {
					err = os.Symlink(victim, tmp)
				}
			case "a link to none":
				err = os.Symlink(victim, tmp)
			default:
				err = os.WriteFile(tmp, []byte("stale"), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			k := &Kernel{opts: Options{StateDir: dir}}
			switch name {
			case sysctlFile:
				err = k.saveOriginals(kernel.SysctlRecord{"net/ipv4/ip_forward": {Original: "0", Ours: []string{"1"}}})
			case bandsFile:
				err = k.saveRuleBands([]model.RuleBand{{Min: 25000, Max: 25999}})
			case creatingFile:
				err = k.saveCreating(map[string]creatingEntry{"t1": {kind: "ipip"}})
			}
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			var st unix.Stat_t
			switch err := unix.Lstat(victim, &st); {
			case planted == "a link to a file" && (err != nil || st.Uid != 0 || st.Size != int64(len("root:x:0:0\n"))):
				t.Errorf("%s: the file linked to is changed: uid %d, %d bytes (%v)", what, st.Uid, st.Size, err)
			case planted == "a link to none" && !errors.Is(err, unix.ENOENT):
				t.Errorf("%s: the file linked to is made (%v)", what, err)
			}
			path := filepath.Join(dir, name)
			if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uid || st.Mode&0o777 != 0o600 {
				t.Errorf("%s: the record is mode %o, uid %d (%v); want a regular file, 0600, the directory's owner's", what, st.Mode, st.Uid, err)
			}
			if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: left behind (%v)", what, err)
			}
		}
	}
}
