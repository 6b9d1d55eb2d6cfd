package pkgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// shellScripts are every shell script the packages run or build with.
var shellScripts = []string{
	"init/tunneld.init",
	"packaging/ipk/postinst",
	"packaging/ipk/prerm",
	"packaging/debian/postinst",
	"packaging/debian/prerm",
	"packaging/debian/postrm",
	"packaging/scripts/common.sh",
	"packaging/scripts/goarch.sh",
	"packaging/scripts/mkdeb.sh",
	"packaging/scripts/mkipk.sh",
	"packaging/scripts/pkgversion.sh",
}

func TestShellScripts(t *testing.T) {
	gate(t)
	need(t, "shellcheck")
	root := repoRoot(t)
	for _, s := range shellScripts {
		run(t, root, nil, "sh", "-n", s)
	}
	// The init script says `shell=dash` itself: busybox ash, like dash,
	// has `local`, which plain POSIX sh lacks. -x follows `. common.sh`.
	run(t, root, nil, "shellcheck", append([]string{"-x", "-P", "SCRIPTDIR"}, shellScripts...)...)
}

// TestInitScript checks the procd script's essentials.
func TestInitScript(t *testing.T) {
	gate(t)
	s := string(readFile(t, "init/tunneld.init"))
	for _, want := range []string{
		"#!/bin/sh /etc/rc.common\n",
		"\nUSE_PROCD=1\n",
		"\nSTART=30\n",
		`"$PROG" check -c "$CONF"`,
		`procd_set_param command "$PROG" run -log-split -c "$CONF"`,
		"procd_set_param respawn 3600 5 5",
		"procd_set_param stdout 1",
		"procd_set_param stderr 1",
		`procd_set_param file "$CONF"`,
		"procd_send_signal tunneld tunneld HUP",
		"procd_add_reload_trigger",
		"logger -t tunneld",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init/tunneld.init lacks %q", want)
		}
	}
	if n := strings.Count(s, "logger "); n != 1 {
		t.Errorf("%d logger calls, want exactly one line logged", n)
	}
}

// TestUnitFile checks the unit's key settings (systemd-analyze verify
// checks the syntax).
func TestUnitFile(t *testing.T) {
	gate(t)
	s := string(readFile(t, "init/tunneld.service"))
	for _, want := range []string{
		"Type=notify",
		"ExecStartPre=/usr/sbin/tunneld check -c /etc/tunneld/tunneld.toml",
		"ExecStart=/usr/sbin/tunneld run -c /etc/tunneld/tunneld.toml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure",
		"WatchdogSec=30s",
		"AmbientCapabilities=CAP_NET_ADMIN\n",
		"CapabilityBoundingSet=CAP_NET_ADMIN\n",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"RuntimeDirectory=tunneld",
		"RuntimeDirectoryPreserve=yes",
		"RestrictAddressFamilies=AF_NETLINK AF_UNIX AF_INET AF_INET6",
		"After=network.target",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init/tunneld.service lacks %q", want)
		}
	}
	// /proc/sys/net must stay writable.
	for _, bad := range []string{"ProtectKernelTunables=yes", "ProcSubset=pid", "CAP_NET_RAW"} {
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(bad)).MatchString(s) {
			t.Errorf("init/tunneld.service sets %s", bad)
		}
	}
}

// TestDefaultConfig checks the packaged configuration with tunneld itself.
func TestDefaultConfig(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	out := run(t, root, nil, "go", "run", "./cmd/tunneld", "check", "-c", "packaging/tunneld.toml")
	if !strings.Contains(out, "ok (0 tunnels, 0 routes, 0 rules)") {
		t.Errorf("tunneld check: %q, want ok with nothing configured", out)
	}
	// Nothing that would change the box is set (only keep_on_exit, the
	// default, is uncommented).
	for _, line := range strings.Split(string(readFile(t, "packaging/tunneld.toml")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if line != "keep_on_exit = false" {
			t.Errorf("packaging/tunneld.toml sets %q", line)
		}
	}
}

// TestFW4Includes loads each include into a throw-away fw4-like table in
// a new network namespace with nft -c (nothing is committed).
func TestFW4Includes(t *testing.T) {
	gate(t)
	if os.Geteuid() != 0 {
		t.Skip("nft -c in a new network namespace needs root")
	}
	need(t, "nft", "unshare")
	root := repoRoot(t)
	for _, chain := range []string{"forward", "input"} {
		inc := filepath.Join(root, "packaging/openwrt/files/usr/share/tunneld/nftables.d/chain-pre", chain, "30-tunneld.nft")
		ruleset := "table inet fw4 {\n\tchain " + chain + " {\n\t\ttype filter hook " + chain +
			" priority filter; policy drop;\n\t\tinclude \"" + inc + "\"\n\t}\n}\n"
		f := filepath.Join(t.TempDir(), "fw4.nft")
		if err := os.WriteFile(f, []byte(ruleset), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("unshare", "-n", "nft", "-c", "-f", f)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", inc, err, out)
		}
	}
}

// TestInitStartInvalid runs start_service as rc.common does (its caller
// then sends procd the service), with procd, ubus and tunneld stubbed: an
// invalid file opens no instance; with a daemon running, the script exits
// before the service is sent, since an empty instance list would stop the
// daemon; at boot (none running) the empty service is still sent, so the
// reload trigger is registered.
func TestInitStartInvalid(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "tunneld")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n[ \"$1\" = check ] || exit 0\n[ \"$VALID\" = 1 ] && exit 0\necho 't.toml:2:14: global.ip_forward: must be true or false'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	harness := `
procd_open_instance() { echo open_instance; }
procd_set_param() { :; }
procd_close_instance() { echo close_instance; }
logger() { :; }
ubus() {
	[ "$*" = 'call service list {"name":"tunneld"}' ] || { echo "ubus called with $*" >&2; return 1; }
	echo "$RUNNING"
}
jsonfilter() { cat; }
. ./init/tunneld.init
PROG=$FAKE
( start_service; echo "service sent, start_service returned $?" )
echo "exit $?"
`
	tests := []struct {
		name, valid, running, want string
	}{
		{"valid", "1", "", "open_instance\nclose_instance\nservice sent, start_service returned 0\nexit 0\n"},
		{"invalid, none running (boot)", "0", "", "service sent, start_service returned 1\nexit 0\n"},
		{"invalid, one running", "0", "true", "exit 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", harness)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "FAKE="+fake, "VALID="+tt.valid, "RUNNING="+tt.running)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := string(out); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestInitRestart runs restart as rc.common does (its own restart, stop
// then start, defined before the script is sourced, the script's after),
// with stop, start, logger and tunneld stubbed: with an invalid file it
// logs one line and fails without stopping the running daemon; with a
// valid one it stops and starts.
func TestInitRestart(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	fake := filepath.Join(t.TempDir(), "tunneld")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n[ \"$1\" = check ] || exit 0\n[ \"$VALID\" = 1 ] && exit 0\necho 't.toml:2:14: global.ip_forward: must be true or false'\necho 't.toml:3:1: tunnel.x: unknown option'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	harness := `
restart() { trap '' TERM; stop "$@"; start "$@"; }
stop() { echo stop; }
start() { echo start; }
logger() { echo "logger $*"; }
. ./init/tunneld.init
PROG=$FAKE
restart
echo "restart returned $?"
`
	tests := []struct {
		name, valid, want string
	}{
		{"valid", "1", "stop\nstart\nrestart returned 0\n"},
		{"invalid", "0", "logger -t tunneld -p daemon.err not restarted (nothing stopped): 2 problem(s) in /etc/tunneld/tunneld.toml, " +
			"first: t.toml:2:14: global.ip_forward: must be true or false (run: tunneld check -c /etc/tunneld/tunneld.toml)\n" +
			"restart returned 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", harness)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "FAKE="+fake, "VALID="+tt.valid)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("restart (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInitStopUpgrade runs stop as rc.common does (stop_service, then
// procd stops the daemon), with procd, ubus, logger and tunneld stubbed:
// OpenWrt's default prerm (the feed package's) runs it on an upgrade too,
// and a tester's upgrade with an edit not reloaded yet tore everything
// down and started nothing. On an upgrade, with a daemon running and a
// file that does not validate, the daemon is left running, and the admin
// told; otherwise stop stops.
func TestInitStopUpgrade(t *testing.T) {
	gate(t)
	root := repoRoot(t)
	fake := filepath.Join(t.TempDir(), "tunneld")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n[ \"$1\" = check ] || exit 0\n[ \"$VALID\" = 1 ] && exit 0\necho 't.toml:2:14: global.ip_forward: must be true or false'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	harness := `
stop() { type stop_service >/dev/null 2>&1 && stop_service "$@"; echo procd_kill; }
logger() { echo "logger $*"; }
ubus() { echo "$RUNNING"; }
jsonfilter() { cat; }
. ./init/tunneld.init
PROG=$FAKE
( stop; echo "stop returned $?" )
echo "exit $?"
`
	kept := "logger -t tunneld -p daemon.err not stopped for the upgrade (nothing stopped): 1 problem(s) in /etc/tunneld/tunneld.toml, " +
		"first: t.toml:2:14: global.ip_forward: must be true or false (run: tunneld check -c /etc/tunneld/tunneld.toml)\nexit 0\n"
	for _, tt := range []struct {
		name, upgrade, valid, running, want string
	}{
		{"no upgrade, invalid", "", "0", "true", "procd_kill\nstop returned 0\nexit 0\n"},
		{"upgrade, valid", "1", "1", "true", "procd_kill\nstop returned 0\nexit 0\n"},
		{"upgrade, invalid, running", "1", "0", "true", kept},
		{"upgrade, invalid, none running", "1", "0", "", "procd_kill\nstop returned 0\nexit 0\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", harness)
			cmd.Dir = root
			var errb strings.Builder
			cmd.Stderr = &errb
			cmd.Env = append(os.Environ(), "FAKE="+fake, "VALID="+tt.valid, "RUNNING="+tt.running, "PKG_UPGRADE="+tt.upgrade)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out, errb.String())
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("stop (-want +got):\n%s", diff)
			}
			if told := strings.Contains(errb.String(), "tunneld: not stopped for the upgrade: "); told != (tt.want == kept) {
				t.Errorf("stderr %q: told %v, want %v", errb.String(), told, tt.want == kept)
			}
		})
	}
}
