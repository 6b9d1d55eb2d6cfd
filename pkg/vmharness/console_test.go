package vmharness

import (
	"reflect"
	"testing"
)

func TestCleanLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"crlf", "hello\r\n", "hello"},
		{"bare cr", "50%\r100%\r\n", "50%100%"},
		{"seabios prefix", "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r", "SeaBIOS (version 1.16.2)"},
		{"glued kernel line", "Booting from ROM..\x1bc\x1b[?7l\x1b[2J[    1.2] x", "Booting from ROM..[    1.2] x"},
		{"colours", "\x1b[1;31mFAIL\x1b[0m: x", "FAIL: x"},
		{"osc bel", "\x1b]0;title\x07text", "text"},
		{"osc st", "\x1b]2;t\x1b\\text", "text"},
		{"charset", "\x1b(Bplain", "plain"},
		{"tab kept", "a\tb", "a\tb"},
		{"controls dropped", "a\x00b\x07c\x7f", "abc"},
		{"lone esc at end", "abc\x1b", "abc"},
		{"unfinished csi", "abc\x1b[12", "abc"},
		{"utf8 kept", "grüße", "grüße"},
	} {
		if got := cleanLine(tc.in); got != tc.want {
			t.Errorf("%s: cleanLine(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestParseEndMarker(t *testing.T) {
	const nonce = "0123456789abcdef"
	for _, tc := range []struct {
		line   string
		status int
		ok     bool
	}{
		{"TUNNELD-VM-END 0123456789abcdef status=0", 0, true},
		{"TUNNELD-VM-END 0123456789abcdef status=1", 1, true},
		{"TUNNELD-VM-END 0123456789abcdef status=255", 255, true},
		{"[    2.1] veth: x TUNNELD-VM-END 0123456789abcdef status=3", 3, true},
		{"TUNNELD-VM-END 0123456789abcdef status=0 trailing", 0, true},
		{"TUNNELD-VM-END ffffffffffffffff status=0", 0, false}, // another run's nonce
		{"TUNNELD-VM-END 0123456789abcdef status=", 0, false},
		{"TUNNELD-VM-END 0123456789abcdef status=x", 0, false},
		{"TUNNELD-VM-END 0123456789abcdef status=12345", 0, false},
		{"TUNNELD-VM-BEGIN 0123456789abcdef", 0, false},
		{"", 0, false},
	} {
		st, ok := parseEndMarker(tc.line, nonce)
		if ok != tc.ok || st != tc.status {
			t.Errorf("parseEndMarker(%q) = %d, %v; want %d, %v", tc.line, st, ok, tc.status, tc.ok)
		}
	}
	if !hasBeginMarker("TUNNELD-VM-BEGIN 0123456789abcdef 6.1.0-56-cloud-amd64", nonce) {
		t.Error("begin marker not found")
	}
	if hasBeginMarker("TUNNELD-VM-BEGIN 1123456789abcdef 6.1.0", nonce) {
		t.Error("begin marker with another nonce accepted")
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(3)
	if got := tb.get(); len(got) != 0 {
		t.Fatalf("empty tail = %q", got)
	}
	tb.add("a")
	tb.add("b")
	if got, want := tb.get(), []string{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	for _, l := range []string{"c", "d", "e"} {
		tb.add(l)
	}
	if got, want := tb.get(), []string{"c", "d", "e"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	tb.add("f")
	if got, want := tb.get(), []string{"d", "e", "f"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tail = %q, want %q", got, want)
	}
}
