package logfmt

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// timeLayout is RFC 3339 with milliseconds, which the formatting
// truncates: log/slog's TextHandler's time format.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendValue appends v as log/slog's TextHandler writes it: strings
// (quoted when needed), numbers, booleans, durations and times as
// themselves, an encoding.TextMarshaler's text, byte slices always
// quoted, and anything else (errors, Stringers, slices, nil) as fmt's
// %+v, quoted when needed.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uintptr:
		return strconv.AppendUint(b, uint64(v), 10)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 64)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Duration:
		return append(b, v.String()...)
	case time.Time:
		return v.AppendFormat(b, timeLayout)
	case encoding.TextMarshaler:
		return appendText(b, v)
	case []byte:
		return strconv.AppendQuote(b, string(v))
	}
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
		return strconv.AppendQuote(b, string(reflect.ValueOf(v).Bytes()))
	}
	return appendString(b, fmt.Sprintf("%+v", v))
}

// appendText appends m's text. A failure shows as !ERROR:<error>; a
// panic as <nil> for a nil pointer, else as !PANIC: <value>.
func appendText(b []byte, m encoding.TextMarshaler) (out []byte) {
	defer func() {
		if p := recover(); p != nil {
			if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
				out = appendString(b, "<nil>")
				return
			}
			out = appendString(b, fmt.Sprintf("!PANIC: %v", p))
		}
	}()
	text, err := m.MarshalText()
	if err != nil {
		return appendString(b, fmt.Sprintf("!ERROR:%v", err))
	}
	return appendString(b, string(text))
}
