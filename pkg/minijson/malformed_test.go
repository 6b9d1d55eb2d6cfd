package minijson_test

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/minijson"
)

// TestTruncated: every proper prefix of a value is an error.
func TestTruncated(t *testing.T) {
	for _, tc := range cases {
		for _, indent := range []string{"", "  "} {
			b, err := json.MarshalIndent(tc.v, "", indent)
			if err != nil {
				t.Fatal(err)
			}
			if indent == "" {
				b, _ = json.Marshal(tc.v)
			}
			for n := range len(b) {
				var f daemon.Facts
				var m map[string]string
				if minijson.Unmarshal(b[:n], &f) == nil || minijson.Unmarshal(b[:n], &m) == nil {
					t.Errorf("%s: %q read without an error", tc.name, b[:n])
				}
			}
		}
	}
}

// TestMalformed: what json.Unmarshal rejects, Unmarshal rejects.
func TestMalformed(t *testing.T) {
	for _, in := range []string{
		// wrong types
		`{"Converges":"1"}`, `{"Converges":1.5}`, `{"Converges":1e3}`, `{"Converges":-0.0}`,
		`{"Converges":99999999999999999999}`, `{"Converges":true}`, `{"Converges":{}}`, `{"Converges":[]}`,
		`{"Started":1}`, `{"Started":{}}`, `{"Started":[]}`, `{"Started":true}`, `{"Started":"yesterday"}`,
		`{"Tunnels":{}}`, `{"Tunnels":"x"}`, `{"Tunnels":[1]}`, `{"Tunnels":[{"Up":"yes"}]}`, `{"Tunnels":[{"Up":1}]}`,
		`{"Tunnels":[{"Local":1}]}`, `{"Tunnels":[{"Local":"nonsense"}]}`, `{"Tunnels":[{"Name":false}]}`,
		`{"LastChange":[]}`, `{"LastChange":{"a":1}}`, `{"LastChange":{"a":{}}}`, `{"Notes":[1]}`, `{"Notes":"x"}`,
		`{"Resolved":{"a":"b"}}`, `{"Resolved":{"a":[1]}}`, `[]`, `"x"`, `1`, `true`,
		// bad syntax
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`,
		`{"x":[1,]}`, `{"x":[,1]}`, `{"x":[1 2]}`, `{"x":nul}`, `{"x":nulll}`, `{"x":tru}`, `{"x":True}`, `{"x":undefined}`,
		`{"x":01}`, `{"x":-}`, `{"x":+1}`, `{"x":.5}`, `{"x":5.}`, `{"x":1e}`, `{"x":1e+}`, `{"x":0x1}`, `{"x":NaN}`, `{"x":-Infinity}`,
		`{"x":"\x}`, `{"x":"\u12"}`, `{"x":"\u12g4"}`, `{"x":"\U1234"}`, `{"x":"\'"}`, "{\"x\":\"a\x00\"}", "{\"x\":\"a\nb\"}",
		"{\"x\":\"\x1f\"}", `{"x":"a}`, `{"x":"\"}`, "\x00{}", "{}\x00", "{\u00a0}", "\ufeff{}",
		// trailing garbage
		`{} x`, `{}{}`, `{}}`, `{"Converges":1}]`, `{} 1`, `{},`, `null x`, "{}\n\n{}",
		// too deep
		`{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	} {
		var jf daemon.Facts
		if json.Unmarshal([]byte(in), &jf) == nil {
			t.Errorf("json.Unmarshal(%.40q) = nil: not a malformed case", in)
		}
		var f daemon.Facts
		if err := minijson.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("Unmarshal(%.40q) = nil, want an error", in)
		} else if !strings.HasPrefix(err.Error(), "minijson: ") {
			t.Errorf("Unmarshal(%.40q) = %v", in, err)
		}
	}
}

// TestEdges: what json.Unmarshal accepts at the edges of the grammar,
// Unmarshal reads the same.
func TestEdges(t *testing.T) {
	for _, in := range []string{
		`null`, ` {} `, "\t\r\n{\t\r\n}\t\r\n", `{"Converges":-0}`, `{"Converges":` + strconv.Itoa(math.MinInt) + `}`,
		`{"Converges":null,"Started":null,"Tunnels":null,"LastChange":null}`, `{"Tunnels":[null,{}]}`,
		`{"converges":3,"CONVERGES":4}`, `{"Converges":1,"Converges":2}`, `{"LastChange":{"a":"1","a":"2","b":null}}`,
		`{"Unknown":{"a":[1,-2.5e+3,0.0E-0,true,false,null,"\u0041",{},[]]},"Converges":7}`,
		`{"Notes":["\ud83d\ude00","\ud83d","\ude00","\ud83dx","\ud83d\u0041","\ud83d\ud83d\ude00","\u00e9\u2028\/\b\f\n\r\t\"\\"]}`,
		"{\"Notes\":[\"\xff\xc3(\xed\xa0\x80\",\"\x7f\"]}",
		`{"Started":"2024-02-29T23:59:58.123456789+05:30","Tunnels":[{"Local":"","Remote":"fe80::1%eth0"}]}`,
		`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	} {
		var want, got daemon.Facts
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("json.Unmarshal(%.40q): %v", in, err)
		}
		if err := minijson.Unmarshal([]byte(in), &got); err != nil {
			t.Errorf("Unmarshal(%.40q): %v", in, err)
		}
		if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
			t.Errorf("Unmarshal(%.40q) (-want +got):\n%s", in, diff)
		}
	}
}

// TestUnsupported: types Marshal would write differently from
// encoding/json are errors.
func TestUnsupported(t *testing.T) {
	type embedded struct{ A int }
	for _, v := range []any{
		1.5, []byte("x"), map[int]string{1: "x"}, make(chan int), struct{ embedded }{},
		struct {
			A int `json:",string"`
		}{},
		[1]int{},
	} {
		if b, err := minijson.Marshal(v); err == nil {
			t.Errorf("Marshal(%#v) = %s, want an error", v, b)
		}
	}
}

// FuzzUnmarshal: for any input, Unmarshal into the sysctl record fails
// when json.Unmarshal does, and reads what it reads.
func FuzzUnmarshal(f *testing.F) {
	for _, tc := range cases {
		b, _ := json.MarshalIndent(tc.v, "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`{"a":"\ud83d\ude00\ud800\u0041\udc00\ud800\ud800\udc00","b":null," ":"\u00e9"}`))
	f.Add([]byte(`{"a":"\b\f\n\r\t\"\\\/"} `))
	f.Fuzz(func(t *testing.T, in []byte) {
		var want, got map[string]string
		werr := json.Unmarshal(in, &want)
		gerr := minijson.Unmarshal(in, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: json.Unmarshal: %v, Unmarshal: %v", in, werr, gerr)
		}
		if diff := cmp.Diff(want, got); werr == nil && diff != "" {
			t.Fatalf("%q (-want +got):\n%s", in, diff)
		}
		var jf, mf daemon.Facts
		werr = json.Unmarshal(in, &jf)
		if gerr := minijson.Unmarshal(in, &mf); werr == nil && gerr != nil {
			t.Fatalf("%q: json.Unmarshal into Facts: nil, Unmarshal: %v", in, gerr)
		}
		if diff := cmp.Diff(jf, mf, cmpAddr); werr == nil && diff != "" {
			t.Fatalf("%q (-want +got):\n%s", in, diff)
		}
	})
}
