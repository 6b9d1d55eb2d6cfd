package minijson

import (
	"cmp"
	"fmt"
	"reflect"
	"strings"
)

// field is an exported struct field as JSON names it.
type field struct {
	name                string
	index               int
	omitEmpty, omitZero bool
}

// fieldsOf lists t's fields the way encoding/json sees them, or says why
// t has one minijson cannot treat the same way.
func fieldsOf(t reflect.Type) ([]field, error) {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, fmt.Errorf("minijson: embedded field %s in %s unsupported", sf.Name, t)
		}
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := field{name: cmp.Or(name, sf.Name), index: i}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
			default:
				return nil, fmt.Errorf("minijson: tag option %q of %s.%s unsupported", o, t, sf.Name)
			}
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// omitted reports whether the field's tags leave its value v out:
// omitempty a false, 0, "", nil or empty value, omitzero a zero one (as its
// IsZero method says, if it has one).
func (f field) omitted(v reflect.Value) bool {
	k := v.Kind()
	empty := k != reflect.Struct && v.IsZero() || (k == reflect.Map || k == reflect.Slice) && v.Len() == 0
	zero := v.IsZero()
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok && k != reflect.Interface && (k != reflect.Pointer || !zero) {
		zero = z.IsZero() // the method decides, but a nil pointer is zero
	}
	return f.omitEmpty && empty || f.omitZero && zero
}

// lookup returns the index of the field an object key names: the exact
// name, else one equal under case folding (as encoding/json matches), else -1.
func lookup(fs []field, key string) int {
	folded := -1
	for _, f := range fs {
		if f.name == key {
			return f.index
		}
		if folded < 0 && strings.EqualFold(f.name, key) {
			folded = f.index
		}
	}
	return folded
}
