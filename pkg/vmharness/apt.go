package vmharness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// debPackage is the part of an `apt-cache show` record the harness uses.
type debPackage struct {
	Name     string
	Version  string
	Arch     string
	Filename string // pool path; its base name names the cached .deb
	SHA256   string
	Size     int64
}

// debFile is the name the package's .deb has in the cache.
func (p debPackage) debFile() string { return filepath.Base(p.Filename) }

// parseAptDepends returns the versioned kernel package that the metapackage
// meta depends on, from the output of `apt-cache depends META:ARCH`. The
// architecture qualifier and the <> of virtual packages are removed.
func parseAptDepends(out, meta string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "|")
		dep, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		name := strings.Trim(strings.TrimSpace(dep), "<>")
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
		if strings.HasPrefix(name, "linux-image-") && name != meta && kernelVersionOf(name) != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("vmharness: no versioned linux-image package among the dependencies of %s", meta)
}

// kernelVersionOf returns the uname -r string of a versioned kernel package
// ("linux-image-6.1.0-56-cloud-amd64" → "6.1.0-56-cloud-amd64"), or "" if
// name has no version number.
func kernelVersionOf(name string) string {
	v := strings.TrimPrefix(name, "linux-image-")
	if v == name || v == "" || v[0] < '0' || v[0] > '9' {
		return ""
	}
	return v
}

// parseAptShow reads the package records of `apt-cache show` output, in
// order.
func parseAptShow(out string) ([]debPackage, error) {
	var pkgs []debPackage
	var p debPackage
	end := func() error {
		if p == (debPackage{}) {
			return nil
		}
		if p.Name == "" || p.Version == "" || p.Filename == "" {
			return fmt.Errorf("vmharness: incomplete package record in apt-cache show output")
		}
		pkgs = append(pkgs, p)
		p = debPackage{}
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if err := end(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Package":
			p.Name = val
		case "Version":
			p.Version = val
		case "Architecture":
			p.Arch = val
		case "Filename":
			p.Filename = val
		case "SHA256":
			p.SHA256 = strings.ToLower(val)
		case "Size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("vmharness: bad Size %q in apt-cache show output", val)
			}
			p.Size = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("vmharness: apt-cache show output has no package record")
	}
	return pkgs, nil
}

// runTool runs a host program and returns its standard output; the error
// carries its standard error.
func runTool(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("vmharness: %s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// checkAptHost makes sure the Debian tools are there and the guest's
// architecture is known to dpkg.
func checkAptHost(ctx context.Context, g guest) error {
	for _, t := range []struct{ bin, pkg string }{
		{"apt-cache", "apt"}, {"apt-get", "apt"}, {"dpkg-deb", "dpkg"}, {"dpkg", "dpkg"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			return &MissingError{What: t.bin + " (a Debian host)", Fix: "apt-get install -y " + t.pkg}
		}
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		return &MissingError{What: "busybox (its depmod builds modules.dep)", Fix: "apt-get install -y busybox-static"}
	}
	native, err := runTool(ctx, "", "dpkg", "--print-architecture")
	if err != nil {
		return err
	}
	if strings.TrimSpace(native) == g.debArch {
		return nil
	}
	foreign, err := runTool(ctx, "", "dpkg", "--print-foreign-architectures")
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(foreign), g.debArch) {
		return &MissingError{
			What: "dpkg architecture " + g.debArch,
			Fix:  "dpkg --add-architecture " + g.debArch + " && apt-get update",
		}
	}
	return nil
}

// aptCache runs apt-cache with its package cache kept in pkgcache (Debian
// container images often disable apt's own, and rebuilding it costs about
// a second per call). Calls are serialised so one builds it for the rest.
func aptCache(ctx context.Context, pkgcache string, args ...string) (string, error) {
	aptMu.Lock()
	defer aptMu.Unlock()
	if pkgcache != "" {
		if err := os.MkdirAll(filepath.Dir(pkgcache), 0o755); err == nil {
			args = append([]string{"-o", "Dir::Cache::pkgcache=" + pkgcache}, args...)
		}
	}
	return runTool(ctx, "", "apt-cache", args...)
}

// resolveKernel asks apt which versioned kernel package the guest's
// metapackage currently depends on.
func resolveKernel(ctx context.Context, g guest, pkgcache string) (string, error) {
	out, err := aptCache(ctx, pkgcache, "depends", g.pkg(g.kernelMeta))
	if err != nil {
		return "", &MissingError{What: "package " + g.pkg(g.kernelMeta) + " in the apt lists", Fix: "apt-get update"}
	}
	return parseAptDepends(out, g.kernelMeta)
}

// showPackages returns apt's candidate records for the (arch-qualified)
// names, in order.
func showPackages(ctx context.Context, pkgcache string, names ...string) ([]debPackage, error) {
	out, err := aptCache(ctx, pkgcache, append([]string{"show", "--no-all-versions"}, names...)...)
	if err != nil {
		return nil, &MissingError{What: "packages " + strings.Join(names, " ") + " in the apt lists", Fix: "apt-get update"}
	}
	pkgs, err := parseAptShow(out)
	if err != nil {
		return nil, err
	}
	if len(pkgs) != len(names) {
		return nil, fmt.Errorf("vmharness: apt-cache show %s gave %d records", strings.Join(names, " "), len(pkgs))
	}
	for i, p := range pkgs {
		if want, _, _ := strings.Cut(names[i], ":"); p.Name != want {
			return nil, fmt.Errorf("vmharness: apt-cache show gave %s where %s was expected", p.Name, want)
		}
	}
	return pkgs, nil
}

// aptMu serialises the apt calls made by one process.
var aptMu sync.Mutex

// fetchDeb returns the path of p's .deb in debDir, downloading it with
// `apt-get download` unless a copy with the right checksum is there.
func fetchDeb(ctx context.Context, debDir string, p debPackage, log io.Writer) (string, error) {
	dst := filepath.Join(debDir, p.debFile())
	if ok, err := checkSHA256(dst, p.SHA256); err == nil && ok {
		return dst, nil
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(debDir, ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads when it can write there.
	_ = os.Chmod(tmp, 0o777)
	fmt.Fprintf(log, "downloading %s:%s %s (%.1f MB)\n", p.Name, p.Arch, p.Version, float64(p.Size)/1e6)
	if _, err := runTool(ctx, tmp, "apt-get", "download", p.Name+":"+p.Arch+"="+p.Version); err != nil {
		return "", err
	}
	got, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil || len(got) != 1 {
		return "", fmt.Errorf("vmharness: apt-get download %s left %d .deb files", p.Name, len(got))
	}
	if ok, err := checkSHA256(got[0], p.SHA256); err != nil || !ok {
		return "", fmt.Errorf("vmharness: downloaded %s does not match apt's SHA256", p.debFile())
	}
	if err := os.Chmod(got[0], 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(got[0], dst); err != nil {
		return "", err
	}
	return dst, nil
}

// checkSHA256 reports whether file exists and hashes to want (any content
// is accepted when want is empty).
func checkSHA256(file, want string) (bool, error) {
	if want == "" {
		f, err := os.Open(file)
		if err != nil {
			return false, err
		}
		return true, f.Close()
	}
	got, err := fileSHA256(file)
	if err != nil {
		return false, err
	}
	return got == want, nil
}

// fileSHA256 is the hex SHA-256 of file's content.
func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extractDeb unpacks a .deb's files into dir with dpkg-deb.
func extractDeb(ctx context.Context, deb, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := runTool(ctx, "", "dpkg-deb", "-x", deb, dir)
	return err
}
