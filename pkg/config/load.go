package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// Load reads and validates the configuration at path. Besides the
// file's problems, the Config's Warnings say when the file, a hook, or
// the directory holding either may be written by other users.
func Load(path string) (*Config, error) { return load(path, false) }

// LoadRegular is Load for a path that must name a regular file: status
// reads the file the running daemon's socket names, which may be
// anything a socket in the state directory says (a tester's fake daemon
// named a FIFO, whose writer it may hold open without writing).
func LoadRegular(path string) (*Config, error) { return load(path, true) }

func load(path string, regular bool) (*Config, error) {
	data, fi, err := readFile(path, regular)
	if errors.Is(err, fs.ErrPermission) {
		// The systemd unit runs as a dynamic user, neither the file's
		// owner nor in its group (a tester's root 0600 file, the mode
		// the .ipk ships it in for root's daemon, stopped the unit).
		return nil, fmt.Errorf("%w (tunneld runs as uid %d here, which may not read it: %s)", err, os.Geteuid(), readableHint(path))
	}
	if err != nil {
		return nil, err
	}
	c, d, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	d.writableFiles(c, path, fi)
	return c, nil
}

// readableHint says what makes the file at path, which this process may
// not read, readable to it: the first directory on the way that it may
// not enter (a tester's /etc/tunneld at 0750), or else the file.
func readableHint(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	var dirs []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if unix.Access(dirs[i], unix.X_OK) != nil {
			return "let that user enter the directory, e.g. chmod o+x " + dirs[i] + " under the systemd unit, whose user is a dynamic one"
		}
	}
	return "make it readable by that user, e.g. chmod o+r " + path + " under the systemd unit, whose user is a dynamic one"
}

// Parse validates a configuration held in memory; name is used in error
// positions. On error the result is nil and err is an Errors holding every
// problem found.
func Parse(name string, data []byte) (*Config, error) {
	c, _, err := parse(name, data)
	return c, err
}

// parse is Parse, with the decoder for Load's warnings about the files.
func parse(name string, data []byte) (*Config, *decoder, error) {
	var raw map[string]any
	// A byte-order mark (Windows editors write one) is not part of the
	// document: left in, it would shift every position on line 1 and
	// hide the first section's header from the position scanner.
	src := strings.TrimPrefix(string(data), "\uFEFF")
	if e := tooDeep(name, src); e != nil {
		return nil, nil, Errors{e}
	}
	if _, err := toml.Decode(src, &raw); err != nil {
		return nil, nil, Errors{syntaxError(name, src, err)}
	}
	if len(raw) == 0 {
		// No key and no section: white space and comments only, a
		// file emptied by accident (a full disk, `: > FILE`) or with
		// every line commented out far likelier than the wish to
		// remove everything, which [global] alone says (testers'
		// truncated files removed every tunnel, by apply or reload).
		return nil, nil, Errors{{File: name, Line: 1, Col: 1, Msg: EmptyMessage}}
	}
	d := &decoder{file: name, src: src}
	c := d.config(d.table("", raw))
	if len(d.errs) > 0 {
		d.sort()
		return nil, nil, d.errs
	}
	c.Sum = Sum(data)
	return c, d, nil
}

// EmptyMessage is the error of a file that configures nothing (white
// space and comments only), which every command refuses, and the daemon
// as a reload: taken, it would remove everything tunneld owns.
const EmptyMessage = "the file configures nothing (white space and comments only): refused, as it would remove everything tunneld owns; to remove everything, give a file with its [global] section only, or run tunneld down"

// IsEmpty reports whether err is the refusal of a file that configures
// nothing (EmptyMessage) alone.
func IsEmpty(err error) bool {
	var es Errors
	return errors.As(err, &es) && len(es) == 1 && es[0].Msg == EmptyMessage
}

// Sum is a configuration file's content's FNV-1a 128-bit hash, in hex:
// enough to tell an edited file from the one loaded (it is no defence
// against anyone), and hash/fnv is linked anyway, where crypto/sha256
// would add 196 KB to the mipsle binary.
func Sum(data []byte) string {
	h := fnv.New128a()
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func syntaxError(name, src string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if msg == "" {
			msg = err.Error()
		}
		line, col := pe.Position.Line, max(pe.Position.Col, 1)
		if off := pe.Position.Start; off >= 0 && off <= len(src) {
			// The byte offset is exact; the library's line is one too far
			// when the offending character is the newline itself.
			line = 1 + strings.Count(src[:off], "\n")
			col = 1 + utf8.RuneCountInString(src[strings.LastIndex(src[:off], "\n")+1:off])
		}
		return &Error{File: name, Line: line, Col: col, Msg: "syntax error: " + plainSyntax(strings.TrimSpace(msg))}
	}
	return &Error{File: name, Line: 1, Col: 1, Msg: fmt.Sprintf("syntax error: %v", err)}
}

// The TOML library's message for a key or section given twice is
// dupPrefix + key + dupSuffix.
const (
	dupPrefix = "Key '"
	dupSuffix = "' has already been defined."
)

// plainSyntax words the TOML library's messages as tunneld's own: lower
// case, no closing period, "end of file" for EOF.
func plainSyntax(msg string) string {
	if rest, ok := strings.CutPrefix(msg, dupPrefix); ok {
		if key, ok := strings.CutSuffix(rest, dupSuffix); ok {
			return key + " is defined twice"
		}
	}
	msg = strings.ReplaceAll(msg, "EOF", "end of file")
	msg = strings.TrimSuffix(msg, ".")
	// The library's messages start in ASCII; unicode's case tables are
	// not worth linking for them.
	if msg != "" && 'A' <= msg[0] && msg[0] <= 'Z' {
		msg = string(msg[0]-'A'+'a') + msg[1:]
	}
	return msg
}
