package linux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSysctlRecordFormat: the record of originals is written byte for byte
// as encoding/json wrote it (older versions read it), and a record older
// versions wrote, in any JSON layout, is read back.
func TestSysctlRecordFormat(t *testing.T) {
	k := &Kernel{opts: Options{StateDir: t.TempDir()}}
	path := filepath.Join(k.opts.StateDir, sysctlFile)
	for _, m := range []map[string]string{
		{"net/ipv4/ip_forward": "0"},
		{"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "0", "net/ipv4/conf/moe/rp_filter": "2"},
		{"net/ipv4/conf/a<b>&c/rp_filter": "\"\\\t\u2028\x01", "net/ipv4/conf/é😀/x": ""},
	} {
		if err := k.saveOriginals(m); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		want, _ := json.MarshalIndent(m, "", "  ")
		if diff := cmp.Diff(string(want)+"\n", string(got)); diff != "" {
			t.Errorf("record (-want +got):\n%s", diff)
		}
		var old map[string]string
		if err := json.Unmarshal(got, &old); err != nil {
			t.Fatal(err)
		}
		back, err := k.originals()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, map[string]string(back)); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(m, old); diff != "" {
			t.Errorf("read back by encoding/json (-want +got):\n%s", diff)
		}
	}
	for in, want := range map[string]map[string]string{
		"{}": {},
		" \r\n\t{ \"a\" :\t\"1\" , \"b\\u00e9\\ud83d\\ude00\\/\":\"\\n\" }\n": {"a": "1", "bé😀/": "\n"},
		`{"a":"1","a":"2","b":null}`:                                          {"a": "2", "b": ""},
	} {
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := k.originals()
		if diff := cmp.Diff(want, map[string]string(got)); err != nil || diff != "" {
			t.Errorf("originals of %q: %v (-want +got):\n%s", in, err, diff)
		}
	}
	for _, in := range []string{"", "{", `{"a":1}`, `{"a":"1"} x`, `["a"]`, `{"a":"1",}`} {
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := k.originals(); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
			t.Errorf("originals of %q: %v, want an error naming %s", in, err, path)
		}
	}
	if err := k.saveOriginals(nil); err != nil {
		t.Fatal(err)
	}
	if m, err := k.originals(); err != nil || len(m) != 0 {
		t.Errorf("after an empty record: %v, %v", m, err)
	}
}
