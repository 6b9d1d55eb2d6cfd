package statelock

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/PID/status's CapEff.
const capNetAdmin = 12

// Process is a process holding the network namespace's lock, as far as
// it is known: from SO_PEERCRED when it listens, from /proc/PID/status
// when readable.
type Process struct {
	// Pid and Uid (its effective uid, -1 when not known).
	Pid, Uid int
	// Comm is its name ("" when /proc/PID/status could not be read).
	Comm string
	// Status: /proc/PID/status was read, and Uid, Comm and NetAdmin are
	// its.
	Status bool
	// NetAdmin: CAP_NET_ADMIN is in its effective set.
	NetAdmin bool
}

// String names the process: "pid 1234 (uid 65534, python3)".
func (p Process) String() string {
	var in []string
	if p.Uid >= 0 {
		in = append(in, "uid "+strconv.Itoa(p.Uid))
	}
	if p.Comm != "" {
		in = append(in, p.Comm)
	}
	if len(in) == 0 {
		return "pid " + strconv.Itoa(p.Pid)
	}
	return fmt.Sprintf("pid %d (%s)", p.Pid, strings.Join(in, ", "))
}

// MayBeTunneld reports whether the process could be a tunneld: one
// changes routes, rules and nftables, which takes CAP_NET_ADMIN or root.
// Not known (its status unread) counts as could.
func (p Process) MayBeTunneld() bool {
	return !p.Status || p.NetAdmin || p.Uid == 0
}

// ReadStatus reads /proc/PID/status; a variable for tests.
var ReadStatus = func(pid int) ([]byte, error) {
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
}

// SocketHolders lists the processes whose descriptors hold an abstract
// unix socket bound to name ("@…"), by its inode in /proc/net/unix (the
// network namespace's) and the processes' /proc/PID/fd links; only those
// whose descriptors this user may read (root: all). A variable for
// tests.
var SocketHolders = func(name string) []int {
	// The calling thread's namespace (/proc/net is the main thread's: a
	// test's thread has one of its own).
	b, err := os.ReadFile("/proc/thread-self/net/unix")
	if err != nil {
		if b, err = os.ReadFile("/proc/net/unix"); err != nil {
			return nil
		}
	}
	inodes := boundInodes(b, name)
	if len(inodes) == 0 {
		return nil
	}
	want := make(map[string]bool, len(inodes))
	for _, ino := range inodes {
		want["socket:["+ino+"]"] = true
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	var pids []int
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err != nil || !want[link] {
			continue
		}
		pid, err := strconv.Atoi(strings.Split(fd, "/")[2])
		if err == nil && (len(pids) == 0 || pids[len(pids)-1] != pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// boundInodes returns the inodes of the sockets /proc/net/unix's
// content b shows bound to name (a listener and the connections it
// accepted, which show its name too).
func boundInodes(b []byte, name string) []string {
	var inodes []string
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(s.Text())
		if len(f) >= 8 && strings.Join(f[7:], " ") == name {
			inodes = append(inodes, f[6])
		}
	}
	return inodes
}

// process reads what /proc/PID/status says of pid; uid is the one
// SO_PEERCRED gave (-1: none), kept when the status cannot be read.
func process(pid, uid int) Process {
	p := Process{Pid: pid, Uid: uid}
	b, err := ReadStatus(pid)
	if err != nil {
		return p
	}
	var name, uids, capEff string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Name":
			name = strings.TrimSpace(v)
		case "Uid":
			uids = v
		case "CapEff":
			capEff = strings.TrimSpace(v)
		}
	}
	// Uid: real, effective, saved, filesystem.
	f := strings.Fields(uids)
	caps, err := strconv.ParseUint(capEff, 16, 64)
	if len(f) < 2 || err != nil {
		return p
	}
	euid, err := strconv.Atoi(f[1])
	if err != nil {
		return p
	}
	return Process{Pid: pid, Uid: euid, Comm: name, Status: true, NetAdmin: caps&(1<<capNetAdmin) != 0}
}
