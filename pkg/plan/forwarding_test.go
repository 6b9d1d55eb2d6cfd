package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestDiffForwardingCopies: the interfaces' forwarding values that
// writing ip_forward overwrites are put back right after it is restored
// (recorded ones to their record, the others to what they have, but for
// tunneld's own links), and left alone while it is wanted.
func TestDiffForwardingCopies(t *testing.T) {
	moe := model.Link{Name: "moe", Mode: model.ModeIPIP, MTU: 1480}
	sysctl := func(path, value, original string) model.Sysctl {
		return model.Sysctl{Path: path, Value: value, Original: original}
	}
	applied := model.State{Links: []model.Link{moe}, Sysctls: []model.Sysctl{
		sysctl("net/ipv4/conf/all/accept_redirects", "0", "1"),
		sysctl("net/ipv4/conf/gone/forwarding", "", "0"),
		sysctl("net/ipv4/conf/lan/forwarding", "1", "1"),
		sysctl("net/ipv4/conf/late/forwarding", "1", ""),
		sysctl("net/ipv4/conf/moe/forwarding", "1", ""),
		sysctl("net/ipv4/conf/wan/proxy_arp", "1", "0"),
		sysctl("net/ipv4/ip_forward", "1", "0"),
	}}
	tests := []struct {
		name       string
		have, want model.State
		out        string
	}{
		{"ip_forward still wanted", applied, model.State{Links: []model.Link{moe}, Sysctls: []model.Sysctl{
			sysctl("net/ipv4/ip_forward", "1", ""), sysctl("net/ipv4/conf/wan/proxy_arp", "1", "")}}, ``},
		{"down", applied, model.State{}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.all.accept_redirects=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.gone.forwarding=0  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.late.forwarding=1  # as before net.ipv4.ip_forward was written
ip link del moe`},
		{"ip_forward dropped, the tunnel kept: its forwarding is the kernel's", applied, model.State{Links: []model.Link{moe}}, `
sysctl -w net.ipv4.conf.wan.proxy_arp=0  # original value
sysctl -w net.ipv4.ip_forward=0  # original value
sysctl -w net.ipv4.conf.all.accept_redirects=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.gone.forwarding=0  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written
sysctl -w net.ipv4.conf.late.forwarding=1  # as before net.ipv4.ip_forward was written`},
		{"ip_forward already restored (a crash), copies left", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv4/conf/lan/forwarding", "0", "1"), sysctl("net/ipv4/conf/late/forwarding", "0", "")}}, model.State{}, `
sysctl -w net.ipv4.conf.lan.forwarding=1  # as before net.ipv4.ip_forward was written`},
		{"ipv6", model.State{Sysctls: []model.Sysctl{
			sysctl("net/ipv6/conf/all/forwarding", "1", "0"), sysctl("net/ipv6/conf/default/forwarding", "1", "0")}}, model.State{}, `
sysctl -w net.ipv6.conf.all.forwarding=0  # original value
sysctl -w net.ipv6.conf.default.forwarding=0  # as before net.ipv6.conf.all.forwarding was written`},
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
