package linux

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// tunneldSysctl reports whether tunneld can ever set the sysctl p (a
// path under /proc/sys), and so whether its sysctl record may name it:
// ip_forward and IPv6 forwarding (global.ip_forward, ipv6_forward), the
// sysctls the kernel copies those onto (model.SysctlLeader: each
// interface's forwarding, and net.ipv4.conf.all.accept_redirects), and
// an interface's proxy_arp (global.proxy_arp), the interface's part a
// name the kernel takes for a device. A record names only these unless
// someone else wrote it: a tester's forged sysctl.json had down, and the
// daemon's start, write kernel.hostname and net.ipv4.tcp_syncookies as
// their "originals".
func tunneldSysctl(p string, e kernel.SysctlEntry) bool {
	if p == model.IPForward || p == model.IPv6Forward {
		return true
	}
	dev := model.SysctlDevice(p)
	if dev == "" || !validDevName(dev) {
		return false
	}
	if dev == "all" || dev == "default" {
		// No device's: tunneld records no index for these, and one
		// would move the entry to a device's path (Rekey).
		if e.Index != 0 {
			return false
		}
	}
	if model.SysctlLeader(p) != "" {
		return true
	}
	return strings.HasPrefix(p, "net/ipv4/conf/") && strings.HasSuffix(p, "/proxy_arp") && dev != "all" && dev != "default"
}

// validDevName reports whether the kernel takes s for a device's name
// (its dev_valid_name): 1 to 15 bytes, not "." or "..", without '/', ':'
// or ASCII whitespace. The names tunneld's configuration takes are
// narrower, but a device renamed, or one whose forwarding the kernel
// copied, is recorded under the name it has.
func validDevName(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n\v\f\r")
}

// notOurs says who writes a record's entry tunneld never wrote, in the
// warnings of the records' readers.
const notOurs = "(written by hand, or by someone who can write the state directory)"

// dropForeignSysctls removes from m the entries of sysctls tunneld never
// sets (tunneldSysctl) and returns their paths, sorted (m is a map: the
// warnings come in their order).
func dropForeignSysctls(m kernel.SysctlRecord) []string {
	var dropped []string
	for p, e := range m {
		if !tunneldSysctl(p, e) {
			delete(m, p)
			dropped = append(dropped, p)
		}
	}
	slices.Sort(dropped)
	return dropped
}

// warnForeignSysctls adds the warning (Inputs.Warnings) for each sysctl
// of dropped (dropForeignSysctls) that the record at path named.
func (k *Kernel) warnForeignSysctls(path string, dropped []string) {
	for _, p := range dropped {
		k.warnings = append(k.warnings, fmt.Sprintf("state record %s names sysctl %s, which tunneld never sets: "+
			"not tunneld's doing "+notOurs+"; dropped from the record, and the sysctl left alone",
			path, shownName(model.SysctlName(p))))
	}
}

// shownName is s as a message shows it: quoted, its control bytes
// escaped, when it is not printable as it is (a name from a record
// someone else wrote).
func shownName(s string) string {
	if q := strconv.QuoteToGraphic(s); q[1:len(q)-1] != s || s == "" || strings.Contains(s, " ") {
		return q
	}
	return s
}
