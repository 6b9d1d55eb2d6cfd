// Command tunneld keeps IPIP, GRE, SIT and ip6tnl tunnels, their routes,
// rules, sysctls and a small nftables filter in the state one TOML file
// describes. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/tunneld/tunneld/pkg/cli"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/watch"
)

// version is stamped by the Makefile (-X main.version=…).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	watchdog, _ := sd.SdWatchdogEnabled(false)
	// TUNNELD_STATE_DIR lets several instances (one per network
	// namespace) keep their sysctl records and sockets apart.
	stateDir := os.Getenv("TUNNELD_STATE_DIR")
	code := cli.Main(&cli.Env{
		StateDir: stateDir,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Version:  version,
		Context:  ctx,
		Kernel: func(needFilter bool) (kernel.Kernel, error) {
			return linux.Open(linux.Options{StateDir: stateDir, FilterOptional: !needFilter})
		},
		Events:   events,
		Notify:   func(state string) { sd.SdNotify(false, state) },
		Watchdog: watchdog,
	}, os.Args[1:])
	stop()
	os.Exit(code)
}

// events starts the netlink watcher, ignoring the echoes of the kernel
// connection's own requests.
func events(ctx context.Context, k kernel.Kernel) (<-chan watch.Event, error) {
	var pid uint32
	if lk, ok := k.(*linux.Kernel); ok {
		pid = lk.PortID()
	}
	w, err := watch.Open(pid)
	if err != nil {
		return nil, err
	}
	ch := make(chan watch.Event, watch.Backlog)
	go w.Run(ctx, ch)
	return ch, nil
}
