package minijson

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Marshal returns v as compact JSON, the bytes json.Marshal(v) returns.
func Marshal(v any) ([]byte, error) {
	return encode(v, encoder{})
}

// MarshalIndent returns v as JSON with every element on a line of its own,
// indented by indent once per level: the bytes json.MarshalIndent(v, "",
// indent) returns.
func MarshalIndent(v any, indent string) ([]byte, error) {
	return encode(v, encoder{pretty: true, indent: indent})
}

func encode(v any, e encoder) ([]byte, error) {
	if err := e.value(reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// encoder appends JSON to buf.
type encoder struct {
	buf    []byte
	pretty bool
	indent string
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

func (e *encoder) value(v reflect.Value, depth int) error {
	switch k := v.Kind(); {
	case k == reflect.Invalid || (k == reflect.Pointer || k == reflect.Interface || k == reflect.Map || k == reflect.Slice) && v.IsNil():
		e.buf = append(e.buf, "null"...)
	case k != reflect.Pointer && k != reflect.Interface && v.Type().Implements(textMarshaler):
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Errorf("minijson: %w", err)
		}
		e.str(string(b))
	case k == reflect.Pointer || k == reflect.Interface:
		return e.value(v.Elem(), depth)
	case k == reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case k >= reflect.Int && k <= reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case k >= reflect.Uint && k <= reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case k == reflect.String:
		e.str(v.String())
	case k == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8: // []byte would be base64
		e.buf = append(e.buf, '[')
		for i := range v.Len() {
			e.comma(i, depth+1)
			if err := e.value(v.Index(i), depth+1); err != nil {
				return err
			}
		}
		e.end(']', v.Len(), depth)
	case k == reflect.Map && v.Type().Key().Kind() == reflect.String:
		var keys []string
		for it := v.MapRange(); it.Next(); {
			keys = append(keys, it.Key().String())
		}
		slices.Sort(keys)
		key := reflect.New(v.Type().Key()).Elem()
		e.buf = append(e.buf, '{')
		for i, s := range keys {
			e.member(i, s, depth+1)
			key.SetString(s)
			if err := e.value(v.MapIndex(key), depth+1); err != nil {
				return err
			}
		}
		e.end('}', len(keys), depth)
	case k == reflect.Struct:
		fs, err := fieldsOf(v.Type())
		if err != nil {
			return err
		}
		e.buf = append(e.buf, '{')
		n := 0
		for _, f := range fs {
			if fv := v.Field(f.index); !f.omitted(fv) {
				e.member(n, f.name, depth+1)
				n++
				if err := e.value(fv, depth+1); err != nil {
					return err
				}
			}
		}
		e.end('}', n, depth)
	default:
		return fmt.Errorf("minijson: unsupported type %s", v.Type())
	}
	return nil
}

// comma starts the i-th element of an array or object at depth.
func (e *encoder) comma(i, depth int) {
	if i > 0 {
		e.buf = append(e.buf, ',')
	}
	if e.pretty {
		e.buf = append(e.buf, '\n')
		e.buf = append(e.buf, strings.Repeat(e.indent, depth)...)
	}
}

// member starts the i-th member of an object, named key.
func (e *encoder) member(i int, key string, depth int) {
	e.comma(i, depth)
	e.str(key)
	e.buf = append(e.buf, ':')
	if e.pretty {
		e.buf = append(e.buf, ' ')
	}
}

// end closes an array or object of n elements with c.
func (e *encoder) end(c byte, n, depth int) {
	if n > 0 {
		e.comma(0, depth)
	}
	e.buf = append(e.buf, c)
}

// str writes s as a JSON string, escaped as encoding/json escapes it: the
// control characters, the quote and backslash, <, >, & and the line and
// paragraph separators (for HTML and JavaScript); invalid UTF-8 as U+FFFD.
func (e *encoder) str(s string) {
	const hex = "0123456789abcdef"
	e.buf = append(e.buf, '"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch j := strings.IndexRune("\b\f\n\r\t\"\\", r); {
		case r == utf8.RuneError && n == 1:
			e.buf = append(e.buf, `\ufffd`...)
		case j >= 0:
			e.buf = append(e.buf, '\\', "bfnrt\"\\"[j])
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
			e.buf = append(e.buf, '\\', 'u', hex[r>>12], hex[r>>8&15], hex[r>>4&15], hex[r&15])
		default:
			e.buf = append(e.buf, s[i:i+n]...)
		}
		i += n
	}
	e.buf = append(e.buf, '"')
}
