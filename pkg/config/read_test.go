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
	for _, tt := range []struct{ name, path, want string }{
		{"fifo", fifo, fifo + ": is a FIFO, not a regular file: give the path of the configuration file"},
		{"directory", dir, dir + ": is a directory, not a regular file: give the path of the configuration file"},
		{"device", "/dev/null", "/dev/null: is a device, not a regular file: give the path of the configuration file"},
		{"too big", big, big + ": is " + strconv.Itoa(maxSize+1) + " bytes, more than the 8388608 (8 MiB) a configuration file may have"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Load(tt.path)
				done <- err
			}()
			// Where the FIFO blocks Load, the test fails, then opens
			// it for writing to let Load go.
			select {
			case err := <-done:
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Errorf("Load: %v, want %q…", err, tt.want)
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
