package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/resolve"
	"github.com/tunneld/tunneld/pkg/statelock"
)

func runRun(env *Env, args []string) int {
	fs, path := flags(env, "run")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	split := fs.Bool("log-split", false, "log info and debug to stdout, warn and error to stderr (for procd)")
	if !parse(env, fs, args) {
		return 2
	}
	// SIGHUP is caught before anything else: its default action ends
	// the process, and a reload sent right after the start (procd's
	// reload_signal, a hook's kill -HUP) killed the daemon while it was
	// still loading its file and opening the kernel (a tester saw exit
	// 129 for up to 40 ms). One that comes before the loop runs is a
	// reload at its start.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	lv, err := logfmt.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(env.Stderr, "tunneld: -log-level: %v\n", err)
		return 2
	}
	log := logfmt.New(env.logTo, lv)
	if *split {
		log = logfmt.New(env.Stdout, lv)
		log.Split(env.logTo)
	}
	if env.Journal {
		log.PrefixPriority()
	}
	// The file by its absolute path, which the daemon's facts give:
	// status run from another directory reads it (see runStatus).
	if abs, err := filepath.Abs(*path); err == nil {
		*path = abs
	}
	// The configuration first: an invalid one stops the daemon before it
	// touches the kernel or the state directory.
	c, ok := load(env, *path)
	if !ok {
		return 1
	}
	// Without nftables where the kernel has no nf_tables: the filter's
	// failure keeps the tunnels down, and each convergence tries again
	// (see live).
	k, ok := openKernel(env, false, "")
	if !ok {
		return 1
	}
	defer closeKernel(k)
	// One daemon per state directory: a second one would take over the
	// status socket and, when it stops, tear down what the first keeps.
	// Released last, when the socket is gone and the teardown done.
	lock, ok := lockState(env, "run", k, func(w string) { log.Warn(w) })
	if !ok {
		return 1
	}
	defer lock.Release()
	// ctx ends with the loop, whichever way it stops, and with it the
	// status socket: Serve is waited for, so its file is gone when run
	// returns.
	ctx, cancel := context.WithCancel(env.Context)
	defer cancel()
	deps := daemon.Deps{
		Kernel:   k,
		Config:   c,
		Load:     reloader(*path, k),
		Resolver: resolve.System{},
		Log:      log,
		Notify:   env.Notify,
		Watchdog: env.Watchdog,
	}
	if env.Events != nil {
		events, err := env.Events(ctx, k)
		if err != nil {
			log.Warn("no netlink events; relying on the periodic resync", "err", err)
		} else {
			deps.Events = events
		}
	}
	// Straight from signal.Notify, which coalesces SIGHUPs as the relay
	// that was here did: a SIGHUP followed by a SIGTERM is then in it
	// when the daemon sees the stop (see daemon.Deps.Reload).
	deps.Reload = hup
	sock := filepath.Join(env.StateDir, daemon.SocketName)
	var d *daemon.Daemon
	var serving sync.WaitGroup
	// listening is the socket served now; a new one (the file wiped,
	// see keepStateDir) ends it, without removing the path, which is
	// the new one's.
	var listening struct {
		l    *net.UnixListener
		stop context.CancelFunc
	}
	serve := func() {
		l, err := daemon.Listen(sock)
		if err != nil {
			log.Warn("no status socket", "path", sock, "err", err)
			return
		}
		if listening.l != nil {
			listening.l.SetUnlinkOnClose(false)
			listening.stop()
		}
		sctx, stop := context.WithCancel(ctx)
		listening.stop = stop
		listening.l, _ = l.(*net.UnixListener)
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := d.Serve(sctx, l); err != nil {
				log.Warn("status socket failed", "path", sock, "err", err)
			}
		}()
	}
	deps.Keep = func() error {
		err := keepStateDir(ctx, log, lock.Lock, sock, k, serve)
		if err != nil && listening.l != nil {
			// The path is the other daemon's socket now.
			listening.l.SetUnlinkOnClose(false)
		}
		return err
	}
	d = daemon.New(deps)
	serve()
	start := time.Now()
	err = d.Run(ctx)
	cancel()
	serving.Wait()
	if err != nil {
		log.Error("stopped with an error", "err", err, "uptime", time.Since(start).Round(time.Second))
		return 1
	}
	return 0
}

// keepStateDir puts back what a wipe of the state directory took while
// the daemon runs (by hand, or a clean-up of /run): the lock, without
// which a second tunneld could start there and `down` run beside the
// daemon; the status socket, without which status says no daemon runs;
// and the records of sysctl originals and rule bands, without which a
// crash before the next change loses them (a tester's wipe lost all
// three for good). An error (a *statelock.HeldError) says another
// tunneld took the lock in the meantime: the directory is its. Once ctx
// is done (the daemon stopping), only the lock is looked at.
func keepStateDir(ctx context.Context, log *logfmt.Logger, lock *statelock.Lock, sock string, k kernel.Kernel, serve func()) error {
	if kept, err := lock.Keep("run"); err != nil {
		handOver(log, k, err)
		return err
	} else if kept {
		log.Warn("the state directory's lock was gone (the directory wiped?): taken again")
	}
	// Stopping (ctx done: the keep before the teardown), the socket is
	// closed on purpose, and only the lock matters.
	if _, err := os.Stat(sock); ctx.Err() == nil && errors.Is(err, fs.ErrNotExist) {
		log.Warn("the status socket was gone (the directory wiped?): listening again", "path", sock)
		serve()
	}
	if r, ok := k.(interface{ AdoptRecords() }); ok {
		r.AdoptRecords()
	}
	if r, ok := k.(interface{ KeepRecords() }); ok {
		r.KeepRecords()
	}
	return nil
}

// handOver gives the tunneld that took the state directory (err is a
// *statelock.HeldError) the records this daemon keeps and the files lack
// (linux.Kernel.HandOverRecords): it stops without the teardown, and
// the originals of the sysctls it set would be lost with it.
func handOver(log *logfmt.Logger, k kernel.Kernel, err error) {
	var held *statelock.HeldError
	h, ok := k.(interface{ HandOverRecords() error })
	if !ok || !errors.As(err, &held) {
		return
	}
	if err := h.HandOverRecords(); err != nil {
		log.Error("cannot hand this daemon's records over to the tunneld that took the state directory: `tunneld down` after both stop may leave sysctls as tunneld set them", "err", err)
		return
	}
	log.Info("handed this daemon's records (sysctl originals, rule bands) over to the tunneld that took the state directory")
}

// filterRequirer is implemented by kernels that may have been opened
// without nftables (the configuration had the filter off and the kernel
// has no nf_tables): RequireFilter opens it for a configuration that
// turns the filter on, or says why it cannot.
type filterRequirer interface {
	RequireFilter() error
}

// reloader loads the configuration at path for the daemon's reloads: one
// that turns the filter on where the kernel has no nf_tables is refused
// (the daemon logs why and keeps the running one) rather than half
// applied, its tunnels up without their filter.
func reloader(path string, k kernel.Kernel) func() (*config.Config, error) {
	return func() (*config.Config, error) {
		c, err := config.Load(path)
		if err != nil || !c.Global.Firewall {
			return c, err
		}
		if fr, ok := k.(filterRequirer); ok {
			if err := fr.RequireFilter(); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
}
