package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/config"
)

// TestNames: the DNS names of the tunnels, each once and in order, nil
// when there are none, as slices.Sorted(maps.Keys(…)) gave them.
func TestNames(t *testing.T) {
	c := &config.Config{Tunnels: []*config.Tunnel{
		{Name: "a", RemoteHost: "vpn.example.net"}, {Name: "b"}, {Name: "c", RemoteHost: "broker.example.org"},
		{Name: "d", RemoteHost: "vpn.example.net"}, {Name: "e", RemoteHost: "a.example.com"},
	}}
	if diff := cmp.Diff([]string{"a.example.com", "broker.example.org", "vpn.example.net"}, Names(c)); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if got := Names(&config.Config{Tunnels: []*config.Tunnel{{Name: "b"}}}); got != nil {
		t.Errorf("no names: %#v, want nil", got)
	}
}
