package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/netnstest"
)

// TestPrivilegedUnreadableRecords: an unreadable state record (empty,
// cut short, garbage) locks no command out, with the Linux seam in a
// fresh namespace and a sysctl tree in a temporary directory. A tester's
// empty sysctl.json failed apply, status, down and run with a JSON parse
// error alone, the daemon's teardown "incomplete", and deleting the file
// by hand lost the originals. Now status reads on, leaving the file and
// warning; down and run move it aside (its content kept), warn once what
// is lost, and go on: down puts ip_forward back where its original
// survives (the rule bands' and creating records broken), and where it
// does not (the sysctl record broken) names the sysctl to check by hand.
func TestPrivilegedUnreadableRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		broken  map[string]string // record → its content ("cut": apply's, cut short)
		command string            // "down" or "run" (stopped: its teardown)
		forward string            // ip_forward after it
		named   string            // in the sysctl record's warning
	}{
		{"bands and creating, down", map[string]string{"rule-bands.json": `[{"Min": 20000, "Ma`, "creating.json": "\x00garbage"}, "down", "0", ""},
		{"sysctl, down", map[string]string{"sysctl.json": "cut"}, "down", "1", "legible in the record: net.ipv4.ip_forward (was 0)"},
		{"sysctl empty, bands, run", map[string]string{"sysctl.json": "", "rule-bands.json": "{}"}, "run", "1", "none legible in the record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.Enter(t)
			procSys, value := fakeForward(t)
			state := t.TempDir()
			file, _ := wipeConfig(t, "ip_forward = true\n[[rule]]\nfrom = \"10.0.0.0/24\"\ntable = 100\n")
			// Opened here, in the namespace: the daemon's goroutines
			// are not in it.
			k, err := linux.Open(linux.Options{StateDir: state, ProcSys: procSys, FilterOptional: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { k.Close() })
			run := linuxRun(state, file, linux.Options{ProcSys: procSys})
			if code, out, errs := run("apply"); code != 0 || value() != "1" {
				t.Fatalf("apply: exit %d, ip_forward %s\n%s%s", code, value(), out, errs)
			}
			wrote := map[string]string{}
			for name, content := range tc.broken {
				path := filepath.Join(state, name)
				if content == "cut" {
					// The record apply wrote, its end cut off.
					b, err := os.ReadFile(path)
					if err != nil || len(b) < 20 {
						t.Fatalf("%s: %q, %v", name, b, err)
					}
					content = string(b[:len(b)-8])
				}
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				wrote[name] = content
			}
			warned := func(what, text string, moved bool) {
				t.Helper()
				for name := range tc.broken {
					w := "state record " + filepath.Join(state, name) + " is unreadable ("
					if n := strings.Count(text, w); n != 1 {
						t.Errorf("%s: %d warnings of %s, want one:\n%s", what, n, name, text)
					}
					if moved != strings.Contains(text, "moved aside to "+filepath.Join(state, name)+".broken-") {
						t.Errorf("%s: moved aside %v, want %v:\n%s", what, !moved, moved, text)
					}
				}
				if tc.named != "" && !strings.Contains(text, tc.named+"): after `tunneld down`, check them (sysctl NAME)") {
					t.Errorf("%s: does not say %q and what to do:\n%s", what, tc.named, text)
				}
			}
			// status only reads: it leaves the records, and says so.
			code, out, errs := run("status")
			if code != 0 || !strings.Contains(out, "warning: state record ") {
				t.Errorf("status: exit %d, want 0 and the warnings\n%s%s", code, out, errs)
			}
			warned("status", out, false)
			for name, content := range wrote {
				if b, err := os.ReadFile(filepath.Join(state, name)); err != nil || string(b) != content {
					t.Errorf("status changed %s: %q, %v", name, b, err)
				}
			}
			switch tc.command {
			case "down":
				code, out, errs := run("down")
				if code != 0 || !strings.Contains(errs, "tunneld: warning: state record ") || !strings.Contains(out, "rule del") {
					t.Errorf("down: exit %d, want 0, the rule removed and the warnings\n%s%s", code, out, errs)
				}
				warned("down", errs, true)
			case "run":
				d := runWiped(t, k, state, file)
				d.stop(t, "the daemon")
				log := d.errb.String()
				warned("run", log, true)
				if !strings.Contains(log, "stopped; everything tunneld owned is removed") {
					t.Errorf("run: no complete teardown:\n%s", log)
				}
			}
			if v := value(); v != tc.forward {
				t.Errorf("ip_forward %s after %s, want %s", v, tc.command, tc.forward)
			}
			for name, content := range wrote {
				path := filepath.Join(state, name)
				aside, _ := filepath.Glob(path + ".broken-*")
				if len(aside) != 1 {
					t.Errorf("%s moved aside as %q, want one file", name, aside)
					continue
				}
				if b, err := os.ReadFile(aside[0]); err != nil || string(b) != content {
					t.Errorf("%s moved aside: %q, %v; want the content kept", name, b, err)
				}
				if _, err := os.Stat(path); err == nil {
					t.Errorf("%s is still there after %s", name, tc.command)
				}
			}
			// The next command finds nothing to warn of but ip_forward
			// left as it is, with no record (the broken sysctl record's).
			want := ""
			if tc.forward == "1" {
				want = "tunneld: warning: sysctls left as they are, tunneld having no record of their values before it (found so at its start, or the record lost): net.ipv4.ip_forward = 1; check them (sysctl NAME) and set by hand those tunneld had set\n"
			}
			if code, out, errs := run("down"); code != 0 || out != "" || errs != want {
				t.Errorf("down again: exit %d, want 0 and stderr %q\n%s%s", code, want, out, errs)
			}
		})
	}
}
