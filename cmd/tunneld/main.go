// Command tunneld keeps IPIP, GRE, SIT and ip6tnl tunnels, their routes,
// rules, sysctls and a small nftables filter in the state one TOML file
// describes. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

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
		StateDir:      stateDir,
		NamespaceLock: true,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		Journal:       isJournal(os.Getenv("JOURNAL_STREAM"), os.Stderr),
		Version:       version,
		Context:       ctx,
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

// isJournal reports whether f is the stream systemd connected to its
// journal: JOURNAL_STREAM holds that stream's device and inode numbers,
// "DEV:INODE" (systemd.exec(5)). A child process whose stderr goes
// elsewhere inherits the variable but not the stream.
func isJournal(stream string, f *os.File) bool {
	if stream == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == strconv.FormatUint(uint64(st.Dev), 10)+":"+strconv.FormatUint(uint64(st.Ino), 10)
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
