package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tunneld/tunneld/pkg/internal/scaletest"
	"golang.org/x/sys/unix"
)

// TestLoadNotRegular: a path that is no regular file is refused, and a
// FIFO without waiting for a writer (status, reading the file the
// daemon's socket named, hung on one for good: a tester's); a file over
// maxSize is refused without being read whole (a tester's 100 MB file of
// comments took 500 MB).
func TestLoadNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte("[global]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Sparse: the size is what counts, not the bytes written.
	if err := os.Truncate(big, maxSize+1); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want string
		load             func(string) (*Config, error)
	}{
		{"fifo", fifo, fifo + ": is a FIFO, not a regular file: give the path of the configuration file", LoadRegular},
		// Load takes a pipe (check -c /dev/stdin); one without a writer
		// reads as empty, at once.
		{"fifo without a writer", fifo, fifo + ":1:1: the file configures nothing", Load},
		{"directory", dir, dir + ": is a directory, not a regular file: give the path of the configuration file", Load},
		{"device", "/dev/null", "/dev/null: is a device, not a regular file: give the path of the configuration file", LoadRegular},
		{"too big", big, big + ": is " + strconv.Itoa(maxSize+1) + " bytes, more than the 8388608 (8 MiB) a configuration file may have", Load},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := tt.load(tt.path)
				done <- err
			}()
			// Where the FIFO blocks Load, the test fails, then opens
			// it for writing to let Load go.
			select {
			case err := <-done:
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Errorf("%v, want %q…", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Load(%s) blocks", tt.path)
				if f, err := os.OpenFile(tt.path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
		})
	}
}

// TestMaxSizeRoom: the size limit leaves room for what tunneld is meant
// to hold: 10 000 tunnels, each with a table, a route and a rule, the
// scale tests' shape, in half of it (its doc comment says 2.3 MB).
func TestMaxSizeRoom(t *testing.T) {
	if n := len(scaletest.Config(10000, true, true)); n > maxSize/2 || n/100000 != 23 {
		t.Errorf("10 000 tunnels take %d bytes, want 2.3 MB, under %d", n, maxSize/2)
	}
}

// TestLoadPipe: `tunneld check -c /dev/stdin` and `-c <(…)` read a pipe,
// as they did before regular files alone were taken (a tester's).
func TestLoadPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write([]byte("[global]\nfirewall = false\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"lo\"\n"))
		w.Close()
	}()
	c, err := Load("/dev/fd/" + strconv.Itoa(int(r.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 1 {
		t.Errorf("routes %+v, want the one piped", c.Routes)
	}
}
