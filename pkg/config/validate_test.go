package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/model"
)

// A minimal valid tunnel, prepended where a case needs one to refer to.
const moe = `[tunnel.moe]
mode = "ipip"
local = "192.0.2.1"
remote = "192.0.2.2"
address = "10.0.0.1/30"
`

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"syntax", "[tunnel.moe\nmode = 1\n", []string{
			"t.toml:1:12: syntax error: expected '.' or ']' to end table name, but got '\\n' instead"}},
		{"key twice", "[global]\nip_forward = true\nip_forward = false\n", []string{
			"t.toml:3:1: syntax error: global.ip_forward is defined twice"}},
		{"section twice", moe + "[tunnel.moe]\n", []string{
			"t.toml:6:2: syntax error: tunnel.moe is defined twice"}},
		{"end of file", "[global]\nproxy_arp = [\"eth0\", ", []string{
			"t.toml:2:21: syntax error: unexpected end of file; expected value"}},
		{"invalid integer", "[global]\nrule_priority_min = 020000\n", []string{
			`t.toml:2:21: syntax error: invalid integer "020000": cannot have leading zeroes`}},
		{"unknown top-level key", "colour = 1\n", []string{
			"t.toml:1:1: colour: unknown option (known: global, tables, tunnel, route, rule, forward, masquerade, redirect)"}},
		{"unknown tunnel key", moe + "colour = 64\n", []string{
			"t.toml:6:1: tunnel.moe.colour: unknown option (known: mode, local, remote, dev, address, mtu, ttl, tos, pmtudisc, key, ikey, okey, encaplimit, host_route, allowed_sources, forward, mss_clamp, hook)"}},
		// One known name a slip away is named instead of all 18.
		{"misspelt tunnel key", moe + "tll = 64\n", []string{
			"t.toml:6:1: tunnel.moe.tll: unknown option (did you mean ttl?)"}},
		{"interface name too long", strings.Replace(moe, "tunnel.moe", "tunnel.abcdefghijklmnop", 1), []string{
			`t.toml:1:1: tunnel.abcdefghijklmnop: interface name "abcdefghijklmnop" is longer than 15 bytes`}},
		{"interface name with colon", strings.Replace(moe, "tunnel.moe", `tunnel."eth0:1"`, 1), []string{
			`t.toml:1:1: tunnel."eth0:1": interface name "eth0:1" contains '/' or ':'`}},
		// The kernel refuses these names; a tester's [tunnel.all]
		// passed check and failed apply with "invalid argument".
		{"the kernel's names for every interface's settings", strings.Replace(moe, "tunnel.moe", "tunnel.all", 1) + "[global]\nproxy_arp = [\"default\"]\n", []string{
			`t.toml:1:1: tunnel.all: interface name "all" is the kernel's name for the settings of every interface (net.ipv4.conf.all), not a device's: name each interface`,
			`t.toml:7:14: global.proxy_arp[0]: interface name "default" is the kernel's name for the settings of interfaces made from now on (net.ipv4.conf.default), not a device's: name each interface`}},
		{"interface name with space", moe + "dev = \"eth 0\"\n", []string{
			`t.toml:6:7: tunnel.moe.dev: interface name "eth 0" contains whitespace`}},
		{"interface names the filter and the printed commands could not take", "[tunnel.\"t@1\"]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n[tunnel.\"tün\"]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\n[tunnel.\"br-lan.2_x\"]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.4\"\n[[masquerade]]\noif = \"ppp*\"\n[[forward]]\ntunnel = \"br-lan.2_x\"\ndirection = \"in\"\ninterface = \"eth+\"\n", []string{
			`t.toml:1:1: tunnel."t@1": interface name "t@1" may hold only letters, digits, '_', '-' and '.'`,
			`t.toml:5:1: tunnel."tün": interface name "tün" may hold only letters, digits, '_', '-' and '.'`,
			`t.toml:14:7: masquerade[0].oif: interface name "ppp*" has a wildcard: name each interface`,
			`t.toml:18:13: forward[0].interface: interface name "eth+" has a wildcard: name each interface`}},
		{"link-local gateway without dev", "[[route]]\nto = \"2001:db8::/32\"\nvia = \"fe80::1\"\n[[route]]\nto = \"2001:db9::/32\"\nvia = \"fe80::1\"\ndev = \"eth0\"\n", []string{
			`t.toml:3:7: route[0].via: a link-local gateway needs dev (the link it is on)`}},
		// A tester's ll passed check and apply, status said up, and
		// nothing passed: the kernel's ip6tnl has no link for it. The
		// second tunnel, with dev, is valid.
		{"link-local endpoints without dev", "[tunnel.ll]\nmode = \"ip6ip6\"\nlocal = \"wan\"\nremote = \"fe80::2\"\naddress = \"fd00:77::1/64\"\n" +
			"[tunnel.ll2]\nmode = \"ipip6\"\nlocal = \"fe80::1\"\nremote = \"2001:db8::2\"\n" +
			"[tunnel.ll3]\nmode = \"ip6ip6\"\nlocal = \"fe80::1\"\nremote = \"fe80::2\"\ndev = \"wan\"\n", []string{
			`t.toml:4:10: tunnel.ll.remote: a link-local address needs dev (the link it is on)`,
			`t.toml:8:9: tunnel.ll2.local: a link-local address needs dev (the link it is on)`}},
		{"missing mode", "[tunnel.moe]\nlocal = \"any\"\nremote = \"192.0.2.2\"\n", []string{
			"t.toml:1:1: tunnel.moe: missing option mode (ipip, gre, sit, ipip6 or ip6ip6)"}},
		{"unknown mode", "[tunnel.moe]\nmode = \"vxlan\"\n", []string{
			`t.toml:2:8: tunnel.moe.mode: unknown mode "vxlan" (want ipip, gre, sit, ipip6 or ip6ip6)`}},
		{"missing local", "[tunnel.moe]\nmode = \"ipip\"\nremote = \"192.0.2.2\"\n", []string{
			`t.toml:1:1: tunnel.moe: missing option local (an address, a device whose address to follow, or "any")`}},
		{"local family", strings.Replace(moe, `local = "192.0.2.1"`, `local = "2001:db8::1"`, 1), []string{
			"t.toml:3:9: tunnel.moe.local: mode ipip needs an IPv4 local address, not 2001:db8::1"}},
		{"remote family", strings.Replace(strings.Replace(moe, `"ipip"`, `"ip6ip6"`, 1), `address = "10.0.0.1/30"`, `address = "fd00::1/64"`, 1), []string{
			"t.toml:3:9: tunnel.moe.local: mode ip6ip6 needs an IPv6 local address, not 192.0.2.1",
			"t.toml:4:10: tunnel.moe.remote: mode ip6ip6 needs an IPv6 remote address, not 192.0.2.2"}},
		// A tester's remote = "0.0.0.0": the kernel keeps it as any, so
		// the tunnel never matched, and the filter took only 0.0.0.0.
		{"unspecified endpoints", strings.Replace(strings.Replace(moe, `local = "192.0.2.1"`, `local = "0.0.0.0"`, 1), `remote = "192.0.2.2"`, `remote = "0.0.0.0"`, 1), []string{
			`t.toml:3:9: tunnel.moe.local: 0.0.0.0 is the unspecified address: write "any"`,
			`t.toml:4:10: tunnel.moe.remote: 0.0.0.0 is the unspecified address: write "any"`}},
		{"unspecified IPv6 remote", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"::\"\n", []string{
			`t.toml:4:10: tunnel.six.remote: :: is the unspecified address: write "any"`}},
		{"loopback remote", strings.Replace(moe, `remote = "192.0.2.2"`, `remote = "127.0.0.1"`, 1), []string{
			"t.toml:4:10: tunnel.moe.remote: 127.0.0.1 is a loopback address: a tunnel to it never leaves this box"}},
		{"remote is local", strings.Replace(moe, `remote = "192.0.2.2"`, `remote = "192.0.2.1"`, 1), []string{
			"t.toml:4:10: tunnel.moe.remote: 192.0.2.1 is the tunnel's local address too: the remote is the other end"}},
		{"inner family", strings.Replace(moe, `address = "10.0.0.1/30"`, `address = ["10.0.0.1/30", "fd00::1/64"]`, 1), []string{
			"t.toml:5:27: tunnel.moe.address[1]: mode ipip does not carry IPv6"}},
		{"bad remote name", strings.Replace(moe, `remote = "192.0.2.2"`, `remote = "peer_1.example"`, 1), []string{
			`t.toml:4:10: tunnel.moe.remote: "peer_1.example" is neither an IP address nor a valid host name`}},
		{"both any", strings.Replace(strings.Replace(moe, `"192.0.2.1"`, `"any"`, 1), `"192.0.2.2"`, `"any"`, 1), []string{
			"t.toml:4:10: tunnel.moe.remote: local and remote are both any: the kernel's fallback device tunl0 already is that tunnel"}},
		{"ttl range", moe + "ttl = 0\n", []string{"t.toml:6:7: tunnel.moe.ttl: 0 is out of range 1–255"}},
		{"ttl word", moe + "ttl = \"max\"\n", []string{`t.toml:6:7: tunnel.moe.ttl: must be 1–255 or "inherit", not "max"`}},
		{"ttl type", moe + "ttl = 6.4\n", []string{"t.toml:6:7: tunnel.moe.ttl: must be an integer, not the float 6.4"}},
		{"fixed ttl without pmtudisc", moe + "ttl = 64\npmtudisc = false\n", []string{
			`t.toml:6:7: tunnel.moe.ttl: a fixed ttl needs pmtudisc (the kernel refuses ttl 64 with nopmtudisc): set ttl = "inherit" or pmtudisc = true`}},
		{"tos odd", moe + "tos = 5\n", []string{
			`t.toml:6:7: tunnel.moe.tos: 5 has bit 0 set, which the kernel reads as inherit: write "inherit" or an even value`}},
		// The reference says an even number 0–254, and so do the
		// messages: 255 is odd, and was out of range 0–255.
		{"tos range", moe + "tos = 256\n", []string{"t.toml:6:7: tunnel.moe.tos: 256 is out of range 0–254"}},
		{"tos 255", moe + "tos = 255\n", []string{"t.toml:6:7: tunnel.moe.tos: 255 is out of range 0–254"}},
		{"tos word", moe + "tos = \"high\"\n", []string{`t.toml:6:7: tunnel.moe.tos: must be an even number 0–254 or "inherit", not "high"`}},
		{"tos as netifd writes it", moe + "tos = \"10\"\n", []string{
			`t.toml:6:7: tunnel.moe.tos: must be an even number 0–254 or "inherit", not "10" (netifd and ip read it as hexadecimal: write tos = 0x10, a number)`}},
		{"tos hex string", moe + "tos = \"0xb8\"\n", []string{
			`t.toml:6:7: tunnel.moe.tos: must be an even number 0–254 or "inherit", not "0xb8" (netifd and ip read it as hexadecimal: write tos = 0xb8, a number)`}},
		{"mtu range", moe + "mtu = 40\n", []string{"t.toml:6:7: tunnel.moe.mtu: 40 is out of range 68–65535"}},
		{"mtu ipv6", strings.Replace(strings.Replace(moe, `"ipip"`, `"sit"`, 1), `"10.0.0.1/30"`, `"2001:db8::1/64"`, 1) + "mtu = 1200\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: 1200 is below 1280, IPv6's minimum, and the tunnel carries IPv6: the kernel turns IPv6 off on a device with a smaller mtu"}},
		{"mtu ipv6 on ip6ip6 without addresses", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\nmtu = 1279\n", []string{
			"t.toml:5:7: tunnel.six.mtu: 1279 is below 1280, IPv6's minimum, and the tunnel carries IPv6: the kernel turns IPv6 off on a device with a smaller mtu"}},
		{"mtu 1280 on ip6ip6", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\nmtu = 1280\n", nil},
		{"mtu ipv6 through a gre route", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "mtu = 1200\n[[route]]\nto = \"2001:db8:100::/48\"\ndev = \"moe\"\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: 1200 is below 1280, IPv6's minimum, and the tunnel carries IPv6: the kernel turns IPv6 off on a device with a smaller mtu"}},
		{"mtu below 1280 on an IPv4-only gre", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "mtu = 1200\n[[route]]\nto = \"10.1.0.0/16\"\ndev = \"moe\"\n", nil},
		{"mtu 68 on ipip", moe + "mtu = 68\n", nil},
		{"mtu 65515 on ipip", moe + "mtu = 65515\n", nil},
		{"mtu 65535 on ipip", moe + "mtu = 65535\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: 65535 is more than 65515, the largest the kernel gives an ipip tunnel: 65535 less its 20-byte outer header"}},
		{"mtu 65512 on gre", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "mtu = 65512\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: 65512 is more than 65511, the largest the kernel gives a gre tunnel: 65535 less its 24-byte outer header"}},
		{"mtu 65511 on gre with an output key", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "mtu = 65511\nokey = 7\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: 65511 is more than 65507, the largest the kernel gives a gre tunnel with an output key: 65535 less its 28-byte outer header"}},
		{"mtu 65511 on gre with an input key only", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "mtu = 65511\nikey = 7\n", nil},
		{"mtu 65496 on ipip6", "[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\nmtu = 65496\n", []string{
			"t.toml:5:7: tunnel.ds.mtu: 65496 is more than 65495, the largest the kernel gives an ipip6 tunnel: 65535 less its 40-byte outer header"}},
		{"mtu 65495 on ipip6", "[tunnel.ds]\nmode = \"ipip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\nmtu = 65495\n", nil},
		{"mtu 65535 on ip6ip6", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\nmtu = 65535\n", nil},
		{"key on ipip", moe + "key = 5\n", []string{"t.toml:6:7: tunnel.moe.key: only gre tunnels have keys (mode is ipip)"}},
		{"key and ikey", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "key = 5\nikey = 6\n", []string{
			"t.toml:6:7: tunnel.moe.key: set either key or ikey/okey, not both"}},
		{"encaplimit on gre", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "encaplimit = 4\n", []string{
			"t.toml:6:14: tunnel.moe.encaplimit: only ipip6 and ip6ip6 tunnels have an encapsulation limit"}},
		{"duplicate tunnel", moe + strings.Replace(strings.Replace(moe, "tunnel.moe", "tunnel.larry", 1), "10.0.0.1/30", "10.0.1.1/30", 1), []string{
			`t.toml:6:1: tunnel.larry: same ipip, local and remote as tunnel "moe": the kernel keeps one tunnel per endpoint pair (bind them to different devices with dev)`}},
		{"devices tell ipip tunnels apart", dualWAN("ipip", "wan1", "wan2", "10.0.1.1/30"), nil},
		{"one device for both", dualWAN("ipip", "wan1", "wan1", "10.0.1.1/30"), []string{
			`t.toml:7:1: tunnel.up2: same ipip, local and remote as tunnel "up1": the kernel keeps one tunnel per endpoint pair (bind them to different devices with dev)`}},
		{"one device for both gre", dualWAN("gre", "wan1", "wan1", "10.0.1.1/30"), []string{
			`t.toml:7:1: tunnel.up2: same gre, local and remote as tunnel "up1": the kernel keeps one tunnel per endpoint pair (give them different keys, or bind them to different devices with dev)`}},
		{"devices do not tell ip6tnl tunnels apart", dualWAN("ip6ip6", "wan1", "wan2", "2001:db8:1::1/64"), []string{
			`t.toml:7:1: tunnel.up2: same ip6tnl, local and remote as tunnel "up1": the kernel keeps one tunnel per endpoint pair`}},
		{"gre keys tell tunnels apart", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "key = 1\n" +
			strings.Replace(strings.Replace(strings.Replace(moe, "tunnel.moe", "tunnel.larry", 1), `"ipip"`, `"gre"`, 1), "10.0.0.1/30", "10.0.1.1/30", 1) + "key = 2\n", nil},
		{"duplicate address", strings.Replace(moe, `address = "10.0.0.1/30"`, `address = ["10.0.0.1/30", "10.0.0.1/24"]`, 1), []string{
			"t.toml:5:27: tunnel.moe.address[1]: address 10.0.0.1 is listed twice"}},
		{"address host bits in peer form", strings.Replace(moe, `"10.0.0.1/30"`, `"10.0.0.1/30 peer 10.0.0.2"`, 1), []string{
			`t.toml:5:11: tunnel.moe.address: "10.0.0.1/30 peer 10.0.0.2": with a peer the local address takes no prefix length (or /32)`}},
		{"reserved table number", "[tables]\nmine = 254\n", []string{`t.toml:2:8: tables.mine: table number 254 is reserved for table "main"`}},
		{"table zero", "[tables]\nmine = 0\n", []string{"t.toml:2:8: tables.mine: 0 is out of range 1–4294967295"}},
		{"reserved table name", "[tables]\nmain = 100\n", []string{`t.toml:2:1: tables.main: table name "main" is reserved (it is table 254)`}},
		{"duplicate table number", "[tables]\na = 42\nb = 42\n", []string{`t.toml:3:5: tables.b: table number 42 is already used by table "a"`}},
		{"unknown table in route", moe + "[[route]]\nto = \"default\"\ndev = \"moe\"\ntable = \"Moe\"\n", []string{
			`t.toml:9:9: route[0].table: unknown table "Moe" (name it in [tables])`}},
		{"reserved table by number", moe + "[[route]]\nto = \"default\"\ndev = \"moe\"\ntable = 254\n", []string{
			`t.toml:9:9: route[0].table: table 254 is reserved: write "main"`}},
		{"unknown table in route: no same-destination error against main's", "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\ntable = \"nope\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\n", []string{
			`t.toml:4:9: route[0].table: unknown table "nope" (name it in [tables])`}},
		{"a table's number in quotes", "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\ntable = \"300\"\n", []string{
			`t.toml:4:9: route[0].table: unknown table "300" (a number goes without quotes: table = 300; or name it in [tables])`}},
		// No hint to a number check then refuses.
		{"a number no table may have, in quotes", "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\ntable = \"254\"\n[[route]]\nto = \"10.8.0.0/16\"\ndev = \"eth0\"\ntable = \"4294967296\"\n", []string{
			`t.toml:4:9: route[0].table: unknown table "254" (name it in [tables])`,
			`t.toml:8:9: route[1].table: unknown table "4294967296" (name it in [tables])`}},
		{"unknown table in rule", "[[rule]]\nfrom = \"10.0.0.1\"\ntable = 42000000000\n", []string{
			"t.toml:3:9: rule[0].table: table 42000000000 is out of range 1–4294967295"}},
		{"rule without table", "[[rule]]\nfrom = \"10.0.0.1\"\n", []string{"t.toml:1:1: rule[0]: missing option table"}},
		{"rule priority outside band", "[tables]\nt = 5\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"t\"\npriority = 100\n", []string{
			"t.toml:6:12: rule[0].priority: 100 is outside tunneld's rule band 20000–20999 (global.rule_priority_min/max)"}},
		{"rule families", "[tables]\nt = 5\n[[rule]]\nfrom = \"10.0.0.1\"\nto = \"fd00::/8\"\ntable = \"t\"\n", []string{
			"t.toml:5:6: rule[0].to: from and to are of different families"}},
		{"route given twice", "[[route]]\nto = \"10.7.0.0/16\"\nvia = \"192.0.2.1\"\n[[route]]\nto = \"10.7.0.0/16\"\nvia = \"192.0.2.9\"\n", []string{
			"t.toml:5:6: route[1].to: same destination, table and metric as route[0] (line 1): the kernel keeps one route for them (give one a different metric)"}},
		{"IPv6 route given twice, metric 0 is 1024", "[[route]]\nto = \"fd00::/8\"\ndev = \"eth0\"\n[[route]]\nto = \"fd00::/8\"\ndev = \"eth1\"\nmetric = 1024\n", []string{
			"t.toml:5:6: route[1].to: same destination, table and metric as route[0] (line 1): the kernel keeps one route for them (give one a different metric)"}},
		{"route via peer needs tunnel", "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"eth0\"\n", []string{
			`t.toml:3:7: route[0].via: "peer" needs dev to name one of the configured tunnels`}},
		{"route via peer needs a peer", strings.Replace(moe, "10.0.0.1/30", "10.0.0.1/24", 1) + "[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n", []string{
			`t.toml:8:7: route[0].via: tunnel "moe" has no IPv4 address with a peer ("A peer B", or a /30 or /31) to route via`}},
		{"IPv6 route via peer needs a peer", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\naddress = \"fd00::1/64\"\n[[route]]\nto = \"fd01::/16\"\nvia = \"peer\"\ndev = \"six\"\n", []string{
			`t.toml:8:7: route[0].via: tunnel "six" has no IPv6 address with a peer ("A peer B", or a /126 or /127) to route via`}},
		{"pmtudisc on ip6ip6", "[tunnel.six]\nmode = \"ip6ip6\"\nlocal = \"2001:db8::1\"\nremote = \"2001:db8::2\"\npmtudisc = false\nttl = 64\n", []string{
			`t.toml:5:12: tunnel.six.pmtudisc: only ipip, gre and sit tunnels have path-MTU discovery to set (the kernel's ip6tnl has no such parameter)`}},
		{"rules the kernel takes for the same", "[tables]\nt = 42\n[[rule]]\nfrom = \"10.0.0.0/8\"\ntable = \"t\"\npriority = 20000\n[[rule]]\ntable = \"t\"\npriority = 20000\n[[rule]]\nfrom = \"10.1.0.0/16\"\ntable = \"t\"\npriority = 20000\n[[rule]]\nfrom = \"10.0.0.0/8\"\ntable = \"t\"\niif = \"eth0\"\npriority = 20000\n", []string{
			`t.toml:9:12: rule[1].priority: at the same priority the kernel can take this rule for rule[0] (a from or to left out matches any): give it another priority`,
			`t.toml:13:12: rule[2].priority: at the same priority the kernel can take this rule for rule[1] (a from or to left out matches any): give it another priority`}},
		{"rule given twice without a priority", "[tables]\na = 42\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"a\"\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"a\"\n", []string{
			"t.toml:6:1: rule[1]: same selectors and table as rule[0] (line 3): tunneld would add the rule twice, at two priorities (drop one)"}},
		{"rule given twice without a priority, as the kernel keeps it", "[[rule]]\nto = \"0.0.0.0/0\"\niif = \"eth1\"\nfwmark = \"0/0\"\ntable = 42\n[[rule]]\niif = \"eth1\"\ntable = 42\n[[rule]]\niif = \"eth1\"\ntable = 42\nfamily = \"ipv6\"\n[[rule]]\niif = \"eth1\"\ntable = 43\n[[rule]]\niif = \"eth1\"\nfwmark = 1\ntable = 42\n[[rule]]\niif = \"eth1\"\ntable = 42\npriority = 20500\n", []string{
			"t.toml:6:1: rule[1]: same selectors and table as rule[0] (line 1): tunneld would add the rule twice, at two priorities (drop one)",
			"t.toml:20:1: rule[5]: same selectors and table as rule[0] (line 1): tunneld would add the rule twice, at two priorities (drop one)"}},
		{"the same rule at two explicit priorities, then without one", "[[rule]]\nfrom = \"10.0.0.3\"\ntable = 42\npriority = 20001\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = 42\npriority = 20002\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = 42\n", []string{
			"t.toml:9:1: rule[2]: same selectors and table as rule[0] (line 1): tunneld would add the rule twice, at two priorities (drop one)"}},
		{"rules without a priority beyond the band", "[global]\nrule_priority_min = 32000\nrule_priority_max = 32001\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"main\"\n", []string{
			"t.toml:10:1: rule[2]: no free priority left for it in tunneld's rule band 32000–32001 (global.rule_priority_min/max): widen the band"}},
		{"rules with and without a priority beyond the band", "[global]\nrule_priority_min = 100\nrule_priority_max = 102\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"main\"\npriority = 101\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"main\"\npriority = 101\n[[rule]]\nfrom = \"10.0.0.4\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.5\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.6\"\ntable = \"main\"\n", []string{
			"t.toml:18:1: rule[4]: no free priority left for it in tunneld's rule band 100–102 (global.rule_priority_min/max): widen the band",
			"t.toml:21:1: rule[5]: no free priority left for it in tunneld's rule band 100–102 (global.rule_priority_min/max): widen the band"}},
		{"rules filling the band, two at one priority", "[global]\nrule_priority_min = 32000\nrule_priority_max = 32001\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"main\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"main\"\npriority = 32001\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"main\"\npriority = 32001\n", nil},
		{"onlink without dev", "[[route]]\nto = \"10.9.0.0/16\"\nvia = \"172.16.0.1\"\nonlink = true\n", []string{
			"t.toml:4:10: route[0].onlink: needs dev, the link the gateway is on"}},
		{"fwmark with bits outside its mask", "[[rule]]\nfwmark = \"0x100/0xff\"\ntable = 42\n[[rule]]\nfwmark = \"0xffffffff/0\"\ntable = 43\n", []string{
			`t.toml:2:10: rule[0].fwmark: "0x100/0xff" has mark bits outside the mask, which the kernel ignores (give the mask the mark's bits: 0x100/0x1ff)`,
			`t.toml:5:10: rule[1].fwmark: "0xffffffff/0" has mark bits outside the mask, which the kernel ignores (give the mask the mark's bits: 0xffffffff/0xffffffff)`}},
		{"inline route with errors", "route = [\n  { to = \"10.1.0.0/16\", dev = \"eth0\" },\n  { to = \"10.2.0.0/33\", dev = \"eth0\", bogus = 1 },\n]\n", []string{
			`t.toml:3:10: route[1].to: "10.2.0.0/33" is not a prefix`,
			`t.toml:3:39: route[1].bogus: unknown option (known: to, type, via, dev, onlink, metric, table, src)`}},
		{"a list that is not of tables", "route = [1, 2]\n", []string{
			`t.toml:1:9: route: must be repeated sections ([[route]]), not a list`}},
		{"tunnel follows itself", "[tunnel.self]\nmode = \"ipip\"\nlocal = \"self\"\nremote = \"192.0.2.2\"\n", []string{
			`t.toml:3:9: tunnel.self.local: the tunnel cannot take its local address from itself`}},
		{"tunnel bound to itself", "[tunnel.b]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\ndev = \"b\"\n", []string{
			`t.toml:5:7: tunnel.b.dev: the tunnel cannot be bound to itself (dev names the device its packets leave by)`}},
		{"route family vs tunnel", moe + "[[route]]\nto = \"fd00::/8\"\ndev = \"moe\"\n", []string{
			`t.toml:8:7: route[0].dev: tunnel "moe" (mode ipip) does not carry IPv6`}},
		{"route host bits", "[[route]]\nto = \"10.0.0.1/24\"\ndev = \"eth0\"\n", []string{
			`t.toml:2:6: route[0].to: "10.0.0.1/24" has host bits set (did you mean 10.0.0.0/24?)`}},
		{"route without dev or via", "[[route]]\nto = \"10.0.0.0/24\"\n", []string{"t.toml:1:1: route[0]: a route needs dev, via or both"}},
		{"unreachable route with dev", "[[route]]\nto = \"2001:db8::/48\"\ntype = \"unreachable\"\ndev = \"eth0\"\n", []string{
			"t.toml:4:7: route[0].dev: an unreachable route has no dev"}},
		{"blackhole route with via", "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"blackhole\"\nvia = \"192.0.2.1\"\n", []string{
			"t.toml:4:7: route[0].via: a blackhole route has no via"}},
		{"prohibit route onlink", "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"prohibit\"\nonlink = true\n", []string{
			"t.toml:4:10: route[0].onlink: a prohibit route has no onlink"}},
		{"unreachable route with src", "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"unreachable\"\nsrc = \"192.0.2.1\"\n", []string{
			"t.toml:4:7: route[0].src: an unreachable route has no src"}},
		{"unreachable route via a tunnel's peer", moe + "[[route]]\nto = \"10.9.0.0/16\"\ntype = \"unreachable\"\nvia = \"peer\"\ndev = \"moe\"\nonlink = true\nmetric = 5\ntable = 42\n", []string{
			"t.toml:9:7: route[0].via: an unreachable route has no via",
			"t.toml:10:7: route[0].dev: an unreachable route has no dev",
			"t.toml:11:10: route[0].onlink: an unreachable route has no onlink"}},
		{"unknown route type", "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"unreachabel\"\n", []string{
			`t.toml:3:8: route[0].type: must be "unicast", "unreachable", "blackhole" or "prohibit", not "unreachabel"`}},
		{"route type not a string", "[[route]]\nto = \"10.0.0.0/8\"\ntype = 7\n", []string{
			"t.toml:3:8: route[0].type: must be a string, not the integer 7"}},
		{"unicast route type still needs dev or via", "[[route]]\nto = \"10.0.0.0/8\"\ntype = \"unicast\"\n", []string{
			"t.toml:1:1: route[0]: a route needs dev, via or both"}},
		{"unreachable route in the place of a unicast one", "[[route]]\nto = \"2001:db8::/48\"\ndev = \"eth0\"\n[[route]]\nto = \"2001:db8::/48\"\ntype = \"unreachable\"\n", []string{
			"t.toml:5:6: route[1].to: same destination, table and metric as route[0] (line 1): the kernel keeps one route for them (give one a different metric)"}},
		{"forward unknown tunnel", "[[forward]]\ntunnel = \"larry\"\ndirection = \"in\"\n", []string{
			`t.toml:2:10: forward[0].tunnel: unknown tunnel "larry"`}},
		{"forward port without proto", moe + "[[forward]]\ntunnel = \"moe\"\ndirection = \"in\"\ndport = 80\n", []string{
			"t.toml:9:9: forward[0].dport: ports need proto tcp, udp or sctp"}},
		{"redirect without port", "[[redirect]]\niif = \"eth0\"\n", []string{"t.toml:1:1: redirect[0]: missing option port"}},
		{"proxy_arp name", "[global]\nproxy_arp = [\"eth0\", \"a/b\"]\n", []string{
			`t.toml:2:22: global.proxy_arp[1]: interface name "a/b" contains '/' or ':'`}},
		{"filter lists with an item twice", "[tunnel.Moe]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nallowed_sources = [\"10.1.0.0/16\", \"10.1.0.0/16\"]\n[[forward]]\ntunnel = \"Moe\"\ndirection = \"in\"\nsrc = [\"10.0.0.0/8\", \"10.0.0.0/8\"]\ndst = [\"10.2.0.0/16\", \"10.3.0.0/16\", \"10.2.0.0/16\"]\nproto = [\"tcp\", \"6\"]\ndport = [22, 80, 22]\n[[masquerade]]\nsrc = [\"10.4.0.0/16\", \"10.4.0.0/16\"]\noif = \"eth0\"\n", []string{
			"t.toml:5:35: tunnel.Moe.allowed_sources[1]: 10.1.0.0/16 is listed twice",
			"t.toml:9:22: forward[0].src[1]: 10.0.0.0/8 is listed twice",
			"t.toml:10:38: forward[0].dst[2]: 10.2.0.0/16 is listed twice",
			"t.toml:11:17: forward[0].proto[1]: protocol 6 is listed twice",
			"t.toml:12:18: forward[0].dport[2]: port 22 is listed twice",
			"t.toml:14:23: masquerade[0].src[1]: 10.4.0.0/16 is listed twice"}},
		{"proxy_arp twice", "[global]\nproxy_arp = [\"lo\", \"eth0\", \"lo\"]\n", []string{
			`t.toml:2:28: global.proxy_arp[2]: interface lo is listed twice`}},
		{"empty band", "[global]\nrule_priority_min = 300\nrule_priority_max = 200\n", []string{
			"t.toml:3:21: global.rule_priority_max: band is empty: rule_priority_min 300 is above rule_priority_max 200"}},
		{"duration", "[global]\nresync_interval = \"soon\"\n", []string{
			`t.toml:2:19: global.resync_interval: "soon" is not a duration (e.g. "30s", "5m")`}},
		{"unknown mode: misspelt options still reported, no unknown tunnel", "[tunnel.moe]\nmode = \"ipipx\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\ntll = 3\n" +
			"[[route]]\nto = \"default\"\nvia = \"peer\"\ndev = \"moe\"\n[[forward]]\ntunnel = \"moe\"\ndirection = \"in\"\n", []string{
			`t.toml:2:8: tunnel.moe.mode: unknown mode "ipipx" (want ipip, gre, sit, ipip6 or ip6ip6)`,
			"t.toml:5:1: tunnel.moe.tll: unknown option (did you mean ttl?)"}},
		// netifd's and ip's names (packaging/README.md's mapping) say
		// what to write, instead of listing the 18 known options; a
		// tester's netifd section, as it would be carried over.
		{"netifd's option names", "[tunnel.moe]\nproto = \"ipip\"\npeeraddr = \"192.0.2.2\"\nipaddr = \"192.0.2.42\"\ntunlink = \"wan\"\ndf = false\n", []string{
			`t.toml:2:1: tunnel.moe.proto: unknown option (netifd's name): write mode = "ipip"`,
			`t.toml:3:1: tunnel.moe.peeraddr: unknown option (netifd's name): write remote = "192.0.2.2"`,
			"t.toml:4:1: tunnel.moe.ipaddr: unknown option (netifd's name): write local for the outer address, or address for the tunnel's own (netifd's static interface's ipaddr)",
			"t.toml:5:1: tunnel.moe.tunlink: unknown option (netifd's name): write dev, naming the Linux device, not netifd's interface (eth0.2 or pppoe-wan: ifstatus wan shows it as l3_device)",
			"t.toml:6:1: tunnel.moe.df: unknown option (netifd's name): write pmtudisc = false"}},
		{"netifd's and ip's option names beside a mode", moe + "proto = \"6in4\"\ndf = true\nnopmtudisc = true\nhoplimit = 64\ntclass = 0\nip6addr = \"2001:db8::1/64\"\nnetmask = \"255.255.255.0\"\ntype = \"ip6tnl\"\n", []string{
			`t.toml:6:1: tunnel.moe.proto: unknown option (netifd's name): write mode = "sit"`,
			"t.toml:7:1: tunnel.moe.df: unknown option (netifd's name): write pmtudisc = true",
			"t.toml:8:1: tunnel.moe.nopmtudisc: unknown option (ip's word): write pmtudisc = false",
			"t.toml:9:1: tunnel.moe.hoplimit: unknown option (ip's name): write ttl (the outer hop limit of ipip6 and ip6ip6)",
			"t.toml:10:1: tunnel.moe.tclass: unknown option (ip's name): write tos (the outer traffic class of ipip6 and ip6ip6)",
			"t.toml:11:1: tunnel.moe.ip6addr: unknown option (netifd's name): write address (an IPv6 address on a sit tunnel)",
			`t.toml:12:1: tunnel.moe.netmask: unknown option (netifd's name): write the length in address: address = "A/LEN"`,
			`t.toml:13:1: tunnel.moe.type: unknown option (ip's word): write mode = "ipip6" (IPv4 in IPv6) or "ip6ip6" (IPv6 in IPv6)`}},
		{"a key in ip's dotted form", strings.Replace(moe, `"ipip"`, `"gre"`, 1) + "key = \"1.2.3.4\"\nikey = 7\nokey = 7\n", []string{
			`t.toml:6:7: tunnel.moe.key: must be an integer, not the string "1.2.3.4" (ip's dotted form: write key = 16909060)`}},
		{"netifd's and the kernel's mode names", strings.Replace(moe, `"ipip"`, `"6in4"`, 1) + strings.Replace(strings.Replace(moe, "moe", "aftr", 1), `"ipip"`, `"ip6tnl"`, 1) +
			strings.Replace(strings.Replace(moe, "moe", "ds", 1), `"ipip"`, `"dslite"`, 1) + strings.Replace(strings.Replace(moe, "moe", "big", 1), `"ipip"`, `"GRE"`, 1), []string{
			`t.toml:2:8: tunnel.moe.mode: unknown mode "6in4" (netifd's name): write "sit"`,
			`t.toml:7:8: tunnel.aftr.mode: unknown mode "ip6tnl" (the kernel's name for both): write "ipip6" (IPv4 in IPv6) or "ip6ip6" (IPv6 in IPv6)`,
			`t.toml:12:8: tunnel.ds.mode: unknown mode "dslite" (netifd's name for IPv4 in IPv6): write "ipip6"`,
			`t.toml:17:8: tunnel.big.mode: unknown mode "GRE" (modes are lower case): write "gre"`}},
		// [tunnel.wan.6in4] is a table 6in4 in a tunnel wan: one error
		// that says so, not "wan misses mode" and "6in4 is unknown".
		{"dotted tunnel name", "[tunnel.wan.6in4]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n[[route]]\nto = \"::/0\"\ndev = \"wan.6in4\"\n", []string{
			`t.toml:1:1: tunnel.wan: a tunnel name with a dot needs quotes: [tunnel."wan.6in4"]`}},
		{"dotted tunnel name, two dots", "[tunnel.a.b.c]\nmode = \"sit\"\n", []string{
			`t.toml:1:1: tunnel.a: a tunnel name with a dot needs quotes: [tunnel."a.b.c"]`}},
		{"dotted tunnel name quoted", "[tunnel.\"wan.6in4\"]\nmode = \"sit\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n", nil},
		{"a table in a tunnel with a mode", moe + "[tunnel.moe.x]\nttl = 1\n", []string{
			"t.toml:6:1: tunnel.moe.x: unknown option (known: mode, local, remote, dev, address, mtu, ttl, tos, pmtudisc, key, ikey, okey, encaplimit, host_route, allowed_sources, forward, mss_clamp, hook)"}},
		// A top-level table is a section, and a slip of a known one
		// is named.
		{"unknown section", "[colours]\nred = 1\n", []string{
			"t.toml:1:1: colours: unknown section (known: global, tables, tunnel, route, rule, forward, masquerade, redirect)"}},
		{"misspelt sections", "[tunnels.moe]\nmode = \"ipip\"\n[[routes]]\nto = \"default\"\n[tabels]\nvpn = 1\n[Global]\n[tunel.x]\n", []string{
			"t.toml:1:1: tunnels: unknown section (did you mean tunnel?)",
			"t.toml:3:1: routes: unknown section (did you mean route?)",
			"t.toml:5:1: tabels: unknown section (did you mean tables?)",
			"t.toml:7:1: Global: unknown section (did you mean global?)",
			"t.toml:8:1: tunel: unknown section (did you mean tunnel?)"}},
		{"a global option above the first header", "ip_forward = true\n[global]\n", []string{
			"t.toml:1:1: ip_forward: an option of [global]: write it below a [global] header (above the first header, it is in no section)"}},
		{"missing mode: no unknown tunnel", "[tunnel.moe]\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n" +
			"[[forward]]\ntunnel = \"moe\"\ndirection = \"in\"\n", []string{
			"t.toml:1:1: tunnel.moe: missing option mode (ipip, gre, sit, ipip6 or ip6ip6)"}},
		{"tunnel section without a name", "[tunnel]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\n", []string{
			`t.toml:2:8: tunnel.mode: the string "ipip" is not a section: [tunnel] holds named sections ([tunnel.NAME]), not options`,
			`t.toml:3:9: tunnel.local: the string "192.0.2.1" is not a section: [tunnel] holds named sections ([tunnel.NAME]), not options`}},
		{"duplicate address after an invalid one", strings.Replace(moe, `address = "10.0.0.1/30"`, `address = ["x", "10.0.0.1/30", "10.0.0.1/30"]`, 1), []string{
			`t.toml:5:12: tunnel.moe.address[0]: "x" is not an address (want A/LEN or A peer B)`,
			"t.toml:5:32: tunnel.moe.address[2]: address 10.0.0.1 is listed twice"}},
		{"duplicate table number: no unknown table for its users", "[tables]\na = 42\nb = 42\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"a\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"b\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\ntable = \"b\"\n", []string{
			`t.toml:3:5: tables.b: table number 42 is already used by table "a"`}},
		{"refused tables: no unknown table for their users, an unknown one still said", "[tables]\nr = 254\nz = 0\n\"9x\" = 7\n[[rule]]\nfrom = \"10.0.0.1\"\ntable = \"r\"\n[[rule]]\nfrom = \"10.0.0.2\"\ntable = \"z\"\n[[rule]]\nfrom = \"10.0.0.3\"\ntable = \"9x\"\n[[rule]]\nfrom = \"10.0.0.4\"\ntable = \"q\"\n", []string{
			`t.toml:2:5: tables.r: table number 254 is reserved for table "main"`,
			"t.toml:3:5: tables.z: 0 is out of range 1–4294967295",
			`t.toml:4:1: tables.9x: table name "9x" must start with a letter and hold only letters, digits, '-' and '_'`,
			`t.toml:16:9: rule[3].table: unknown table "q" (name it in [tables])`}},
		{"duplicate table number, names out of file order", "[tables]\nzed = 42\nabc = 42\n", []string{
			`t.toml:3:7: tables.abc: table number 42 is already used by table "zed"`}},
		{"same route twice", moe + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n[[route]]\nto = \"10.9.0.0/16\"\nvia = \"10.0.0.2\"\n[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\nmetric = 10\n", []string{
			"t.toml:10:6: route[1].to: same destination, table and metric as route[0] (line 6): the kernel keeps one route for them (give one a different metric)"}},
		{"forward with an empty tunnel", moe + "[[forward]]\ntunnel = \"\"\ndirection = \"in\"\naction = \"drop\"\n", []string{
			"t.toml:7:10: forward[0].tunnel: is empty: name one of the configured tunnels"}},
		{"byte-order mark", "\uFEFF[global]\nip_forward = 1\n", []string{
			"t.toml:2:14: global.ip_forward: must be true or false, not the integer 1"}},
		{"date for a number", moe + "mtu = 1979-05-27\n", []string{
			"t.toml:6:7: tunnel.moe.mtu: must be an integer, not a date or time"}},
		{"fallback device name", strings.Replace(moe, "tunnel.moe", "tunnel.tunl0", 1), []string{
			"t.toml:1:1: tunnel.tunl0: tunl0 is the fallback device the kernel's ipip module creates (tunneld keeps it down): give the tunnel another name"}},
		{"hook with an argument", moe + "hook = \"/etc/tunneld/he.sh moved\"\n", []string{
			`t.toml:6:8: tunnel.moe.hook: "/etc/tunneld/he.sh moved" holds whitespace or a control character: hook is the path of one program, without arguments (it reads what changed from its environment)`}},
		{"hook relative", moe + "hook = \"he.sh\"\n", []string{
			`t.toml:6:8: tunnel.moe.hook: "he.sh" is not an absolute path: give the program's full path (/etc/tunneld/NAME.sh)`}},
		{"hook empty", moe + "hook = \"\"\n", []string{
			`t.toml:6:8: tunnel.moe.hook: "" is not an absolute path: give the program's full path (/etc/tunneld/NAME.sh)`}},
		{"hook a directory", moe + "hook = \"/etc/tunneld/\"\n", []string{
			`t.toml:6:8: tunnel.moe.hook: "/etc/tunneld/" names a directory: give the path of a program`}},
		{"hook not a string", moe + "hook = [\"/bin/true\"]\n", []string{
			`t.toml:6:8: tunnel.moe.hook: must be a string, not a list`}},
		{"hook not checked for existence", moe + "hook = \"/nonexistent/he-update.sh\"\n", nil},
		{"all errors in one pass", moe + "ttl = 0\nmtu = 1\n[[route]]\nto = \"x\"\ndev = \"moe\"\n", []string{
			"t.toml:6:7: tunnel.moe.ttl: 0 is out of range 1–255",
			"t.toml:7:7: tunnel.moe.mtu: 1 is out of range 68–65535",
			`t.toml:9:6: route[0].to: "x" is not an address or prefix`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.src))
			var got []string
			if err != nil {
				var es Errors
				if !errors.As(err, &es) {
					t.Fatalf("error %v is not Errors", err)
				}
				for _, e := range es {
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHook: the hook is kept as written, one absolute path; a tunnel
// without one has none.
func TestHook(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"none", moe, ""},
		{"script", moe + "hook = \"/etc/tunneld/he-update.sh\"\n", "/etc/tunneld/he-update.sh"},
		{"not cleaned", moe + "hook = \"/usr/local/../bin/x\"\n", "/usr/local/../bin/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.TunnelByName("moe").Hook); diff != "" {
				t.Errorf("hook (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIgnoredFilterWarning: with firewall = false the sections and
// tunnel options only the nftables table does are named in one warning,
// at firewall; the file stays valid. Options at their defaults, or
// saying what firewall = false does anyway, are not named.
func TestIgnoredFilterWarning(t *testing.T) {
	const off = "[global]\nfirewall = false\n"
	filter := "[[forward]]\ntunnel = \"moe\"\ndirection = \"in\"\n[[forward]]\ntunnel = \"moe\"\ndirection = \"out\"\n" +
		"[[masquerade]]\noif = \"eth0\"\n[[redirect]]\nport = 80\n"
	testWarnings(t, []warningCase{
		{"firewall on", moe + "forward = \"drop\"\n" + filter, nil},
		{"nothing for the filter", off + moe, nil},
		{"options at their defaults or off", off + moe + "forward = \"accept\"\nmss_clamp = false\n", nil},
		{"sections", off + moe + filter, []string{
			`t.toml:2:12: global.firewall: is false, so these are ignored (only tunneld's nftables table does them): [[forward]] (2 sections), [[masquerade]] (1 section), [[redirect]] (1 section)`}},
		{"tunnel options", off + moe + "forward = \"drop\"\nallowed_sources = \"10.0.0.0/8\"\nmss_clamp = true\n" +
			strings.Replace(strings.Replace(moe, "tunnel.moe", "tunnel.larry", 1), "192.0.2.2", "192.0.2.3", 1) + "forward = \"drop\"\n[[redirect]]\nport = 80\n", []string{
			`t.toml:2:12: global.firewall: is false, so these are ignored (only tunneld's nftables table does them): [[redirect]] (1 section), tunnel "larry" forward = "drop", tunnel "moe" allowed_sources, tunnel "moe" forward = "drop", tunnel "moe" mss_clamp = true`}},
	})
}

// warningCase is a file and the warnings Parse gives for it.
type warningCase struct {
	name, src string
	want      []string
}

// testWarnings parses each case's file, which must be valid, and
// compares its warnings.
func testWarnings(t *testing.T, cases []warningCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInlineTables: an array of inline tables is the same configuration
// as repeated sections, as TOML defines it.
func TestInlineTables(t *testing.T) {
	sections, err := Parse("a.toml", []byte("[[route]]\nto = \"10.1.0.0/16\"\ndev = \"eth0\"\n[[route]]\nto = \"10.2.0.0/16\"\nvia = \"192.0.2.1\"\n[[rule]]\nfrom = \"10.0.0.0/8\"\ntable = 42\n"))
	if err != nil {
		t.Fatal(err)
	}
	inline, err := Parse("b.toml", []byte("route = [{ to = \"10.1.0.0/16\", dev = \"eth0\" }, { to = \"10.2.0.0/16\", via = \"192.0.2.1\" }]\nrule = [{ from = \"10.0.0.0/8\", table = 42 }]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sections.Routes, inline.Routes, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("routes (-sections +inline):\n%s", diff)
	}
	if diff := cmp.Diff(sections.Rules, inline.Rules, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("rules (-sections +inline):\n%s", diff)
	}
}

// TestRouteTypes: [[route]] type, with the options an unreachable,
// blackhole or prohibit route may have (to, table, metric; onlink only
// as false), as the route it describes.
func TestRouteTypes(t *testing.T) {
	tests := []struct {
		name, src string
		want      Route
	}{
		{"unicast by default", "to = \"10.0.0.0/8\"\ndev = \"eth0\"\n",
			Route{To: netip.MustParsePrefix("10.0.0.0/8"), Dev: "eth0", Table: 254}},
		{"unicast said", "to = \"10.0.0.0/8\"\ndev = \"eth0\"\ntype = \"unicast\"\n",
			Route{To: netip.MustParsePrefix("10.0.0.0/8"), Dev: "eth0", Table: 254}},
		{"unreachable IPv6 prefix", "to = \"2001:db8:100::/48\"\ntype = \"unreachable\"\n",
			Route{To: netip.MustParsePrefix("2001:db8:100::/48"), Table: 254, Type: model.RouteUnreachable}},
		{"blackhole in a table with a metric", "to = \"10.0.0.0/8\"\ntype = \"blackhole\"\ntable = 42\nmetric = 300\nonlink = false\n",
			Route{To: netip.MustParsePrefix("10.0.0.0/8"), Table: 42, Metric: 300, Type: model.RouteBlackhole}},
		{"prohibit default is IPv4", "to = \"default\"\ntype = \"prohibit\"\ntable = 1000\n",
			Route{To: netip.MustParsePrefix("0.0.0.0/0"), Table: 1000, Type: model.RouteProhibit}},
		{"unreachable IPv6 default", "to = \"::/0\"\ntype = \"unreachable\"\n",
			Route{To: netip.MustParsePrefix("::/0"), Table: 254, Type: model.RouteUnreachable}},
		{"host", "to = \"192.0.2.7\"\ntype = \"prohibit\"\n",
			Route{To: netip.MustParsePrefix("192.0.2.7/32"), Table: 254, Type: model.RouteProhibit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte("[[route]]\n"+tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]Route{tt.want}, c.Routes, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

// dualWAN is a configuration of two tunnels of mode from any local
// address to one remote, up1 bound to dev1 and up2 to dev2, up2 with the
// address given (up1's is the same with a 0 where up2's has a 1).
func dualWAN(mode, dev1, dev2, addr2 string) string {
	remote, addr1 := "198.51.100.7", strings.Replace(addr2, "1.1", "0.1", 1)
	if strings.Contains(addr2, ":") {
		remote, addr1 = "2001:db8::7", strings.Replace(addr2, ":1::", ":0::", 1)
	}
	tunnel := func(name, dev, addr string) string {
		return fmt.Sprintf("[tunnel.%s]\nmode = %q\nlocal = \"any\"\nremote = %q\ndev = %q\naddress = %q\n", name, mode, remote, dev, addr)
	}
	return tunnel("up1", dev1, addr1) + tunnel("up2", dev2, addr2)
}

// TestNearTunnelWarning: a route's dev, or a rule's iif or oif, that is
// no tunnel of the file but another case or one letter off one is
// warned about where it is written; a device name far from every tunnel
// (eth0, wan) is not (a tester's dev = "moe" for tunnel Moe left the
// table empty and the traffic went out by the WAN, without a word).
func TestNearTunnelWarning(t *testing.T) {
	testWarnings(t, []warningCase{
		{"the tunnel", moe + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"moe\"\n", nil},
		// Not a name, but a warning of the same kind (a tester's).
		{"allowed_sources empty", moe + "allowed_sources = []\n", []string{
			`t.toml:6:19: tunnel.moe.allowed_sources: is empty: every packet from the tunnel is dropped (leave the option out for the default, its peers and the destinations routed into it; ["0.0.0.0/0", "::/0"] allows any source)`}},
		{"other devices", moe + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"eth0\"\n[[rule]]\niif = \"wan\"\ntable = 42\n", nil},
		// A digit of its own names another device (a tester's tun0
		// beside tunnel tun1): no slip.
		{"a digit off", strings.ReplaceAll(moe, "moe", "tun1") + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"tun0\"\n[[rule]]\niif = \"tun\"\noif = \"tun12\"\ntable = 42\n", nil},
		// A letter for the digit is a slip (a tester's O for 0).
		{"a letter for a digit", strings.ReplaceAll(moe, "moe", "tun0") + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"tunO\"\n", []string{
			`t.toml:8:7: route[0].dev: "tunO" is not one of the file's tunnels: did you mean "tun0"? (names are case-sensitive; while no device has that name, a route through it cannot be made, and a rule on it matches nothing)`}},
		{"another case", moe + "[[route]]\nto = \"10.9.0.0/16\"\ndev = \"Moe\"\n", []string{
			`t.toml:8:7: route[0].dev: "Moe" is not one of the file's tunnels: did you mean "moe"? (names are case-sensitive; while no device has that name, a route through it cannot be made, and a rule on it matches nothing)`}},
		{"a letter off, in a rule", moe + "[[rule]]\niif = \"mo\"\noif = \"moes\"\ntable = 42\n", []string{
			`t.toml:7:7: rule[0].iif: "mo" is not one of the file's tunnels: did you mean "moe"? (names are case-sensitive; while no device has that name, a route through it cannot be made, and a rule on it matches nothing)`,
			`t.toml:8:7: rule[0].oif: "moes" is not one of the file's tunnels: did you mean "moe"? (names are case-sensitive; while no device has that name, a route through it cannot be made, and a rule on it matches nothing)`}},
	})
}

func TestOneEdit(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"moe", "moe", false}, {"moe", "moa", true}, {"moe", "mo", true}, {"moe", "moes", true}, {"moe", "xmoe", true},
		{"moe", "mxe", true}, {"moe", "eom", false}, {"moe", "m", false}, {"", "a", true}, {"wan", "Moe", false},
	} {
		if got := oneEdit(tt.a, tt.b); got != tt.want {
			t.Errorf("oneEdit(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestDidYouMean: one known name a slip away is named; none when two are.
func TestDidYouMean(t *testing.T) {
	known := []string{"key", "ikey", "okey", "ttl", "tos", "tunnel"}
	for _, tt := range []struct{ in, want string }{
		{"tll", "ttl"},        // swapped
		{"tunnels", "tunnel"}, // a trailing s
		{"tunel", "tunnel"},   // a letter dropped
		{"tunnal", "tunnel"},  // a letter changed
		{"Tunnel", "tunnel"},
		{"TUNNEL", "tunnel"},
		{"keys", "key"},
		{"xkey", ""}, // key, ikey and okey are all one edit away
		{"colour", ""},
		{"t", ""},
		{"", ""},
	} {
		if got := didYouMean(tt.in, known); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRouteThrough: a route goes through the tunnel its dev names, or,
// with a gateway and no dev, the one whose subnet holding the gateway is
// the narrowest (its peer before a prefix), as the kernel's lookup of
// the gateway goes: a tester's tunnel a (a /24) listed before b (a /30
// inside it) took b's route. Its dev stays as written.
func TestRouteThrough(t *testing.T) {
	const tunnels = "[tunnel.a]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\naddress = \"10.255.0.1/24\"\n" +
		"[tunnel.b]\nmode = \"ipip\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\naddress = \"10.255.0.5/30\"\n" +
		"[tunnel.c]\nmode = \"gre\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.4\"\naddress = \"10.255.0.9 peer 10.255.0.200\"\n"
	for _, tt := range []struct{ name, route, through, dev string }{
		{"dev names it", "dev = \"a\"\nvia = \"10.255.0.6\"\n", "a", "a"},
		{"the narrower subnet", "via = \"10.255.0.6\"\n", "b", ""},
		{"the wider one", "via = \"10.255.0.77\"\n", "a", ""},
		{"a peer", "via = \"10.255.0.200\"\n", "c", ""},
		{"no tunnel's", "via = \"192.0.2.254\"\n", "", ""},
		{"another device", "dev = \"eth0\"\n", "", "eth0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tunnels+"[[route]]\nto = \"10.20.0.0/16\"\n"+tt.route))
			if err != nil {
				t.Fatal(err)
			}
			if r := c.Routes[0]; r.Through != tt.through || r.Dev != tt.dev {
				t.Errorf("through %q, dev %q; want %q, %q", r.Through, r.Dev, tt.through, tt.dev)
			}
		})
	}
}
