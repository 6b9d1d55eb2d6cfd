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
