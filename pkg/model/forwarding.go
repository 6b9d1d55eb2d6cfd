package model

import "strings"

// Forwarding sysctls the kernel copies onto others when they are written.
const (
	// IPForward is net.ipv4.ip_forward (the same value as
	// net.ipv4.conf.all.forwarding). When its value changes the kernel
	// writes it to net.ipv4.conf.IF.forwarding of every interface and of
	// "default", and its opposite to net.ipv4.conf.all.accept_redirects.
	IPForward = "net/ipv4/ip_forward"
	// IPv6Forward is net.ipv6.conf.all.forwarding. Every write, even of
	// the value it has, is copied to net.ipv6.conf.IF.forwarding of every
	// interface and of "default".
	IPv6Forward = "net/ipv6/conf/all/forwarding"
)

// IsForwarding reports whether p is IPForward or IPv6Forward, whose
// writes the kernel copies.
func IsForwarding(p string) bool { return p == IPForward || p == IPv6Forward }

// SysctlLeader returns the forwarding sysctl (IPForward or IPv6Forward)
// whose write makes the kernel overwrite path, or "" when none does.
// tunneld records such a follower's value before it writes the leader, and
// writes it back after it restores the leader.
func SysctlLeader(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) != 5 || parts[0] != "net" || parts[2] != "conf" {
		return ""
	}
	switch {
	case parts[1] == "ipv4" && parts[4] == "forwarding" && parts[3] != "all":
		return IPForward
	case parts[1] == "ipv4" && parts[3] == "all" && parts[4] == "accept_redirects":
		return IPForward
	case parts[1] == "ipv6" && parts[4] == "forwarding" && parts[3] != "all":
		return IPv6Forward
	}
	return ""
}

// SysctlDevice returns the interface a net/ipv*/conf/IF/… sysctl belongs
// to ("all" and "default" included), or "".
func SysctlDevice(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) == 5 && parts[0] == "net" && parts[2] == "conf" {
		return parts[3]
	}
	return ""
}

// WriteCopies reports whether writing v to the forwarding sysctl leader,
// which holds cur, makes the kernel copy it: for IPForward only when the
// value changes, for IPv6Forward always.
func WriteCopies(leader, cur, v string) bool {
	return leader == IPv6Forward || cur != v
}

// CopiedValue is the value the kernel writes to path, a sysctl
// SysctlLeader names a forwarding sysctl of, when it copies the value v
// written to that forwarding sysctl: v, or for
// net.ipv4.conf.all.accept_redirects its opposite.
func CopiedValue(path, v string) string {
	if strings.HasSuffix(path, "/accept_redirects") {
		if v == "0" {
			return "1"
		}
		return "0"
	}
	return v
}
