package iptun

import (
	"fmt"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
)

var (
	registerOnce sync.Once
	registerErr  error
	// drivers are the package's drivers, one of each kind.
	drivers = []rtnetlink.LinkDriver{&IPIP{}, &SIT{}, &GRE{}, &IP6Tnl{}}
)

// Driver returns a new, zero driver for kind ("ipip", "sit", "gre",
// "ip6tnl"), or nil for any other kind.
func Driver(kind string) rtnetlink.LinkDriver {
	for _, d := range drivers {
		if d.Kind() == kind {
			return d.New()
		}
	}
	return nil
}

// setter is a driver decoding one IFLA_INFO_DATA attribute at a time.
type setter interface {
	set(typ uint16, b []byte) error
}

// SetAttr decodes one attribute of a link's IFLA_INFO_DATA, its type
// (without the nested and byte-order flags) and payload v, into d, a
// driver from Driver or New; a type d does not know is ignored. Decoding
// a link dump attribute by attribute, in place, spares netlink's
// attribute decoder, which copies every attribute first: what a dump of
// a thousand tunnels needs.
func SetAttr(d rtnetlink.LinkDriver, typ uint16, v []byte) error {
	s, ok := d.(setter)
	if !ok {
		return fmt.Errorf("iptun: %T is not a driver of this package", d)
	}
	return s.set(typ, v)
}

// Register registers the ipip, sit, gre and ip6tnl drivers with rtnetlink's
// global driver registry. Only the first call registers; every call returns
// the first error that registration produced (for example because another
// package already registered one of the kinds). Call it before dialing,
// since rtnetlink's registry is not safe for concurrent use.
func Register() error {
	registerOnce.Do(func() {
		for _, d := range drivers {
			if err := rtnetlink.RegisterDriver(d); err != nil && registerErr == nil {
				registerErr = fmt.Errorf("iptun: registering %s: %w", d.Kind(), err)
			}
		}
	})
	return registerErr
}
