package minijson

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest, as in encoding/json.
const maxDepth = 10000

// Unmarshal reads the one JSON value in data (RFC 8259) into what v points
// to, as json.Unmarshal does for the kinds Marshal writes: object keys that
// name no field are skipped; null clears a pointer, slice or map and leaves
// anything else as it was. Invalid JSON, a value of the wrong type and
// anything after the value are errors.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("minijson: unmarshal needs a non-nil pointer")
	}
	d := decoder{data: data}
	if err := d.value(rv.Elem(), 0); err != nil {
		return err
	}
	if d.next(); d.pos < len(d.data) {
		return d.fail("data after the value")
	}
	return nil
}

// decoder reads data from pos on. It reads a value into the zero
// reflect.Value by checking and skipping it.
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("minijson: %s at offset %d", what, d.pos)
}

func (d *decoder) mismatch(v reflect.Value) error {
	return d.fail("value of the wrong type for " + v.Type().String())
}

// at returns the byte at d.pos, 0 at the end.
func (d *decoder) at() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// next skips white space and returns the byte after it, 0 at the end.
func (d *decoder) next() byte {
	for strings.IndexByte(" \t\r\n", d.at()) >= 0 {
		d.pos++
	}
	return d.at()
}

// eat skips lit if the data goes on with it.
func (d *decoder) eat(lit string) bool {
	ok := bytes.HasPrefix(d.data[d.pos:], []byte(lit))
	if ok {
		d.pos += len(lit)
	}
	return ok
}

// value reads the next value into v, at depth arrays and objects deep;
// pointers on the way are allocated.
func (d *decoder) value(v reflect.Value, depth int) error {
	c := d.next()
	for c != 'n' && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.CanAddr() && c != 'n' {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			if c != '"' {
				return d.mismatch(v)
			}
			s, err := d.str()
			if err == nil {
				if err = u.UnmarshalText(s); err != nil {
					err = d.fail(err.Error())
				}
			}
			return err
		}
	}
	k := v.Kind()
	skip := k == reflect.Invalid
	switch {
	case (c == '[' || c == '{') && depth == maxDepth:
		return d.fail("nesting too deep")
	case c == '[' && (skip || k == reflect.Slice):
		return d.array(v, depth+1)
	case c == '{' && (skip || k == reflect.Struct || k == reflect.Map):
		return d.object(v, depth+1)
	case c == '"' && (skip || k == reflect.String):
		s, err := d.str()
		if err == nil && !skip {
			v.SetString(string(s))
		}
		return err
	case d.eat("null"):
		if k == reflect.Pointer || k == reflect.Interface || k == reflect.Map || k == reflect.Slice {
			v.SetZero()
		}
	case (skip || k == reflect.Bool) && (d.eat("true") || d.eat("false")):
		if !skip {
			v.SetBool(c == 't')
		}
	case c == '-' || c >= '0' && c <= '9':
		return d.number(v)
	case !skip && strings.IndexByte(`[{"tf`, c) >= 0:
		return d.mismatch(v)
	case c == 0:
		return d.fail("unexpected end")
	default:
		return d.fail(fmt.Sprintf("unexpected %q", c))
	}
	return nil
}

// number reads -?int frac? exp? into an integer v.
func (d *decoder) number(v reflect.Value) error {
	start := d.pos
	digits := func() bool {
		n := d.pos
		for '0' <= d.at() && d.at() <= '9' {
			d.pos++
		}
		return d.pos > n
	}
	d.eat("-")
	ok := d.eat("0") || digits()
	if ok && d.eat(".") {
		ok = digits()
	}
	if ok && (d.eat("e") || d.eat("E")) {
		_ = d.eat("+") || d.eat("-")
		ok = digits()
	}
	if !ok {
		return d.fail("malformed number")
	}
	lit := string(d.data[start:d.pos])
	switch k := v.Kind(); {
	case k == reflect.Invalid:
		return nil
	case k >= reflect.Int && k <= reflect.Int64:
		n, err := strconv.ParseInt(lit, 10, v.Type().Bits())
		v.SetInt(n)
		if err == nil {
			return nil
		}
	case k >= reflect.Uint && k <= reflect.Uintptr:
		n, err := strconv.ParseUint(lit, 10, v.Type().Bits())
		v.SetUint(n)
		if err == nil {
			return nil
		}
	}
	return d.mismatch(v)
}

func (d *decoder) array(v reflect.Value, depth int) error {
	s := v
	if v.IsValid() {
		s = reflect.MakeSlice(v.Type(), 0, 0)
		defer func() { v.Set(s) }()
	}
	return d.items(']', func() error {
		var elem reflect.Value
		if v.IsValid() {
			s = reflect.Append(s, reflect.Zero(v.Type().Elem()))
			elem = s.Index(s.Len() - 1)
		}
		return d.value(elem, depth)
	})
}

func (d *decoder) object(v reflect.Value, depth int) error {
	var fs []field
	var err error
	switch {
	case v.Kind() == reflect.Struct:
		fs, err = fieldsOf(v.Type())
	case v.Kind() == reflect.Map && v.Type().Key().Kind() != reflect.String:
		err = d.mismatch(v)
	case v.Kind() == reflect.Map && v.IsNil():
		v.Set(reflect.MakeMap(v.Type()))
	}
	if err != nil {
		return err
	}
	return d.items('}', func() error {
		if d.next() != '"' {
			return d.fail("expected a key")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if d.next() != ':' {
			return d.fail("expected :")
		}
		d.pos++
		var elem reflect.Value
		if v.Kind() == reflect.Map {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(string(key))
			elem = reflect.New(v.Type().Elem()).Elem()
			defer v.SetMapIndex(k, elem)
		} else if i := lookup(fs, string(key)); i >= 0 {
			elem = v.Field(i)
		}
		return d.value(elem, depth)
	})
}

// items reads the elements of an array or the members of an object, each
// with item, from the opening bracket (at d.pos) to the closing one.
func (d *decoder) items(close byte, item func() error) error {
	d.pos++
	if d.next() == close {
		d.pos++
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.pos++
		case close:
			d.pos++
			return nil
		default:
			return d.fail("expected , or " + string(close))
		}
	}
}

// str reads a string from its opening quote (at d.pos) and returns it
// unescaped; invalid UTF-8 and lone surrogates become U+FFFD.
func (d *decoder) str() ([]byte, error) {
	var out []byte
	for d.pos++; d.pos < len(d.data); {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return out, nil
		case c < 0x20:
			return nil, d.fail("control character in string")
		case c != '\\':
			r, n := utf8.DecodeRune(d.data[d.pos:])
			out = utf8.AppendRune(out, r)
			d.pos += n
			continue
		}
		d.pos++
		if j := strings.IndexByte(`"\/bfnrt`, d.at()); j >= 0 {
			out = append(out, "\"\\/\b\f\n\r\t"[j])
			d.pos++
			continue
		}
		r, ok := d.hex4()
		if !ok {
			return nil, d.fail("invalid escape")
		}
		if utf16.IsSurrogate(r) {
			// A pair, else U+FFFD: an escape that is not the pair's
			// second half is read again on its own.
			save, high := d.pos, r
			r = utf8.RuneError
			if d.eat("\\") {
				if low, ok := d.hex4(); ok && utf16.DecodeRune(high, low) != utf8.RuneError {
					r, save = utf16.DecodeRune(high, low), d.pos
				}
			}
			d.pos = save
		}
		out = utf8.AppendRune(out, r)
	}
	return nil, d.fail("unexpected end of string")
}

// hex4 reads the u and four hex digits of a \uXXXX escape.
func (d *decoder) hex4() (rune, bool) {
	if d.at() != 'u' || d.pos+5 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos+1:d.pos+5]), 16, 32)
	if err == nil {
		d.pos += 5
	}
	return rune(n), err == nil
}
