package linux

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// TestSysctlRecordFormat: the record is written byte for byte as
// encoding/json writes it, and read back; a record older versions wrote
// (the originals alone, as an object of strings, in any JSON layout) is
// read as entries without ours.
func TestSysctlRecordFormat(t *testing.T) {
	k := &Kernel{opts: Options{StateDir: t.TempDir()}}
	path := filepath.Join(k.opts.StateDir, sysctlFile)
	for _, m := range []kernel.SysctlRecord{
		{"net/ipv4/ip_forward": {Original: "0", Ours: []string{"1"}}},
		{"net/ipv4/ip_forward": {Original: "1", Ours: []string{"0", "1"}}, "net/ipv6/conf/all/forwarding": {Original: "0"}, "net/ipv4/conf/moe/proxy_arp": {Original: "2", Ours: []string{"0"}}},
		{"net/ipv4/conf/a<b>&c/proxy_arp": {Original: "\"\\\t\u2028\x01", Ours: []string{"é😀"}}, "net/ipv4/conf/é😀/proxy_arp": {}},
		{"net/ipv4/conf/lan/proxy_arp": {Original: "0", Ours: []string{"1"}, Index: 7}, "net/ipv6/conf/wan/forwarding": {Original: "1", Index: 2147483647}},
	} {
		if err := k.saveOriginals(m); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		want, _ := json.MarshalIndent(m, "", "  ")
		if diff := cmp.Diff(string(want)+"\n", string(got)); diff != "" {
			t.Errorf("record (-want +got):\n%s", diff)
		}
		back, _, err := k.readOriginals()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
	}
	for in, want := range map[string]kernel.SysctlRecord{
		"{}": {},
		" \r\n\t{ \"net/ipv4/ip_forward\" :\t\"1\" , \"net\\/ipv4\\/conf\\/b\\u00e9\\ud83d\\ude00\\/proxy_arp\":\"\\n\" }\n": {"net/ipv4/ip_forward": {Original: "1"}, "net/ipv4/conf/bé😀/proxy_arp": {Original: "\n"}},
		`{"net/ipv4/ip_forward":"1","net/ipv4/ip_forward":"2","net/ipv6/conf/all/forwarding":null}`:                          {"net/ipv4/ip_forward": {Original: "2"}, "net/ipv6/conf/all/forwarding": {}},
		`{"net/ipv4/ip_forward": "0", "net/ipv4/conf/lan/forwarding": "1"}`:                                                  {"net/ipv4/ip_forward": {Original: "0"}, "net/ipv4/conf/lan/forwarding": {Original: "1"}},
		`{"net/ipv4/ip_forward":{"original":"1","ours":["0","2"]},"net/ipv6/conf/all/forwarding":{"original":"0"}}`:          {"net/ipv4/ip_forward": {Original: "1", Ours: []string{"0", "2"}}, "net/ipv6/conf/all/forwarding": {Original: "0"}},
	} {
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		got, _, err := k.readOriginals()
		if diff := cmp.Diff(want, got); err != nil || diff != "" {
			t.Errorf("originals of %q: %v (-want +got):\n%s", in, err, diff)
		}
	}
	for _, in := range []string{"", "{", `{"a":1}`, `{"a":"1"} x`, `["a"]`, `{"a":"1",}`, `{"a":"1","b":{"original":"0"}}`, `{"a":{"ours":"1"}}`} {
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := k.readOriginals(); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
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

// TestInputSysctls: the sysctls read as inputs are read from the sysctl
// tree, trimmed; one that is not there (its device is gone) is left out,
// and none asked for gives no map.
func TestInputSysctls(t *testing.T) {
	k := &Kernel{opts: Options{ProcSys: t.TempDir()}}
	dir := filepath.Join(k.opts.ProcSys, "net/ipv6/conf/wan")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accept_ra"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := k.inputSysctls([]string{"net/ipv6/conf/wan/accept_ra", "net/ipv6/conf/gone/accept_ra"})
	if diff := cmp.Diff(map[string]string{"net/ipv6/conf/wan/accept_ra": "1"}, got); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	if got := k.inputSysctls(nil); got != nil {
		t.Errorf("inputs of none: %v, want nil", got)
	}
}

// copiesBefore is copiesOf as it was with os.ReadDir, for
// TestCopiesOf.
func copiesBefore(k *Kernel, p string) []string {
	var family string
	switch p {
	case model.IPForward:
		family = "ipv4"
	case model.IPv6Forward:
		family = "ipv6"
	default:
		return nil
	}
	dirs, _ := os.ReadDir(filepath.Join(k.opts.ProcSys, "net", family, "conf"))
	var out []string
	for _, d := range dirs {
		for _, name := range []string{"forwarding", "accept_redirects"} {
			f := "net/" + family + "/conf/" + d.Name() + "/" + name
			if model.SysctlLeader(f) == p {
				out = append(out, f)
			}
		}
	}
	return out
}

// TestCopiesOf: the sysctls a forwarding write overwrites are those of
// every device directory, in the order os.ReadDir gave them.
func TestCopiesOf(t *testing.T) {
	k := &Kernel{opts: Options{ProcSys: t.TempDir()}}
	paths := []string{model.IPForward, model.IPv6Forward, "net/ipv4/conf/all/rp_filter", ""}
	check := func(what string) {
		t.Helper()
		for _, p := range paths {
			if diff := cmp.Diff(copiesBefore(k, p), k.copiesOf(p)); diff != "" {
				t.Errorf("%s: copies of %q (-os.ReadDir +got):\n%s", what, p, diff)
			}
		}
	}
	check("no conf directories")
	for _, dev := range []string{"wan", "all", "lo", "default", "eth0", "br-lan", "eth0.2", "Moe", "tun10", "tun9", "é"} {
		for _, fam := range []string{"ipv4", "ipv6"} {
			if err := os.MkdirAll(filepath.Join(k.opts.ProcSys, "net", fam, "conf", dev), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("devices")
	want := []string{"net/ipv4/conf/Moe/forwarding", "net/ipv4/conf/all/accept_redirects", "net/ipv4/conf/br-lan/forwarding",
		"net/ipv4/conf/default/forwarding", "net/ipv4/conf/eth0/forwarding", "net/ipv4/conf/eth0.2/forwarding",
		"net/ipv4/conf/lo/forwarding", "net/ipv4/conf/tun10/forwarding", "net/ipv4/conf/tun9/forwarding",
		"net/ipv4/conf/wan/forwarding", "net/ipv4/conf/é/forwarding"}
	if diff := cmp.Diff(want, k.copiesOf(model.IPForward)); diff != "" {
		t.Errorf("copies of ip_forward (-want +got):\n%s", diff)
	}
}

// TestSysctlRecordFull: with a state directory that cannot take the
// record (a full tmpfs), a sysctl is not written and its write fails,
// in every round, where a tester's second round wrote it, its original
// in memory alone, without a word; no temporary file is left; once the
// record can be written the sysctl is recorded and written. A value put
// back is put back all the same, the record's failure said after the
// plan's last sysctl (kernel.RecordError), and the record is written
// again once it can be (KeepRecords).
func TestSysctlRecordFull(t *testing.T) {
	const lan, wan = "net/ipv4/conf/lan0/proxy_arp", "net/ipv4/conf/wan0/proxy_arp"
	proc, dir := t.TempDir(), t.TempDir()
	for _, p := range []string{lan, wan} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(proc, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, p), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k := &Kernel{opts: Options{StateDir: dir, ProcSys: proc}}
	full := false
	k.writeRecord = func(f *os.File, data []byte) error {
		if full {
			// As a full tmpfs does: the file made, empty.
			return &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return writeAll(f, data)
	}
	none := func(string) uint32 { return 0 }
	restore := func(p string) plan.Op {
		return plan.Op{Kind: plan.SysctlRestore, Sysctl: &model.Sysctl{Path: p, Value: "1", Original: "0", Ours: []string{"1"}}}
	}
	lanRecorded := kernel.SysctlEntry{Original: "0", Ours: []string{"1"}}
	for _, step := range []struct {
		name    string
		full    bool
		do      func() error
		wantErr string // in the error; "" for none
		record  bool   // a kernel.RecordError
		values  map[string]string
		file    kernel.SysctlRecord
	}{
		{"lan0 set", false, func() error { return k.setSysctl(lan, "1", none) }, "", false,
			map[string]string{lan: "1", wan: "0"}, kernel.SysctlRecord{lan: lanRecorded}},
		{"wan0 set, full", true, func() error { return k.setSysctl(wan, "1", none) }, "not written: its value before tunneld, which down puts back, could not be recorded (write " + filepath.Join(dir, sysctlFile) + ".tmp: no space left on device)", false,
			map[string]string{lan: "1", wan: "0"}, kernel.SysctlRecord{lan: lanRecorded}},
		{"wan0 set again, full", true, func() error { return k.setSysctl(wan, "1", none) }, "no space left on device", false,
			map[string]string{lan: "1", wan: "0"}, kernel.SysctlRecord{lan: lanRecorded}},
		{"wan0 set, space back", false, func() error { return k.setSysctl(wan, "1", none) }, "", false,
			map[string]string{lan: "1", wan: "1"}, kernel.SysctlRecord{lan: lanRecorded, wan: {Original: "0", Ours: []string{"1"}}}},
		{"lan0 put back, full", true, func() error {
			ops := []plan.Op{restore(lan)}
			if err := k.restoreSysctl(ops[0], nil); err != nil {
				return err
			}
			var ae *kernel.ApplyError
			if i, err := k.unsavedRecord(ops); i >= 0 {
				kernel.Collect(&ae, ops[i], err)
				return ae
			}
			return nil
		}, "sysctl net.ipv4.conf.lan0.proxy_arp: put back in the kernel, but the state record could not be updated", true,
			map[string]string{lan: "0", wan: "1"}, kernel.SysctlRecord{lan: lanRecorded, wan: {Original: "0", Ours: []string{"1"}}}},
		{"kept, space back", false, func() error { k.KeepRecords(); return nil }, "", false,
			map[string]string{lan: "0", wan: "1"}, kernel.SysctlRecord{wan: {Original: "0", Ours: []string{"1"}}}},
	} {
		full = step.full
		err := step.do()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if step.wantErr == "" && err != nil || step.wantErr != "" && !strings.Contains(got, step.wantErr) {
			t.Errorf("%s: error %q, want %q in it", step.name, got, step.wantErr)
		}
		if kernel.OnlyRecords(err) != step.record {
			t.Errorf("%s: only the record's failure: %v, want %v", step.name, !step.record, step.record)
		}
		values := map[string]string{}
		for p := range step.values {
			values[p], _ = k.readSysctl(p)
		}
		if diff := cmp.Diff(step.values, values); diff != "" {
			t.Errorf("%s: sysctls (-want +got):\n%s", step.name, diff)
		}
		file, _, err := k.readOriginals()
		if diff := cmp.Diff(step.file, file); err != nil || diff != "" {
			t.Errorf("%s: record file: %v (-want +got):\n%s", step.name, err, diff)
		}
		if _, err := os.Stat(filepath.Join(dir, sysctlFile+".tmp")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: temporary file left: %v", step.name, err)
		}
	}
}
