package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/internal/filekind"
)

// maxSize is the largest configuration file tunneld reads, 8 MiB: it is
// read whole and decoded in memory, about five times its size (a
// tester's 100 MB file of comments took 500 MB). 10 000 tunnels, each
// with a table, a route and a rule, take 2.3 MB (scaletest.Config).
const maxSize = 8 << 20

// readFile reads the configuration file at path, of maxSize bytes at
// most, and returns its content and what fstat says of it. It must be a
// regular file, or else (unless regular is set) a pipe or a terminal:
// `tunneld check -c /dev/stdin` and `-c <(…)` read one. It is opened
// without blocking: opening a FIFO for reading waits for a writer, and
// status, which reads the file the daemon's socket names, hung on one
// for good (a tester's); a pipe without a writer reads as empty.
func readFile(path string, regular bool) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	piped := fi.Mode()&fs.ModeNamedPipe != 0 || fi.Mode()&fs.ModeCharDevice != 0
	if !fi.Mode().IsRegular() && (regular || !piped) {
		return nil, nil, fmt.Errorf("%s: is %s, not a regular file: give the path of the configuration file", path, filekind.Of(fi.Mode()))
	}
	if fi.Size() > maxSize {
		return nil, nil, tooBig(path, fi.Size())
	}
	// Limited: the file may grow while it is read.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxSize {
		return nil, nil, tooBig(path, int64(len(data)))
	}
	return data, fi, nil
}

func tooBig(path string, size int64) error {
	return fmt.Errorf("%s: is %d bytes, more than the %d (%d MiB) a configuration file may have (10 000 tunnels, each with a table, a route and a rule, take 2.3 MB): is it the right file?", path, size, maxSize, maxSize>>20)
}
