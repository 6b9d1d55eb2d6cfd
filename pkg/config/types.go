package config

import (
	"net/netip"
	"time"

	"github.com/tunneld/tunneld/pkg/model"
)

// DefaultPath is where tunneld looks for its configuration.
const DefaultPath = "/etc/tunneld/tunneld.toml"

// Config is a validated configuration.
type Config struct {
	// File is the path the configuration was read from; Sum the hash
	// of its content, in hex (see Sum): status tells by it whether the
	// file is the one the running daemon loaded.
	File   string
	Sum    string
	Global Global
	// Tables maps routing table names to numbers; main, local and default
	// are always present.
	Tables map[string]uint32
	// Tunnels in name order.
	Tunnels     []*Tunnel
	Routes      []Route
	Rules       []Rule
	Forwards    []Forward
	Masquerades []Masquerade
	Redirects   []Redirect

	// Warnings are parts of the file that are valid but that tunneld
	// reads and then does not do (the filter's sections with firewall =
	// false), each as FILE:LINE:COL: option: message, and, from Load,
	// the file, a hook or a directory holding one that other users may
	// write (the file's own as FILE: message). tunneld check prints
	// them; they do not make the file invalid.
	Warnings []string

	byName map[string]*Tunnel
	// tableNames is Tables the other way round, made once when the
	// file is read: every plan prints with it.
	tableNames map[uint32]string
}

// Global holds the [global] section.
type Global struct {
	// IPForward and IPv6Forward set net.ipv4.ip_forward and
	// net.ipv6.conf.all.forwarding when non-nil.
	IPForward, IPv6Forward *bool
	// ProxyARP lists interfaces whose net.ipv4.conf.IF.proxy_arp is set.
	ProxyARP []string
	// RulePriorityMin and RulePriorityMax bound tunneld's rule band.
	RulePriorityMin, RulePriorityMax uint32
	// KeepOnExit leaves the kernel state in place when the daemon stops.
	KeepOnExit bool
	// ResyncInterval is the period of the daemon's full re-read.
	ResyncInterval time.Duration
	// ResolveInterval is the longest time a DNS answer for a peer is kept.
	ResolveInterval time.Duration
	// Firewall enables tunneld's nftables table.
	Firewall bool
}

// HostRoute says whether tunneld adds a host route to a tunnel's remote
// through the underlay gateway.
type HostRoute uint8

// Host route settings.
const (
	// HostRouteAuto adds it when a configured route through the tunnel
	// covers the remote (the tunnel would otherwise route into itself).
	HostRouteAuto HostRoute = iota
	HostRouteOn
	HostRouteOff
)

// Tunnel is one [tunnel.NAME] section.
type Tunnel struct {
	Name string
	Mode model.Mode
	// Local is the outer source address; when LocalDev is set instead the
	// tunnel follows that device's current address. Neither set means any.
	Local    netip.Addr
	LocalDev string
	// Remote is the peer's outer address, or RemoteHost a DNS name to
	// resolve. Neither set means any (multipoint), only when asked for.
	Remote     netip.Addr
	RemoteHost string
	// Dev binds the tunnel to an underlay device.
	Dev string
	// Addresses are the tunnel device's interface addresses (Link is set).
	Addresses []model.Addr
	// MTU of the tunnel device; 0 means the underlay MTU minus overhead.
	MTU        int
	TTL        uint8 // 0 = inherit
	TOS        uint8 // 1 = inherit
	PMTUDisc   bool
	IKey, OKey uint32
	HasIKey    bool
	HasOKey    bool
	// EncapLimit for ip6tnl modes; -1 means none.
	EncapLimit int
	HostRoute  HostRoute
	// AllowedSources are the inner source prefixes accepted from the
	// tunnel; nil means: the tunnel's peers and the destinations routed
	// into it.
	AllowedSources []netip.Prefix
	// ForwardDrop drops forwarded traffic in and out of the tunnel that no
	// [[forward]] section accepts.
	ForwardDrop bool
	// MSSClamp clamps TCP MSS to the route MTU on SYNs into the tunnel.
	MSSClamp bool
	// Hook is the absolute path of a program the daemon runs when the
	// tunnel comes up or its endpoints move ("" for none): to tell a
	// tunnel broker the new address, say.
	Hook string
}

// Route is one [[route]] section.
type Route struct {
	// Index is the section's position among the [[route]] sections.
	Index int
	To    netip.Prefix
	// Via is the gateway; ViaPeer means the tunnel's peer address.
	Via     netip.Addr
	ViaPeer bool
	Dev     string
	// Through is the tunnel the route goes through: the one dev names,
	// or, for a unicast route with a gateway and no dev, the one whose
	// own subnet holds the gateway (GatewayTunnel), which the kernel
	// reaches through it; "" for none. Everything keyed on a route's
	// tunnel (its host route to the remote, the spoof chain's allowed
	// sources, the unreachable route standing in while it is down) goes
	// by it: a tester's via-only routes got no host route, and their
	// replies were dropped as spoofed. The route itself is written as
	// configured: without dev, the kernel picks the device.
	Through string
	OnLink  bool
	Metric  uint32
	Table   uint32
	Src     netip.Addr
	// Type is unicast, or unreachable, blackhole or prohibit (which have
	// no via, dev, onlink or src).
	Type model.RouteType
}

// Rule is one [[rule]] section.
type Rule struct {
	Index    int
	Family   int
	From, To netip.Prefix
	IIF, OIF string
	Mark     uint32
	Mask     uint32
	HasMark  bool
	// Priority is 0 when tunneld picks one from its band.
	Priority uint32
	Table    uint32
}

// Forward is one [[forward]] section: traffic to accept (or drop) in or
// out of a tunnel.
type Forward struct {
	Index  int
	Tunnel string
	// In is traffic arriving from the tunnel; otherwise traffic into it.
	In bool
	// Interface is the other side: the output interface for In, the
	// input interface otherwise ("" for any).
	Interface string
	Src, Dst  []netip.Prefix
	Protos    []uint8
	DPorts    []uint16
	Drop      bool
}

// Masquerade is one [[masquerade]] section.
type Masquerade struct {
	Index int
	Src   []netip.Prefix
	OIF   string
}

// Redirect is one [[redirect]] section: a port redirect to this host.
type Redirect struct {
	Index  int
	IIF    string
	Dst    []netip.Prefix
	Proto  uint8
	Port   uint16
	ToPort uint16
}

// TunnelByName returns the tunnel called name, or nil.
func (c *Config) TunnelByName(name string) *Tunnel {
	if c.byName != nil {
		return c.byName[name]
	}
	for _, t := range c.Tunnels {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TableName returns the configured name of a table number, or "".
func (c *Config) TableName(n uint32) string {
	return c.TableNames()[n]
}

// TableNames maps table numbers to their configured names (a number has
// one name: the file is refused otherwise). The map is shared: callers
// must not change it.
func (c *Config) TableNames() map[uint32]string {
	if c.tableNames != nil {
		return c.tableNames
	}
	return tableNames(c.Tables) // a Config not read from a file
}

func tableNames(tables map[string]uint32) map[uint32]string {
	out := make(map[uint32]string, len(tables))
	for name, id := range tables {
		out[id] = name
	}
	return out
}
