package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// sysctl is an observed sysctl: its value, the recorded original ("": no
// record) and the values the record calls tunneld's (none: a record an
// older version wrote, or no record).
func sysctl(path, value, original string, ours ...string) model.Sysctl {
	return model.Sysctl{Path: path, Value: value, Original: original, Ours: ours}
}

// TestDiffForwardingCopies: once ip_forward (or IPv6 forwarding) is no
// longer wanted, it is restored, and then only the interfaces whose value
// the kernel's copy of the restored value leaves wrong are written: back
// to their record, or to the value someone else set since tunneld's write
// was copied onto them. One that appeared since with tunneld's value (late)
// ends as "default" does, here with the kernel's copy and no write
// (TestDiffForwardingNewInterfaces has more). A sysctl someone else
// changed since tunneld wrote it keeps their value, and the plan says so.
// While ip_forward is wanted the copies are left alone.
func TestDiffForwardingCopies(t *testing.T) {
	moe := model.Link{Name: "moe", Mode: model.ModeIPIP, MTU: 1480}
	// As tunneld leaves a box with lan forwarding and wan not, when it
	// has written ip_forward = 1 (0 before) and wan's proxy_arp = 1;
	// late and moe appeared since, gone went.
	applied := []model.Sysctl{
		sysctl("net/ipv4/conf/all/accept_redirects", "0", "1", "0"),
		sysctl("net/ipv4/conf/default/forwarding", "1", "0", "1"),
		sysctl("net/ipv4/conf/gone/forwarding", "", "0", "1"),
		sysctl("net/ipv4/conf/lan/forwarding", "1", "1", "1"),
		sysctl("net/ipv4/conf/late/forwarding", "1", ""),
		sysctl("net/ipv4/conf/moe/forwarding", "1", ""),
		sysctl("net/ipv4/conf/wan/forwarding", "1", "0", "1"),
		sysctl("net/ipv4/conf/wan/proxy_arp", "1", "0", "1"),
		sysctl("net/ipv4/ip_forward", "1", "0", "1"),
	}
	// with is applied with some values changed by someone else.
	with := func(changed map[string]string) model.State {
		s := model.State{Links: []model.Link{moe}}
		for _, x := range applied {
			if v, ok := changed[x.Path]; ok {
				x.Value = v
			}
			s.Sysctls = append(s.Sysctls, x)
		}
		return s
	}
	// What an admin's "sysctl -w net.ipv4.ip_forward=0" leaves: the
	// kernel copies it onto every interface.
	forwardOff := map[string]string{
		"net/ipv4/ip_forward": "0", "net/ipv4/conf/all/accept_redirects": "1", "net/ipv4/conf/default/forwarding": "0",
		"net/ipv4/conf/lan/forwarding": "0", "net/ipv4/conf/late/forwarding": "0", "net/ipv4/conf/moe/forwarding": "0",
		"net/ipv4/conf/wan/forwarding": "0",
	}
	tests := []struct {
		name       string
		have, want model.State
		out        string
	}{
		{"ip_forward still wanted", with(nil), model.State{Links: []model.Link{moe}, Sysctls: []model.Sysctl{
			sysctl("net/ipv4/ip_forward", "1", ""), sysctl("net/ipv4/conf/wan/proxy_arp", "1", "")}}, ``},
		{"down: only what the restore's copy leaves wrong is written", with(nil), model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
ip link del moe`},
		{"ip_forward dropped, the tunnel kept: its forwarding is the kernel's", with(nil), model.State{Links: []model.Link{moe}}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written`},
		{"lan's forwarding changed by hand: left as set", with(map[string]string{"net/ipv4/conf/lan/forwarding": "0"}), model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
# net.ipv4.conf.lan.forwarding was changed by someone else: left at 0
ip link del moe`},
		{"wan's forwarding changed by hand to its original: no word", with(map[string]string{"net/ipv4/conf/wan/forwarding": "0"}), model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
ip link del moe`},
		{"ip_forward changed by hand: left, and every interface as its copy left it", with(forwardOff), model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
# net.ipv4.ip_forward was changed by someone else: left at 0
ip link del moe`},
		{"ip_forward changed by hand, then lan", with(map[string]string{
			"net/ipv4/ip_forward": "0", "net/ipv4/conf/all/accept_redirects": "1", "net/ipv4/conf/default/forwarding": "0",
			"net/ipv4/conf/wan/forwarding": "0", "net/ipv4/conf/late/forwarding": "0", "net/ipv4/conf/wan/proxy_arp": "0",
		}), model.State{}, `
# net.ipv4.conf.wan.proxy_arp was changed by someone else: left at 0
# net.ipv4.ip_forward was changed by someone else: left at 0
ip link del moe`},
		{"a record an older version wrote: restored whatever the values", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv4/conf/lan/forwarding", "0", "1"), sysctl("net/ipv4/conf/wan/proxy_arp", "0", "1"),
			sysctl("net/ipv4/conf/wan/forwarding", "1", "0"), sysctl("net/ipv4/ip_forward", "0", "0"),
		}}, model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=1  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.wan.forwarding=0  # as before net.ipv4.ip_forward was written`},
		{"ip_forward already restored (a crash), copies left", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv4/conf/dmz/forwarding", "1", "0", "0"),
			sysctl("net/ipv4/conf/gone/forwarding", "", "0", "1"),
			sysctl("net/ipv4/conf/lan/forwarding", "0", "1", "1", "0"),
			sysctl("net/ipv4/conf/late/forwarding", "0", ""),
			sysctl("net/ipv4/conf/wan/forwarding", "0", "0", "0"),
		}}, model.State{}, `
# net.ipv4.conf.dmz.forwarding was changed by someone else: left at 1
# net.ipv4.conf.gone.forwarding is gone with its device: its original 0 is forgotten
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.wan.forwarding=0  # as before net.ipv4.ip_forward was written`},
		{"ipv6", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv6/conf/all/forwarding", "1", "0", "1"), sysctl("net/ipv6/conf/default/forwarding", "1", "0", "1"),
			sysctl("net/ipv6/conf/lan/forwarding", "1", "1", "1"),
		}}, model.State{}, `
sysctl -w net.ipv6.conf.all.forwarding=0  # original value
sysctl -w net.ipv6.conf.lan.forwarding=1  # as before net.ipv6.conf.all.forwarding was written`},
		// tunneld wrote 0 last (a reload), the original is 0: the
		// kernel copies the same value back onto nothing.
		{"ip_forward written back as it is: lan, set by hand, keeps its value unwritten", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv4/conf/lan/forwarding", "1", "0", "0"), sysctl("net/ipv4/conf/wan/forwarding", "0", "1", "0"),
			sysctl("net/ipv4/ip_forward", "0", "0", "0"),
		}}, model.State{}, `
sysctl -w net.ipv4.ip_forward=0  # original value
# net.ipv4.conf.lan.forwarding was changed by someone else: left at 1
sysctl -w net.ipv4.conf.wan.forwarding=1  # as before net.ipv4.ip_forward was written`},
		// Every write of IPv6 forwarding is copied, the same value too:
		// tunneld wrote 0 last (a reload), the original is 0.
		{"ipv6 written back as it is: its copy still overwrites lan's, set by hand", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv6/conf/all/forwarding", "0", "0", "0"), sysctl("net/ipv6/conf/lan/forwarding", "1", "0", "0"),
		}}, model.State{}, `
sysctl -w net.ipv6.conf.all.forwarding=0  # original value
sysctl -w net.ipv6.conf.lan.forwarding=1  # as someone else set it, which restoring net.ipv6.conf.all.forwarding overwrote`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.have, tt.want).String()
			want := strings.TrimPrefix(tt.out, "\n")
			if want != "" {
				want += "\n"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiffForwardingNewInterfaces: an interface that appeared while
// ip_forward (or IPv6 forwarding) was tunneld's, of which there is no
// record, took "default"'s value. With the value tunneld's write gave
// "default" it ends, once the forwarding sysctl is restored, as "default"
// does: usually the kernel's copy of the restored value, with no write
// and no line (never "as before": there was no before). With another
// value someone set it since, and it keeps it, with a line that says so
// where it ends unlike an interface that appeared with tunneld's value.
func TestDiffForwardingNewInterfaces(t *testing.T) {
	tests := []struct {
		name string
		have []model.Sysctl
		out  string
	}{
		// The tester's box: ip_forward 0, ip_forward = true, a veth
		// pair made while tunneld ran; before the fix they were
		// written back to 1 "as before net.ipv4.ip_forward was written".
		{"veth made while ip_forward was on: the restore's copy, no write", []model.Sysctl{
			sysctl("net/ipv4/conf/all/accept_redirects", "0", "1", "0"),
			sysctl("net/ipv4/conf/default/forwarding", "1", "0", "1"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/conf/l1p/forwarding", "1", ""),
			sysctl("net/ipv4/ip_forward", "1", "0", "1"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value`},
		{"ipv6: the same", []model.Sysctl{
			sysctl("net/ipv6/conf/all/forwarding", "1", "0", "1"),
			sysctl("net/ipv6/conf/default/forwarding", "1", "0", "1"),
			sysctl("net/ipv6/conf/l1/forwarding", "1", ""),
		}, `
sysctl -w net.ipv6.conf.all.forwarding=0  # original value`},
		// Set by hand to the restored value: nothing to write or say.
		{"one set to 0 by hand", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "1", "0", "1"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/conf/l2/forwarding", "0", ""),
			sysctl("net/ipv4/ip_forward", "1", "0", "1"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value`},
		// "default" was 1 beside ip_forward 0: an interface appearing
		// after the restore gets 1, and so does l1.
		{"default apart from ip_forward: as default ends", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "1", "1", "1"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/ip_forward", "1", "0", "1"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.default.forwarding=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.l1.forwarding=1  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written`},
		// ip_forward 1 and new interfaces not forwarding (default 0);
		// ip_forward = false: l1 came up with tunneld's 0 and keeps
		// it, as default does, though the restore copies 1; l2 was set
		// to 1 by hand and keeps it, with a line.
		{"ip_forward = false, default 0 before: l1 back to 0, l2 set by hand keeps 1", []model.Sysctl{
			sysctl("net/ipv4/conf/all/accept_redirects", "1", "0", "1"),
			sysctl("net/ipv4/conf/default/forwarding", "0", "0", "0"),
			sysctl("net/ipv4/conf/l1/forwarding", "0", ""),
			sysctl("net/ipv4/conf/l2/forwarding", "1", ""),
			sysctl("net/ipv4/ip_forward", "0", "1", "0"),
		}, `
sysctl -w net.ipv4.ip_forward=1  # original value
sysctl -w net.ipv4.conf.default.forwarding=0  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.l1.forwarding=0  # as net.ipv4.conf.default.forwarding, whose value it took when it appeared after net.ipv4.ip_forward was written
# net.ipv4.conf.l2.forwarding was set by someone else since net.ipv4.ip_forward was written: left at 1`},
		// Someone set default to 0 while ip_forward was tunneld's 1:
		// l1, made before, ends as default (their 0); l2, made after,
		// came up with their 0.
		{"default set to 0 by hand", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "0", "1", "1"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/conf/l2/forwarding", "0", ""),
			sysctl("net/ipv4/ip_forward", "1", "0", "1"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value
# net.ipv4.conf.default.forwarding was changed by someone else: left at 0`},
		// tunneld wrote 0 last, the original is 0: IPv6 copies the
		// write back all the same, over l2's 1 set by hand.
		{"ipv6 written back as it is: one set by hand is written back", []model.Sysctl{
			sysctl("net/ipv6/conf/all/forwarding", "0", "0", "0"),
			sysctl("net/ipv6/conf/default/forwarding", "0", "0", "0"),
			sysctl("net/ipv6/conf/l1/forwarding", "0", ""),
			sysctl("net/ipv6/conf/l2/forwarding", "1", ""),
		}, `
sysctl -w net.ipv6.conf.all.forwarding=0  # original value
sysctl -w net.ipv6.conf.l2.forwarding=1  # as someone else set it, which restoring net.ipv6.conf.all.forwarding overwrote`},
		// The admin's write of ip_forward was copied onto every
		// interface: whatever one has since is theirs.
		{"ip_forward changed by hand: each keeps what it has", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "0", "0", "1"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/conf/l2/forwarding", "0", ""),
			sysctl("net/ipv4/ip_forward", "0", "0", "1"),
		}, `
# net.ipv4.ip_forward was changed by someone else: left at 0`},
		// Stopped after the record was made ready for the write back
		// (ip_forward's ours has the 0 to come), before or after the
		// write: l1 is left to the copy as the first plan left it.
		{"a crash before the write back", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "1", "0", "1", "0"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/ip_forward", "1", "0", "1", "0"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value`},
		{"a crash after the write back", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "0", "0", "1", "0"),
			sysctl("net/ipv4/conf/l1/forwarding", "0", ""),
			sysctl("net/ipv4/ip_forward", "0", "0", "1", "0"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value`},
		// An older version's record has no ours: the values there are
		// taken as tunneld's.
		{"a record an older version wrote", []model.Sysctl{
			sysctl("net/ipv4/conf/default/forwarding", "1", "0"),
			sysctl("net/ipv4/conf/l1/forwarding", "1", ""),
			sysctl("net/ipv4/ip_forward", "1", "0"),
		}, `
sysctl -w net.ipv4.ip_forward=0  # original value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(model.State{Sysctls: tt.have}, model.State{}).String()
			want := strings.TrimPrefix(tt.out, "\n") + "\n"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if strings.Contains(got, "l1.forwarding=1  # as before") || strings.Contains(got, "l2.forwarding=1  # as before") {
				t.Errorf("a line says \"as before\" of an interface without a record:\n%s", got)
			}
		})
	}
}
