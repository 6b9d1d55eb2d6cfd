package nlattr

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attr is one attribute of type typ (flags included) with payload v,
// padded to 4 bytes.
func attr(typ uint16, v ...byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// TestNext: each whole attribute in turn, its flags masked and its
// padding skipped; a header too short, a length under the header's or
// past the run's end is no attribute. The last attribute's padding may
// be missing.
func TestNext(t *testing.T) {
	type got struct {
		Typ  uint16
		V    []byte
		Rest []byte
		OK   bool
	}
	unpadded := attr(3, 'x')[:5]
	for _, tt := range []struct {
		name string
		in   []byte
		want got
	}{
		{"one, padded", cat(attr(1, 'a', 'b'), attr(2)), got{1, []byte("ab"), attr(2), true}},
		{"nested flag", attr(0x8000|7, 1, 2, 3, 4), got{7, []byte{1, 2, 3, 4}, []byte{}, true}},
		{"byte-order flag", attr(0x4000 | 9), got{9, []byte{}, []byte{}, true}},
		{"last unpadded", unpadded, got{3, []byte("x"), []byte{}, true}},
		{"short header", []byte{8, 0, 1}, got{}},
		{"length under the header", []byte{3, 0, 1, 0}, got{}},
		{"length past the end", []byte{12, 0, 1, 0, 0, 0, 0, 0}, got{}},
		{"empty", nil, got{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var g got
			g.Typ, g.V, g.Rest, g.OK = Next(tt.in)
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFind: the first attribute of the type, flags aside; none past a
// malformed one.
func TestFind(t *testing.T) {
	run := cat(attr(1, 'a'), attr(0x8000|2, 'b'), attr(2, 'c'))
	for _, tt := range []struct {
		name string
		in   []byte
		typ  uint16
		want []byte
		ok   bool
	}{
		{"first", run, 1, []byte("a"), true},
		{"flagged, first of two", run, 2, []byte("b"), true},
		{"none", run, 5, nil, false},
		{"behind a malformed one", cat([]byte{2, 0, 1, 0}, attr(1, 'a')), 1, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := Find(tt.in, tt.typ)
			if diff := cmp.Diff(tt.want, v); diff != "" || ok != tt.ok {
				t.Errorf("Find: %v, want %v (-want +got):\n%s", ok, tt.ok, diff)
			}
		})
	}
}
