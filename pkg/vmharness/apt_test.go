package vmharness

import "testing"

func TestParseAptDepends(t *testing.T) {
	for _, tc := range []struct{ name, out, meta, want string }{
		{"amd64", "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", "linux-image-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64"},
		{"qualified", "linux-image-4kc-malta:mipsel\n  Depends: linux-image-6.1.0-50-4kc-malta:mipsel\n", "linux-image-4kc-malta", "linux-image-6.1.0-50-4kc-malta"},
		{"alternatives and virtual", "linux-image-cloud-amd64\n |Depends: <linux-image-6.1.0-9-cloud-amd64>\n    linux-image-6.1.0-9-cloud-amd64-unsigned\n  Depends: linux-image-6.1.0-10-cloud-amd64\n", "linux-image-cloud-amd64", "linux-image-6.1.0-9-cloud-amd64"},
		{"other deps first", "linux-image-cloud-amd64\n  Depends: initramfs-tools\n  Depends: linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n  Recommends: firmware\n", "linux-image-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64"},
	} {
		got, err := parseAptDepends(tc.out, tc.meta)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := parseAptDepends("linux-image-cloud-amd64\n  Depends: linux-base\n", "linux-image-cloud-amd64"); err == nil {
		t.Error("no versioned kernel: want an error")
	}
	if _, err := parseAptDepends("", "x"); err == nil {
		t.Error("empty output: want an error")
	}
}

func TestKernelVersionOf(t *testing.T) {
	for in, want := range map[string]string{
		"linux-image-6.1.0-56-cloud-amd64": "6.1.0-56-cloud-amd64",
		"linux-image-6.1.0-50-4kc-malta":   "6.1.0-50-4kc-malta",
		"linux-image-cloud-amd64":          "",
		"linux-headers-6.1.0-56-amd64":     "",
		"linux-image-":                     "",
	} {
		if got := kernelVersionOf(in); got != want {
			t.Errorf("kernelVersionOf(%q) = %q, want %q", in, got, want)
		}
	}
}

const aptShowTwo = `Package: linux-image-6.1.0-50-4kc-malta
Source: linux-signed
Version: 6.1.176-1
Installed-Size: 180000
Architecture: mipsel
Description: Linux 6.1 for MIPS Malta
 The Linux kernel 6.1 and modules for use on MIPS Malta boards.
 .
 Filename: not-a-field
Filename: pool/main/l/linux/linux-image-6.1.0-50-4kc-malta_6.1.176-1_mipsel.deb
Size: 45381164
SHA256: ABCDEF0123

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Architecture: mipsel
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_mipsel.deb
Size: 907340
SHA256: 3d154a06

`

func TestParseAptShow(t *testing.T) {
	pkgs, err := parseAptShow(aptShowTwo)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("got %d records, want 2", len(pkgs))
	}
	k, b := pkgs[0], pkgs[1]
	if k.Name != "linux-image-6.1.0-50-4kc-malta" || k.Version != "6.1.176-1" || k.Arch != "mipsel" ||
		k.Size != 45381164 || k.SHA256 != "abcdef0123" ||
		k.debFile() != "linux-image-6.1.0-50-4kc-malta_6.1.176-1_mipsel.deb" {
		t.Errorf("kernel record %+v", k)
	}
	if b.Name != "busybox-static" || b.Version != "1:1.35.0-4+deb12u1+b1" || b.debFile() != "busybox-static_1.35.0-4+deb12u1+b1_mipsel.deb" {
		t.Errorf("busybox record %+v", b)
	}
	if _, err := parseAptShow(""); err == nil {
		t.Error("empty output: want an error")
	}
	if _, err := parseAptShow("Package: x\nVersion: 1\n"); err == nil {
		t.Error("record without Filename: want an error")
	}
	if _, err := parseAptShow("Package: x\nVersion: 1\nFilename: a/x.deb\nSize: big\n"); err == nil {
		t.Error("bad Size: want an error")
	}
}
