// Package filekind names the kind of a file that is not a regular one,
// for the errors about a configuration file or a state record that is
// something else.
package filekind

import "io/fs"

// Of names the kind of file m is, in ls(1)'s words: "a directory", "a
// FIFO", "a socket", "a device", "a symbolic link", else its mode.
func Of(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}
