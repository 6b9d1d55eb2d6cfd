package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run as another user")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "config.test")
	if b, err := os.ReadFile(os.Args[0]); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copying the test binary: %v", err)
	}
	path := filepath.Join(base, "tunneld.toml")
	if err := os.WriteFile(path, []byte("[global]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestLoadNotReadable$")
	cmd.Env = append(os.Environ(), "TUNNELD_LOAD_HELPER="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 61234, Gid: 61234}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := "open " + path + ": permission denied (tunneld runs as uid 61234 here, which may not read it: make it readable by that user, e.g. chmod o+r " + path
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("Load as another user: %q, want %q…", out, want)
	}
}
