package statelock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// bindOnly binds the namespace's name without listening, as a process
// that only means to keep it does: nobody answers a connection.
func bindOnly(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: NamespaceName}); err != nil {
		t.Fatal(err)
	}
}

// TestForeignHolder: the namespace's lock held by a process that /proc
// shows has no CAP_NET_ADMIN and is not root is gone on without, with a
// warning naming it (a tester's uid 65534 kept apply and run off); one
// that may be a tunneld, or that cannot be identified, still refuses,
// naming it as far as known and how to find it, never "another tunneld"
// for one that did not answer as one. The holder is this process; /proc
// is injected (ReadStatus, SocketHolders).
func TestForeignHolder(t *testing.T) {
	pid := os.Getpid()
	hint := func() string { return "`ss -xap | grep " + strings.TrimPrefix(NamespaceName, "@") + "`" }
	for _, tt := range []struct {
		name string
		// hold takes the name: "listen" (says nothing), "bind" (no
		// listen) or "tunneld" (AcquireNamespace, which answers).
		hold string
		// status is /proc/PID/status ("": unreadable).
		status string
		// noFds: /proc/*/fd shows no holder (a user that is not root).
		noFds bool
		// want is the warning, or the error when wantErr.
		want    func() string
		wantErr bool
	}{
		{name: "listens, no capability", hold: "listen", status: nobodyStatus, want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which has no CAP_NET_ADMIN and so is not a tunneld: going on without it; find it with %s", NamespaceName, pid, hint())
		}},
		{name: "listens, no capability, peer credentials only", hold: "listen", status: nobodyStatus, noFds: true, want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which has no CAP_NET_ADMIN and so is not a tunneld: going on without it; find it with %s", NamespaceName, pid, hint())
		}},
		// Bound, not listening: no tunneld, whoever it is (a tester's
		// service user, which cannot see who, was kept off).
		{name: "bound only, no capability", hold: "bind", status: nobodyStatus, want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which does not listen on it as every tunneld does, and so is not one: going on without it; find it with %s", NamespaceName, pid, hint())
		}},
		{name: "bound only, CAP_NET_ADMIN", hold: "bind", status: strings.Replace(nobodyStatus, "0000000000000000", "0000000000001000", 1), want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which does not listen on it as every tunneld does, and so is not one: going on without it; find it with %s", NamespaceName, pid, hint())
		}},
		{name: "bound only, unknown", hold: "bind", status: nobodyStatus, noFds: true, want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by %s, which does not listen on it as every tunneld does, and so is not one: going on without it; find it with %s", NamespaceName, unknownHolder(), hint())
		}},
		// Its line is no proof: anyone can write one.
		{name: "answers as a tunneld, no capability", hold: "tunneld", status: nobodyStatus, want: func() string {
			return fmt.Sprintf("the network namespace's lock %s is held by pid %d (uid 65534, python3), which has no CAP_NET_ADMIN and so is not a tunneld: going on without it; find it with %s", NamespaceName, pid, hint())
		}},
		{name: "root, does not answer", hold: "listen", status: strings.Replace(rootStatus, "tunneld", "python3", 1), wantErr: true, want: func() string {
			return fmt.Sprintf("network namespace: lock %s is held by pid %d (uid 0, python3), which does not answer as a tunneld does: find it with %s, and stop it or try again when it is gone", NamespaceName, pid, hint())
		}},
		{name: "CAP_NET_ADMIN, not root", hold: "listen", status: strings.Replace(nobodyStatus, "0000000000000000", "0000000000001000", 1), wantErr: true, want: func() string {
			return fmt.Sprintf("network namespace: lock %s is held by pid %d (uid 65534, python3), which does not answer as a tunneld does: find it with %s, and stop it or try again when it is gone", NamespaceName, pid, hint())
		}},
		{name: "status unreadable", hold: "listen", noFds: true, wantErr: true, want: func() string {
			return fmt.Sprintf("network namespace: lock %s is held by pid %d (uid %d), which does not answer as a tunneld does: find it with %s, and stop it or try again when it is gone", NamespaceName, pid, os.Geteuid(), hint())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testNamespaceName(t)
			old, oldFds := ReadStatus, SocketHolders
			t.Cleanup(func() { ReadStatus, SocketHolders = old, oldFds })
			ReadStatus = func(p int) ([]byte, error) {
				if tt.status == "" || p != pid {
					return nil, os.ErrPermission
				}
				return []byte(tt.status), nil
			}
			if tt.noFds {
				SocketHolders = func(string) []int { return nil }
			}
			switch tt.hold {
			case "listen":
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: NamespaceName, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				// Closes what it accepts, as a listener that
				// says nothing: no read waits for its deadline.
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			case "bind":
				bindOnly(t)
			case "tunneld":
				// Taken as root would: its holder is only then
				// found to lack the capability.
				n, _, err := AcquireNamespace("/run/tunneld", "run")
				if err != nil {
					t.Fatal(err)
				}
				defer n.Release()
			}
			n, warning, err := AcquireNamespace("/run/other", "apply")
			defer n.Release()
			if tt.wantErr {
				var he *HeldError
				if !errors.As(err, &he) || n != nil || warning != "" {
					t.Fatalf("AcquireNamespace: %v, %q, %v; want a *HeldError", n, warning, err)
				}
				if diff := cmp.Diff(tt.want(), err.Error()); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil || n != nil {
				t.Fatalf("AcquireNamespace: %v, %v; want no lock and no error", n, err)
			}
			if diff := cmp.Diff(tt.want(), warning); diff != "" {
				t.Errorf("warning (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProcessStatus: what /proc/PID/status says of a holder.
func TestProcessStatus(t *testing.T) {
	for _, tt := range []struct {
		name, status string
		want         Process
		tunneld      bool
	}{
		{"root", rootStatus, Process{Pid: 7, Uid: 0, Comm: "tunneld", Status: true, NetAdmin: true}, true},
		{"nobody", nobodyStatus, Process{Pid: 7, Uid: 65534, Comm: "python3", Status: true}, false},
		// The systemd unit's DynamicUser, with CAP_NET_ADMIN alone.
		{"service user", "Name:\ttunneld\nUid:\t61234\t61234\t61234\t61234\nCapEff:\t0000000000001000\n",
			Process{Pid: 7, Uid: 61234, Comm: "tunneld", Status: true, NetAdmin: true}, true},
		// setuid root: the effective uid counts, not the real one.
		{"effective root", "Name:\tx\nUid:\t1000\t0\t0\t0\nCapEff:\t0000000000000000\n",
			Process{Pid: 7, Uid: 0, Comm: "x", Status: true}, true},
		{"unreadable", "", Process{Pid: 7, Uid: 1000}, true},
		{"no CapEff", "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n", Process{Pid: 7, Uid: 1000}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := ReadStatus
			defer func() { ReadStatus = old }()
			ReadStatus = func(int) ([]byte, error) {
				if tt.status == "" {
					return nil, os.ErrNotExist
				}
				return []byte(tt.status), nil
			}
			got := process(7, 1000)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("process (-want +got):\n%s", diff)
			}
			if got.MayBeTunneld() != tt.tunneld {
				t.Errorf("MayBeTunneld = %v, want %v", got.MayBeTunneld(), tt.tunneld)
			}
		})
	}
}

// TestBoundInodes: the sockets /proc/net/unix shows bound to the name,
// a listener and the connection it accepted; not another name, nor one
// that only starts with it.
func TestBoundInodes(t *testing.T) {
	const unixFile = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31001 @tunneld.lock
0000000000000000: 00000003 00000000 00000000 0001 03 31002 @tunneld.lock
0000000000000000: 00000003 00000000 00000000 0001 03 31003
0000000000000000: 00000002 00000000 00010000 0001 01 31004 @tunneld.lock.other
0000000000000000: 00000002 00000000 00010000 0001 01 31005 /run/tunneld/tunneld.sock
`
	if diff := cmp.Diff([]string{"31001", "31002"}, boundInodes([]byte(unixFile), "@tunneld.lock")); diff != "" {
		t.Errorf("inodes (-want +got):\n%s", diff)
	}
}

// unknownHolder is how a holder that /proc does not show is named: root
// sees every process of its pid namespace.
func unknownHolder() string {
	if os.Geteuid() == 0 {
		return "a process that /proc does not show"
	}
	return "a process this user cannot identify (root can)"
}
