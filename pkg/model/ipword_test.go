package model

import "testing"

// TestLinkArg: a device name ip would read as one of its words, or a
// prefix of one, follows the keyword dev; others stand alone.
func TestLinkArg(t *testing.T) {
	for name, want := range map[string]string{
		"t": "dev t", "tx": "dev tx", "a": "dev a", "d": "dev d", "up": "dev up", "dev": "dev dev",
		"moe": "moe", "lo": "lo", "t1": "t1", "Moe": "Moe", "tun0": "tun0", "wan": "wan", "gre": "gre",
	} {
		if got := LinkArg(name); got != want {
			t.Errorf("LinkArg(%q) = %q, want %q", name, got, want)
		}
	}
}
