package logfmt

import (
	"strconv"
	"unicode/utf8"
)

// appendString appends s, in Go's double-quoted syntax when it needs
// quoting.
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting reports whether s must be quoted to stay one unambiguous
// key or value: when it is empty, or has a space, '=', '"', an ASCII
// control character, a rune that is not printable or a byte that is not
// UTF-8. The rule is log/slog's TextHandler's: a backslash and DEL alone
// are left unquoted. For runes beyond ASCII, strconv.IsPrint is
// unicode.IsPrint, and no such rune is both a space and printable.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
