package daemon

import (
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/fakekernel"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/watch"
)

// nftInput is the nftables command that lets peer's IPIP in, and refuses
// the LAN's 172.16.0.0/12 from moe, as the log shows it (quoted).
func nftInput(peer string) string {
	return `"nft -f - <<'EOF'\ntable inet tunneld\ndelete table inet tunneld\ntable inet tunneld {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n` +
		`\t\tip saddr ` + peer + ` ip daddr 192.0.2.7 meta l4proto 4 accept comment \"ip saddr ` + peer + ` ip daddr 192.0.2.7 meta l4proto 4 accept\"\n` +
		`\t\tip daddr 192.0.2.7 meta l4proto 4 counter drop comment \"ip daddr 192.0.2.7 meta l4proto 4 counter drop\"\n` +
		`\t\tiifname \"moe\" jump spoof_moe comment \"iifname moe jump spoof_moe\"\n\t}\n\n` +
		`\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n` +
		`\t\tiifname \"moe\" jump spoof_moe comment \"iifname moe jump spoof_moe\"\n\t}\n\n` +
		`\tchain mss {\n\t\ttype filter hook forward priority -150; policy accept;\n` +
		`\t\toifname \"moe\" meta l4proto tcp tcp flags syn / syn,rst tcp option maxseg size set rt mtu comment \"oifname moe meta l4proto tcp tcp flags syn / syn,rst tcp option maxseg size set rt mtu\"\n\t}\n\n` +
		// moe's default route (table moe) lets every source in, but
		// 172.16.0.0/12, routed to the LAN (desired.refusedSources).
		`\tchain spoof_moe {\n` +
		`\t\tip saddr 172.16.0.0/12 counter drop comment \"ip saddr 172.16.0.0/12 counter drop\"\n\t}\n}\nEOF"`
}

// TestLog runs the daemon through a start, a DNS change, a failed lookup,
// a refused reload and a stop, and checks the lines it logs with the
// times left out: the lines log/slog's TextHandler wrote before tunneld
// had its own logger.
func TestLog(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Debug))
	h.res.set(nil, "198.51.100.77", "198.51.100.3")
	h.next()
	h.res.set(errors.New("no such host"))
	waitLog := func(s string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(buf.String(), s); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log within 10s:\n%s", s, buf.String())
			}
		}
	}
	waitLog("resolve failed")
	h.mu.Lock()
	h.cfg = strings.Replace(baseConfig, `mode = "ipip"`, `mode = "ipip"`+"\nttl = 999", 1)
	h.mu.Unlock()
	h.reload <- syscall.SIGHUP
	waitLog("keeping the running configuration")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	stamp := regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) level=(DEBUG|INFO|WARN|ERROR) msg=`)
	took := regexp.MustCompile(` (took|read|apply|waited)=\d+(\.\d+)?(ns|µs|ms|s)\b`)
	var lines []string
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if !stamp.MatchString(line) {
			t.Errorf("line not in slog's format: %q", line)
			continue
		}
		line = line[strings.Index(line, " level=")+1:]
		lines = append(lines, took.ReplaceAllString(line, " $1=T"))
	}
	want := []string{
		`level=DEBUG msg=converged reason=start ops=9 took=T read=T apply=T`,
		`level=INFO msg=changed object="nftables table inet tunneld" rules="6 rules added, 0 removed, 0 kept" reason=start`,
		`level=DEBUG msg=changed object="nftables table inet tunneld" cmd=` + nftInput("198.51.100.2") + ` reason=start`,
		`level=INFO msg=changed object="tunnel \"moe\"" cmd="ip link add moe mtu 1480 type ipip local 192.0.2.7 remote 198.51.100.2 ttl 64 pmtudisc\nip link set moe alias tunneld" reason=start`,
		`level=INFO msg=changed object="address 10.0.0.1/30 dev moe" cmd="ip address add 10.0.0.1/30 dev moe" reason=start`,
		`level=INFO msg=changed object="tunnel \"moe\"" cmd="ip link set moe up" reason=start`,
		`level=INFO msg=changed object="route 0.0.0.0/0 table 42" cmd="ip route add default via 10.0.0.2 dev moe table 42 proto 116  # table moe" reason=start`,
		`level=INFO msg=changed object="route 10.9.0.0/16 table main" cmd="ip route add 10.9.0.0/16 dev moe table main proto 116" reason=start`,
		`level=INFO msg=changed object="route 172.16.0.0/12 table main" cmd="ip route add 172.16.0.0/12 via 192.168.1.254 dev lan table main proto 116" reason=start`,
		`level=INFO msg=changed object="rule priority 20000" cmd="ip rule add from 10.0.0.1 lookup 42 priority 20000 protocol 116  # table moe" reason=start`,
		`level=INFO msg=changed object="sysctl net.ipv4.ip_forward" cmd="sysctl -w net.ipv4.ip_forward=1" reason=start`,
		`level=INFO msg="peer address changed" name=peer.example was=[198.51.100.2] now="[198.51.100.3 198.51.100.77]"`,
		`level=DEBUG msg=converged reason=dns ops=2 took=T read=T apply=T`,
		`level=INFO msg=changed object="nftables table inet tunneld" rules="1 rule added, 1 removed, 5 kept" reason=dns`,
		`level=DEBUG msg=changed object="nftables table inet tunneld" cmd=` + nftInput("198.51.100.3") + ` reason=dns`,
		`level=INFO msg=changed object="tunnel \"moe\"" cmd="ip link change moe mtu 1480 type ipip local 192.0.2.7 remote 198.51.100.3 ttl 64 pmtudisc" reason=dns`,
		`level=WARN msg="resolve failed; keeping the last answer" name=peer.example err="no such host" kept="[198.51.100.3 198.51.100.77]"`,
		`level=ERROR msg="reload refused: t.toml:11:7: tunnel.moe.ttl: 999 is out of range 1–255" file=t.toml line=11 col=7`,
		`level=WARN msg="keeping the running configuration"`,
		`level=INFO msg=removed object="sysctl net.ipv4.ip_forward" cmd="sysctl -w net.ipv4.ip_forward=0  # original value"`,
		`level=INFO msg=removed object="rule priority 20000" cmd="ip rule del from 10.0.0.1 lookup 42 priority 20000 protocol 116  # table moe"`,
		`level=INFO msg=removed object="route 172.16.0.0/12 table main" cmd="ip route del 172.16.0.0/12 via 192.168.1.254 dev lan table main proto 116"`,
		`level=INFO msg=removed object="tunnel \"moe\"" cmd="ip link del moe"`,
		`level=INFO msg=removed object="nftables table inet tunneld" cmd="nft delete table inet tunneld"`,
		`level=INFO msg="stopped; everything tunneld owned is removed"`,
	}
	// Lookups repeat while the test runs (resolve_interval is 1s): the
	// same failure again is logged at debug level. Only the first of
	// each line is compared.
	seen := map[string]bool{
		`level=DEBUG msg=converged reason=dns ops=0 took=T read=T apply=T`: true,
		`level=DEBUG msg="resolve failed as before" name=peer.example`:     true,
	}
	lines = slices.DeleteFunc(lines, func(l string) bool {
		dup := seen[l]
		seen[l] = true
		return dup
	})
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("log (-want +got):\n%s\nthe log:\n%s", diff, log)
	}
}

// TestLogTimesAHintedConverge: the debug line of a converge a hint asked
// for says how long it waited after the hint, beside its read and apply.
func TestLogTimesAHintedConverge(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Debug))
	defer h.stop()
	h.k.SetAddrs("wan", netip.MustParsePrefix("192.0.2.8/24"))
	if w := h.event(watch.Addr); w == 0 {
		t.Fatal("the address change was not followed")
	}
	line := regexp.MustCompile(`msg=converged reason="event: address" ops=(\d+) took=\S+ read=(\S+) apply=(\S+) waited=(\S+)\n`)
	m := line.FindStringSubmatch(buf.String())
	if m == nil {
		t.Fatalf("no timed converge line for the hint:\n%s", buf.String())
	}
	for _, d := range m[2:] {
		if v, err := time.ParseDuration(d); err != nil || v <= 0 {
			t.Errorf("duration %q in %q", d, m[0])
		}
	}
}

// TestLogWarnings: a warning of the configuration's (accept_ra 1 on a
// device an IPv6 tunnel follows, with ipv6_forward on) is logged at warn
// level when it begins, not again at every convergence while it lasts,
// and again when it comes back after it was gone.
func TestLogWarnings(t *testing.T) {
	const ra = "net/ipv6/conf/wan/accept_ra"
	cfg := "[global]\nfirewall = false\nipv6_forward = true\n[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"wan\"\nremote = \"2001:db8:b::1\"\n"
	var buf syncbuf.Buffer
	h := startLogging(t, cfg, logfmt.New(&buf, logfmt.Info))
	h.event(watch.Link)
	h.k.SetSysctl(ra, "2")
	h.event(watch.Link)
	h.k.SetSysctl(ra, "1")
	h.event(watch.Link)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	got := levelLines(buf.String(), "WARN")
	line := `level=WARN msg="net.ipv6.conf.wan.accept_ra is 1: with ipv6_forward on, the kernel ignores router advertisements there and the address from SLAAC expires; set it to 2"`
	if diff := cmp.Diff([]string{line, line}, got); diff != "" {
		t.Errorf("warn lines (-want +got):\n%s\nlog:\n%s", diff, buf.String())
	}
}

// TestLogForeignDevice: a tunnel whose name a device tunneld does not own
// takes (a dummy, someone's own tunnel of another kind) is logged at warn
// level, naming the tunnel and the device, when that begins, not again at
// every convergence while it lasts, and again when it comes back after
// the name was freed.
func TestLogForeignDevice(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Info))
	defer h.stop()
	// take replaces tunneld's moe with someone else's device of kind.
	take := func(kind string) func(k *fakekernel.Kernel) {
		return func(k *fakekernel.Kernel) {
			k.DelDevice("moe")
			k.AddDevice(model.Device{Name: "moe", Kind: kind, MTU: 1500, Up: true, Running: true})
		}
	}
	taken := func(what string) string {
		return `level=WARN msg="tunnel \"moe\" is down: the name moe is taken by ` + what + ` tunneld does not own: give the tunnel another name" object="tunnel \"moe\""`
	}
	for _, step := range []struct {
		name string
		do   func(k *fakekernel.Kernel)
		// hints are the hints sent, a converge each.
		hints []watch.Kind
		want  []string
	}{
		{"a dummy takes the name", take("dummy"), []watch.Kind{watch.Link}, []string{taken("a dummy device")}},
		{"it stays", nil, []watch.Kind{watch.Link, watch.Route, watch.Addr}, nil},
		{"it goes", func(k *fakekernel.Kernel) { k.DelDevice("moe") }, []watch.Kind{watch.Link}, nil},
		{"a dummy takes the name again", take("dummy"), []watch.Kind{watch.Link, watch.Link}, []string{taken("a dummy device")}},
		{"a gre replaces it", take("gre"), []watch.Kind{watch.Link, watch.Route}, []string{taken("a gre device")}},
		{"a device of no kind replaces it", take(""), []watch.Kind{watch.Link}, []string{taken("a device")}},
	} {
		before := len(buf.String())
		if step.do != nil {
			h.writes() // take the lock: the loop may be applying
			step.do(h.k)
		}
		for _, k := range step.hints {
			h.event(k)
		}
		got := levelLines(buf.String()[before:], "WARN")
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: warn lines (-want +got):\n%s\nlog:\n%s", step.name, diff, buf.String())
		}
	}
	if _, ok := h.k.Tunnels["moe"]; ok {
		t.Errorf("tunneld created moe beside the device that holds its name")
	}
}

// TestLogTakeOver: a tunnel without tunneld's alias left by a crash
// between its creation and its alias (recorded as being created) is
// marked, and the daemon says so once at warn level.
func TestLogTakeOver(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Info))
	defer h.stop()
	before := len(buf.String())
	h.writes()
	delete(h.k.Aliases, "moe")
	h.k.Creating = map[string]bool{"moe": true}
	h.event(watch.Link)
	h.event(watch.Link)
	var got []string
	for _, line := range strings.Split(buf.String()[before:], "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "alias") {
			got = append(got, line[strings.Index(line, " level=")+1:])
		}
	}
	want := []string{
		`level=INFO msg=changed object="tunnel \"moe\"" cmd="ip link set moe alias tunneld" reason="event: link"`,
		`level=WARN msg="tunnel \"moe\": taking over the ipip device moe, which does not carry tunneld's alias (left by a tunneld stopped while creating it, or its alias changed since): tunneld now owns it and removes it when the configuration drops it" object="tunnel \"moe\""`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s\nlog:\n%s", diff, buf.String())
	}
	if h.k.Aliases["moe"] != model.LinkAlias {
		t.Errorf("moe's alias is %q, want %q", h.k.Aliases["moe"], model.LinkAlias)
	}
}

// TestRelabeledTunnelTakenBack: a tunnel of tunneld's whose alias
// someone changed (ip link set moe alias to-branch-office: a tester's
// label) is still the daemon's, the device it found its own: the alias is
// given back, with the warning, and nothing else changes.
func TestRelabeledTunnelTakenBack(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Info))
	defer h.stop()
	before := len(buf.String())
	h.k.Aliases["moe"] = "to-branch-office"
	if w := h.event(watch.Link); w != 1 {
		t.Errorf("writes %d, want 1 (the alias)", w)
	}
	if h.k.Aliases["moe"] != model.LinkAlias || !slices.Equal(h.routes(), allRoutes) {
		t.Errorf("after the relabel: alias %q, routes %v", h.k.Aliases["moe"], h.routes())
	}
	if !strings.Contains(buf.String()[before:], `taking over the ipip device moe, which does not carry tunneld's alias (left by a tunneld stopped while creating it, or its alias changed since)`) {
		t.Errorf("no warning:\n%s", buf.String()[before:])
	}
}

// TestLogLocalAbsent: a tunnel up whose pinned local address no device
// has any more (the WAN's address deleted) is logged at warn level when
// that begins, not again while it lasts, and again when it comes back: a
// tester's daemon said nothing while the tunnel sent nothing.
func TestLogLocalAbsent(t *testing.T) {
	cfg := "[global]\nfirewall = false\n[tunnel.moe]\nmode = \"ipip\"\nlocal = \"192.0.2.7\"\nremote = \"198.51.100.2\"\n"
	var buf syncbuf.Buffer
	h := startLogging(t, cfg, logfmt.New(&buf, logfmt.Info))
	defer h.stop()
	gone := `level=WARN msg="tunnel \"moe\" is up, but its local address 192.0.2.7 is on no device of this box: the kernel sends nothing from it" object="tunnel \"moe\""`
	setWAN := func(p string) func(k *fakekernel.Kernel) {
		return func(k *fakekernel.Kernel) { k.SetAddrs("wan", netip.MustParsePrefix(p)) }
	}
	for _, step := range []struct {
		name string
		do   func(k *fakekernel.Kernel)
		want []string
	}{
		{"deleted", setWAN("192.0.2.8/24"), []string{gone}},
		{"still gone", nil, nil},
		{"back", setWAN("192.0.2.7/24"), nil},
		{"deleted again", setWAN("192.0.2.9/24"), []string{gone}},
	} {
		before := len(buf.String())
		if step.do != nil {
			h.writes()
			step.do(h.k)
		}
		h.event(watch.Addr)
		got := levelLines(buf.String()[before:], "WARN")
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: warn lines (-want +got):\n%s\nlog:\n%s", step.name, diff, buf.String())
		}
	}
}

// TestOverflowLogged: an Overflow is logged at warn level and re-read
// after; a Drained one, sent when the overflow's drops ended, is re-read
// after too, and logged at info level.
func TestOverflowLogged(t *testing.T) {
	var buf syncbuf.Buffer
	h := startLogging(t, baseConfig, logfmt.New(&buf, logfmt.Info))
	defer h.stop()
	h.events <- watch.Event{Kind: watch.Overflow}
	h.next()
	h.events <- watch.Event{Kind: watch.Overflow, Drained: true}
	h.next() // the re-read: a converge
	want := []string{
		`level=WARN msg="netlink events were lost (socket overflow): re-reading everything"`,
		`level=INFO msg="netlink events are no longer lost: re-reading everything"`,
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, "netlink events") {
			got = append(got, l[strings.Index(l, "level="):])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overflow lines (-want +got):\n%s", diff)
	}
}
