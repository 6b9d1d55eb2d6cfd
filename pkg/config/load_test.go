package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunneld/tunneld/pkg/internal/otheruser"
)

// TestLoadNotReadable: a file tunneld's user may not read (a root 0600
// file under the systemd unit, whose user is a dynamic one) is an error
// that says which user, and what to do.
func TestLoadNotReadable(t *testing.T) {
	if path := os.Getenv("TUNNELD_LOAD_HELPER"); path != "" {
		_, err := Load(path)
		os.Stdout.WriteString(err.Error())
		return
	}
	dir := otheruser.Dir(t)
	path := filepath.Join(dir, "tunneld.toml")
	if err := os.WriteFile(path, []byte("[global]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := otheruser.Run(t, dir, "TestLoadNotReadable", "TUNNELD_LOAD_HELPER="+path)
	want := "open " + path + ": permission denied (tunneld runs as uid 61234 here, which may not read it: make it readable by that user, e.g. chmod o+r " + path
	if !strings.HasPrefix(out, want) {
		t.Errorf("Load as another user: %q, want %q…", out, want)
	}
	// The file readable, its directory not to be entered (a tester's
	// /etc/tunneld at 0750): the directory is named.
	sub := filepath.Join(dir, "etc-tunneld")
	path = filepath.Join(sub, "tunneld.toml")
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("[global]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = otheruser.Run(t, dir, "TestLoadNotReadable", "TUNNELD_LOAD_HELPER="+path)
	want = "open " + path + ": permission denied (tunneld runs as uid 61234 here, which may not read it: let that user enter the directory, e.g. chmod o+x " + sub
	if !strings.HasPrefix(out, want) {
		t.Errorf("Load as another user, the directory closed: %q, want %q…", out, want)
	}
}
