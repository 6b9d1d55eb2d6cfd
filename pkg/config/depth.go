package config

import (
	"fmt"
	"unicode/utf8"
)

// maxNesting is how deep arrays and inline tables may nest in a
// configuration file. tunneld's deepest use is 3 (needNesting); the TOML
// library's memory grows with the square of the depth (a tester's 16 KB
// file of 8 000 nested arrays took 112 MB, one of 100 000 took 15 GB), so
// a file nested deeper is refused before it is decoded.
const maxNesting = 16

// needNesting is the deepest nesting a valid configuration has: tunnel =
// {moe = {address = ["…"]}}, every section written as an inline table.
const needNesting = 3

// tooDeep scans src, a TOML document, once for the nesting of its arrays
// and inline tables, outside strings and comments, and returns the error
// of the first bracket that goes deeper than maxNesting, or nil. It
// allocates nothing until it finds one. Table headers ([a.b], [[a]]) are
// brackets too, two deep at most. Brackets that do not balance are the
// decoder's syntax errors: a closing one too many is not counted.
func tooDeep(name, src string) *Error {
	depth, line, lineStart := 0, 1, 0
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\n':
			line, lineStart = line+1, i+1
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			var nl int
			i, nl, lineStart = skipString(src, i, lineStart)
			line += nl
		case '[', '{':
			if depth++; depth > maxNesting {
				return &Error{File: name, Line: line, Col: 1 + utf8.RuneCountInString(src[lineStart:i]),
					Msg: fmt.Sprintf("nested deeper than %d arrays and inline tables: tunneld's configuration needs at most %d", maxNesting, needNesting)}
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// skipString skips the string whose opening quote is at src[i]: basic
// "…" (with backslash escapes), literal '…', or their multi-line forms
// between three quotes of either kind. It returns the index of the
// string's last byte, the newlines it holds and the start of the line it
// ends on. A one-line
// string ends at the end of its line if it is not closed (the decoder
// says so); a multi-line one at the end of the document.
func skipString(src string, i, lineStart int) (end, newlines, start int) {
	q := src[i]
	multi := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	if multi {
		i += 2
	}
	for i++; i < len(src); i++ {
		switch src[i] {
		case '\\':
			// A backslash escapes in basic strings only; one
			// before a newline goes on to the next line only in a
			// multi-line one.
			if q == '"' && i+1 < len(src) && (multi || src[i+1] != '\n') {
				i++
				if src[i] == '\n' {
					newlines, lineStart = newlines+1, i+1
				}
			}
		case '\n':
			if !multi {
				return i - 1, newlines, lineStart
			}
			newlines, lineStart = newlines+1, i+1
		case q:
			if !multi {
				return i, newlines, lineStart
			}
			if i+2 < len(src) && src[i+1] == q && src[i+2] == q {
				// A multi-line string may end in one or two quotes
				// of its own: """a""""" is `a""`.
				i += 2
				for n := 0; n < 2 && i+1 < len(src) && src[i+1] == q; n++ {
					i++
				}
				return i, newlines, lineStart
			}
		}
	}
	return len(src) - 1, newlines, lineStart
}
