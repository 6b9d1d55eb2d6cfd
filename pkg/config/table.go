package config

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder collects errors while the raw document is turned into a Config.
type decoder struct {
	file string
	src  string
	pos  positions // scanned on first use: only errors need positions
	errs Errors
	// undecodedTunnels are the tunnels whose mode is missing or wrong:
	// they exist, but are not in the Config.
	undecodedTunnels map[string]bool
	// refusedTables are the names in [tables] whose entry was refused (a
	// number out of range, reserved or already used, a bad name): rules
	// and routes naming them get no "unknown table" besides that error.
	refusedTables map[string]bool
	// filterOptions are the tunnel options given that only the nftables
	// table does (forward = "drop", allowed_sources, mss_clamp = true),
	// as `tunnel "NAME" option`, for the warning with firewall = false.
	filterOptions []string
}

// positions scans the document for the positions of keys and values,
// once, when the first error needs one.
func (d *decoder) positions() positions {
	if d.pos.keys == nil {
		d.pos = scanPositions(d.src)
	}
	return d.pos
}

// where finds the position for path: the value if at is false and it has
// one, else the key; for a missing option, its enclosing table.
func (d *decoder) where(p keyPath, key bool) pos {
	at := d.positions()
	for q := p; ; q = parent(q) {
		if !key {
			if v, ok := at.vals[q]; ok {
				return v
			}
		}
		if k, ok := at.keys[q]; ok {
			return k
		}
		if q == "" {
			return pos{1, 1}
		}
	}
}

func (d *decoder) add(p keyPath, key bool, format string, args ...any) {
	at := d.where(p, key)
	d.errs = append(d.errs, &Error{File: d.file, Line: at.Line, Col: at.Col, Path: string(p), Msg: fmt.Sprintf(format, args...)})
}

// errorf reports a problem with the value at p.
func (d *decoder) errorf(p keyPath, format string, args ...any) { d.add(p, false, format, args...) }

// parent strips the last component of a path, respecting quotes.
func parent(p keyPath) keyPath {
	s := string(p)
	inQuote := false
	cut := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			cut = i
		}
	}
	return keyPath(s[:cut])
}

// table reads one TOML table and remembers which keys were consumed, so
// that the rest can be reported as unknown.
type table struct {
	d    *decoder
	path keyPath
	m    map[string]any
	used map[string]bool
	// hint, when set, is the message for an unknown key that says what
	// to write instead ("" for none: the known keys are listed).
	hint func(key string, v any) string
}

func (d *decoder) table(p keyPath, v any) *table {
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		d.errorf(p, "must be a table, not %s", typeName(v))
	}
	return &table{d: d, path: p, m: m, used: map[string]bool{}}
}

// has reports whether key is present.
func (t *table) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

func (t *table) get(key string) (any, bool) {
	v, ok := t.m[key]
	if ok {
		t.used[key] = true
	}
	return v, ok
}

// at is the path of one of the table's keys.
func (t *table) at(key string) keyPath { return t.path.key(key) }

func (t *table) errorf(key, format string, args ...any) { t.d.errorf(t.at(key), format, args...) }

// str reads a string option.
func (t *table) str(key string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.errorf(key, "must be a string, not %s", typeName(v))
	}
	return s, ok
}

// boolean reads a true/false option, returning def when absent.
func (t *table) boolean(key string, def bool) bool {
	v, ok := t.get(key)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		t.errorf(key, "must be true or false, not %s", typeName(v))
		return def
	}
	return b
}

// integer reads an integer option within [lo, hi].
func (t *table) integer(key string, lo, hi int64) (int64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	return t.d.integer(t.at(key), v, lo, hi)
}

func (d *decoder) integer(p keyPath, v any, lo, hi int64) (int64, bool) {
	n, ok := v.(int64)
	if !ok {
		d.errorf(p, "must be an integer, not %s", typeName(v))
		return 0, false
	}
	if n < lo || n > hi {
		d.errorf(p, "%d is out of range %d–%d", n, lo, hi)
		return 0, false
	}
	return n, true
}

// list reads an option that is a list of strings; like UCI, a single
// string is accepted as a list of one.
func (t *table) list(key string) []listItem {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	p := t.at(key)
	switch v := v.(type) {
	case string:
		return []listItem{{p, v}}
	case []any:
		out := make([]listItem, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				t.d.errorf(p.index(i), "must be a string, not %s", typeName(e))
				continue
			}
			out = append(out, listItem{p.index(i), s})
		}
		return out
	}
	t.errorf(key, "must be a string or a list of strings, not %s", typeName(v))
	return nil
}

// listItem is one string of a list option with its path.
type listItem struct {
	path keyPath
	s    string
}

// done reports every key that was not consumed as unknown.
func (t *table) done(known ...string) {
	var keys []string
	for k := range t.m {
		if !t.used[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		msg := ""
		if t.hint != nil {
			msg = t.hint(k, t.m[k])
		}
		switch s := didYouMean(k, known); {
		case msg != "":
		case s != "":
			msg = "unknown option (did you mean " + s + "?)"
		case len(known) > 0:
			msg = "unknown option (known: " + strings.Join(known, ", ") + ")"
		default:
			msg = "unknown option"
		}
		t.d.add(t.at(k), true, "%s", msg)
	}
}

// sections returns the named sub-tables of a table in name order.
func (t *table) sections(key string) []*table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.errorf(key, "must be a table of named sections ([%s.NAME]), not %s", key, typeName(v))
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]*table, 0, len(names))
	for _, n := range names {
		if _, ok := m[n].(map[string]any); !ok {
			// [tunnel] followed by options: the section's name is missing.
			t.d.errorf(t.at(key).key(n), "%s is not a section: [%s] holds named sections ([%s.NAME]), not options", typeName(m[n]), key, key)
			continue
		}
		out = append(out, t.d.table(t.at(key).key(n), m[n]))
	}
	return out
}

// repeated returns the anonymous sections of an array of tables ([[key]]).
func (t *table) repeated(key string) []*table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	arr, ok := v.([]map[string]any)
	if !ok {
		arr, ok = inlineTables(v)
	}
	if !ok {
		t.errorf(key, "must be repeated sections ([[%s]]), not %s", key, typeName(v))
		return nil
	}
	out := make([]*table, len(arr))
	for i, m := range arr {
		out[i] = t.d.table(t.at(key).index(i), m)
	}
	return out
}

// inlineTables is an array of inline tables (route = [{…}, {…}]), which
// TOML defines as the same as repeated sections.
func inlineTables(v any) ([]map[string]any, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		if out[i], ok = e.(map[string]any); !ok {
			return nil, false
		}
	}
	return out, true
}

// name is the last component of a section's path (its name).
func (t *table) name() string {
	s := string(t.path[len(parent(t.path)):])
	s = strings.TrimPrefix(s, ".")
	if out, ok := unquotePrefix(s); ok {
		return out
	}
	return s
}

// unquotePrefix is the double-quoted Go string literal at the start of s,
// unquoted: what fmt.Sscanf(s, "%q", &out) reads from such an s, without
// linking fmt's scanner (32 KB of the mipsle binary).
func unquotePrefix(s string) (string, bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", false
	}
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", false
	}
	out, err := strconv.Unquote(q)
	return out, err == nil
}

func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		if v == math.Trunc(v) {
			return fmt.Sprintf("the float %.1f", v)
		}
		return fmt.Sprintf("the float %g", v)
	case bool:
		return fmt.Sprintf("%t", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "repeated sections"
	case time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}
