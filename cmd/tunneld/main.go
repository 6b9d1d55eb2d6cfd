// Command tunneld keeps IPIP, GRE, SIT and ip6tnl tunnels, their routes,
// rules, sysctls and a small nftables filter in the state one TOML file
// describes. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tunneld/tunneld/pkg/cli"
)

// version is stamped by the Makefile (-X main.version=…).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Main(&cli.Env{
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Version: version,
		Context: ctx,
	}, os.Args[1:])
	stop()
	os.Exit(code)
}
