package vmharness

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitScript(t *testing.T) {
	s := initScript("cafe0123", []string{"ipip", "dummy", "nf_tables"})
	for _, want := range []string{
		"#!/bin/sh\n",
		"mount -t proc proc /proc",
		"mount -t sysfs sysfs /sys",
		"mount -t devtmpfs devtmpfs /dev",
		"--install -s",
		"mount -t tmpfs -o mode=1777 tmpfs /tmp",
		"mount -t tmpfs -o mode=0755 tmpfs /run",
		"ip link set lo up",
		"modprobe ipip 2>/dev/null\n",
		"modprobe dummy numdummies=0 2>/dev/null\n",
		"modprobe nf_tables 2>/dev/null\n",
		`echo "TUNNELD-VM-BEGIN cafe0123 $(uname -r)"`,
		"sh " + guestWorkload + " </dev/null\nrc=$?\n",
		`echo "TUNNELD-VM-END cafe0123 status=$rc"`,
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
	// Modules load before the workload starts, and the marker comes after it.
	if strings.Index(s, "modprobe ipip") > strings.Index(s, "TUNNELD-VM-BEGIN") ||
		strings.Index(s, "sh "+guestWorkload) > strings.Index(s, "TUNNELD-VM-END") {
		t.Error("init script steps out of order")
	}
	// The end marker as the guest prints it must parse.
	if st, ok := parseEndMarker("TUNNELD-VM-END cafe0123 status=0", "cafe0123"); !ok || st != 0 {
		t.Error("marker format and parser disagree")
	}
}

func TestRunArchiveConcatenates(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "x.test")
	if err := os.WriteFile(bin, []byte("\x7fELF..."), 0o755); err != nil {
		t.Fatal(err)
	}
	modRoot := filepath.Join(dir, "root")
	ko := filepath.Join(modRoot, "lib/modules/6.1.0-1-test/kernel/net/ipv4/ipip.ko")
	if err := os.MkdirAll(filepath.Dir(ko), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ko, []byte("ko"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeBaseArchive(&buf, bin, modRoot); err != nil { // any file stands in for busybox
		t.Fatal(err)
	}
	if err := writeRunArchive(&buf, "#!/bin/sh\n", "true\n", []File{{Host: bin, Guest: "/opt/t/x.test"}}); err != nil {
		t.Fatal(err)
	}
	raw := gunzipAll(t, buf.Bytes())
	base, rest := readNewc(t, raw)
	run, rest := readNewc(t, rest)
	if len(rest) != 0 {
		t.Errorf("%d bytes after the second archive", len(rest))
	}
	names := func(es []cpioEntry) map[string]cpioEntry {
		m := map[string]cpioEntry{}
		for _, e := range es {
			m[e.name] = e
		}
		return m
	}
	b, r := names(base), names(run)
	for _, want := range []string{"dev/console", "bin/busybox", "bin/sh", "sbin/modprobe", "etc/hosts",
		"lib/modules/6.1.0-1-test/kernel/net/ipv4/ipip.ko", "tmp", "proc", "sys", "run"} {
		if _, ok := b[want]; !ok {
			t.Errorf("base archive lacks %s", want)
		}
	}
	if !strings.Contains(b["etc/hosts"].data, "localhost") {
		t.Errorf("/etc/hosts = %q", b["etc/hosts"].data)
	}
	if e := r["init"]; e.mode != 0o100755 || e.data != "#!/bin/sh\n" {
		t.Errorf("init entry %+v", e)
	}
	if e := r[strings.TrimPrefix(guestWorkload, "/")]; e.data != "true\n" {
		t.Errorf("workload entry %+v", e)
	}
	if e := r["opt/t/x.test"]; e.mode != 0o100755 || e.data != "\x7fELF..." {
		t.Errorf("test binary entry %+v", e)
	}
	if _, ok := r["opt/t"]; !ok {
		t.Error("parent directory of the test binary missing")
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkFiles([]File{{Host: f, Guest: "/root/f"}}); err != nil {
		t.Errorf("valid file rejected: %v", err)
	}
	for _, bad := range []File{
		{Host: f, Guest: "root/f"},
		{Host: f, Guest: "/init"},
		{Host: f, Guest: "/bin/busybox"},
		{Host: filepath.Join(dir, "missing"), Guest: "/x"},
		{Host: dir, Guest: "/x"},
		{Host: "", Guest: "/x"},
	} {
		if err := checkFiles([]File{bad}); err == nil {
			t.Errorf("checkFiles(%+v) accepted", bad)
		}
	}
}
