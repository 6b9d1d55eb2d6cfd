package pkgtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// gate skips the test unless TUNNELD_PKG_TEST=1.
func gate(t *testing.T) {
	t.Helper()
	if os.Getenv("TUNNELD_PKG_TEST") != "1" {
		t.Skip("packaging tests build cross binaries and packages; set TUNNELD_PKG_TEST=1 (make test-pkg)")
	}
}

// need fails the test when a command it needs is missing: with
// TUNNELD_PKG_TEST=1 the tools are expected (make deps-pkg installs them).
func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s not found: apt-get install -y --no-install-recommends lintian systemd shellcheck nftables man-db (or make deps-pkg)", c)
		}
	}
}

// repoRoot is the top of the source tree.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// run runs a command in dir with extra environment, failing the test on a
// non-zero exit; it returns the standard output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (string, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// lastLine is the last non-empty line of s (the scripts print the path of
// the package they made last).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// entry is one member of a tar archive.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// readTarGz reads a gzip'd tar fully, in archive order.
func readTarGz(b []byte) ([]entry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out = append(out, entry{hdr: h, data: data})
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// byName indexes entries by their name without a leading "./".
func byName(es []entry) map[string]entry {
	m := make(map[string]entry, len(es))
	for _, e := range es {
		m[strings.TrimPrefix(e.hdr.Name, "./")] = e
	}
	return m
}

// controlFields parses a Debian-style control paragraph (continuation
// lines are appended to the field, newline-separated).
func controlFields(s string) (map[string]string, error) {
	f := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, " ") {
			if last == "" {
				return nil, fmt.Errorf("continuation before any field: %q", line)
			}
			f[last] += "\n" + line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("not a field: %q", line)
		}
		last = k
		f[k] = strings.TrimSpace(v)
	}
	return f, nil
}

// readFile reads a file of the source tree.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gitVersion is what the Makefile's VERSION is for this checkout.
func gitVersion(t *testing.T) string {
	t.Helper()
	out, _, err := runErr(repoRoot(t), nil, "git", "describe", "--tags", "--always", "--dirty")
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(out)
}

// gunzipLen is the uncompressed length of gzip data.
func gunzipLen(b []byte) (int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, zr)
	return int(n), err
}
