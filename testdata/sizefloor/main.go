// Command sizefloor is the size yardstick of `make size`: a program that
// only touches the five libraries tunneld is built on (a TOML decode, a
// link dump, an nftables table list, a netlink dial, an sd_notify), built
// with tunneld's flags. The difference between it and tunneld is what
// tunneld's own code and its other standard-library uses cost.
package main

import (
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/google/nftables"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

func main() {
	var v struct{ Name string }
	if len(os.Args) > 1 {
		if _, err := toml.DecodeFile(os.Args[1], &v); err != nil {
			fmt.Println(err)
		}
	}
	if c, err := rtnetlink.Dial(nil); err == nil {
		links, _ := c.Link.List()
		fmt.Println(len(links))
		c.Close()
	}
	if c, err := nftables.New(); err == nil {
		tables, _ := c.ListTables()
		fmt.Println(len(tables))
	}
	if c, err := netlink.Dial(0, nil); err == nil {
		c.Close()
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
}
