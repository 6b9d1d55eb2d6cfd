package config

// BurntSushi/toml reports positions for syntax errors only. tunneld wants a
// FILE:LINE:COL for every error, so this file scans the (already valid)
// document once more and records where each key and each value starts.

type pos struct{ Line, Col int }

type positions struct {
	keys map[keyPath]pos // the key, or the [table] header
	vals map[keyPath]pos // the first character of the value
}

type scanner struct {
	r         []rune
	i         int
	line, col int
	p         positions
	aot       map[keyPath]int
}

func scanPositions(src string) positions {
	s := &scanner{
		r: []rune(src), line: 1, col: 1,
		p:   positions{keys: map[keyPath]pos{}, vals: map[keyPath]pos{}},
		aot: map[keyPath]int{},
	}
	s.document()
	return s.p
}

func (s *scanner) eof() bool { return s.i >= len(s.r) }

func (s *scanner) peek() rune {
	if s.eof() {
		return 0
	}
	return s.r[s.i]
}

func (s *scanner) peekN(str string) bool {
	for k, c := range []rune(str) {
		if s.i+k >= len(s.r) || s.r[s.i+k] != c {
			return false
		}
	}
	return true
}

func (s *scanner) next() rune {
	if s.eof() {
		return 0
	}
	c := s.r[s.i]
	s.i++
	if c == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return c
}

func (s *scanner) here() pos { return pos{s.line, s.col} }

func (s *scanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.next()
	}
}

func (s *scanner) skipComment() {
	if s.peek() == '#' {
		for !s.eof() && s.peek() != '\n' {
			s.next()
		}
	}
}

// skipBlank skips whitespace, newlines and comments (inside arrays).
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.next()
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) document() {
	table := keyPath("")
	for !s.eof() {
		start := s.i
		s.skipSpace()
		switch c := s.peek(); c {
		case '\n', '\r':
			s.next()
		case '#':
			s.skipComment()
		case '[':
			at := s.here()
			s.next()
			array := s.peek() == '['
			if array {
				s.next()
			}
			base := keyPath("")
			for _, k := range s.key(']') {
				base = base.key(k)
				// [tunels.moe] defines tunels too: an error about
				// it is on the first header naming it.
				if _, ok := s.p.keys[base]; !ok {
					s.p.keys[base] = at
				}
			}
			for s.peek() == ']' {
				s.next()
			}
			if array {
				n := s.aot[base]
				s.aot[base] = n + 1
				s.p.keys[base] = at
				base = base.index(n)
			}
			table = base
			s.p.keys[table] = at
			s.skipSpace()
			s.skipComment()
		default:
			at := s.here()
			path := table
			for _, k := range s.key('=') {
				path = path.key(k)
			}
			s.p.keys[path] = at
			if s.peek() == '=' {
				s.next()
			}
			s.skipSpace()
			s.value(path)
			s.skipSpace()
			s.skipComment()
		}
		if s.i == start {
			s.next() // never loop without progress
		}
	}
}

// key reads a possibly dotted key up to (not including) end.
func (s *scanner) key(end rune) []string {
	var parts []string
	for !s.eof() {
		s.skipSpace()
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			parts = append(parts, s.quoted())
		case c == end || c == '\n':
			return parts
		default:
			var b []rune
			for c := s.peek(); c != 0 && c != '.' && c != end && c != ' ' && c != '\t' && c != '\n'; c = s.peek() {
				b = append(b, s.next())
			}
			parts = append(parts, string(b))
		}
		s.skipSpace()
		if s.peek() != '.' {
			return parts
		}
		s.next()
	}
	return parts
}

// quoted reads a single-line basic or literal string and returns its
// (unescaped enough for key matching) content.
func (s *scanner) quoted() string {
	q := s.next()
	var b []rune
	for !s.eof() {
		c := s.next()
		switch {
		case c == q:
			return string(b)
		case c == '\\' && q == '"':
			e := s.next()
			switch e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			default:
				b = append(b, e)
			}
		case c == '\n':
			return string(b)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func (s *scanner) value(path keyPath) {
	s.p.vals[path] = s.here()
	switch c := s.peek(); c {
	case '"', '\'':
		triple := string([]rune{c, c, c})
		if s.peekN(triple) {
			for range 3 {
				s.next()
			}
			for !s.eof() && !s.peekN(triple) {
				if s.next() == '\\' && c == '"' {
					s.next()
				}
			}
			for range 3 {
				s.next()
			}
			for s.peek() == c { // up to two quotes may close the content
				s.next()
			}
			return
		}
		s.quoted()
	case '[':
		s.next()
		for n := 0; !s.eof(); n++ {
			s.skipBlank()
			if s.peek() == ']' {
				s.next()
				return
			}
			start := s.i
			s.value(path.index(n))
			s.skipBlank()
			if s.peek() == ',' {
				s.next()
			} else if s.peek() == ']' {
				s.next()
				return
			} else if s.i == start {
				return
			}
		}
	case '{':
		s.next()
		for !s.eof() {
			s.skipSpace()
			if s.peek() == '}' {
				s.next()
				return
			}
			at := s.here()
			p := path
			for _, k := range s.key('=') {
				p = p.key(k)
			}
			s.p.keys[p] = at
			if s.peek() != '=' {
				return
			}
			s.next()
			s.skipSpace()
			s.value(p)
			s.skipSpace()
			if s.peek() == ',' {
				s.next()
			}
		}
	default:
		for c := s.peek(); c != 0 && c != ',' && c != ']' && c != '}' && c != '#' && c != '\n' && c != '\r' && c != ' ' && c != '\t'; c = s.peek() {
			s.next()
		}
	}
}
