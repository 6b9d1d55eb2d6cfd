// Command vm boots Debian kernels under qemu and runs a workload in them,
// using pkg/vmharness. It exits 0 only if every guest printed its success
// marker.
//
//	go run ./testdata/vm -prepare -arch all
//	go run ./testdata/vm -arch all -run 'ip link add t1 type ipip local 10.0.0.1 remote 10.0.0.2 && ip link show t1'
//	go run ./testdata/vm -arch mipsle -file /tmp/x.test:/root/x.test -run '/root/x.test -test.v -test.timeout 60s' -v
//
// The host packages it needs are listed in testdata/vm/REQUIREMENTS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tunneld/tunneld/pkg/vmharness"
)

// fileFlags collects repeated -file host:guest values.
type fileFlags []vmharness.File

func (f *fileFlags) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = x.Host + ":" + x.Guest
	}
	return strings.Join(parts, ",")
}

func (f *fileFlags) Set(v string) error {
	host, guest, ok := strings.Cut(v, ":")
	if !ok || host == "" || guest == "" {
		return fmt.Errorf("want host:guest, got %q", v)
	}
	*f = append(*f, vmharness.File{Host: host, Guest: guest})
	return nil
}

// lockedWriter serialises whole-line writes from concurrent guests.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// prefixed puts a prefix before each line; vmharness writes whole lines.
type prefixed struct {
	prefix string
	w      io.Writer
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		archFlag = flag.String("arch", "all", "guest architecture: amd64, mipsle or all (all run concurrently)")
		timeout  = flag.Duration("timeout", vmharness.DefaultTimeout, "hard limit per guest, boot included")
		script   = flag.String("script", "", "host file holding the guest shell script to run")
		command  = flag.String("run", "", "guest shell command to run (instead of -script)")
		verbose  = flag.Bool("v", false, "stream each guest's cleaned console")
		kargs    = flag.String("kernel-args", "", "space-separated arguments added to the guest kernel's command line")
		prepare  = flag.Bool("prepare", false, "only download the packages and build the caches")
		files    fileFlags
		optional fileFlags
	)
	flag.Var(&files, "file", "host:guest file to add to the initramfs (repeatable; {arch} in the host path becomes the guest's arch)")
	flag.Var(&optional, "file-if-present", "like -file, for a guest whose host file exists (the host's own programs, which only the amd64 guest runs)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vm: unexpected arguments %q\n", flag.Args())
		return 2
	}

	var arches []vmharness.Arch
	if *archFlag == "all" {
		arches = vmharness.Arches()
	} else {
		a, err := vmharness.ParseArch(*archFlag)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		arches = []vmharness.Arch{a}
	}

	workload := *command
	if *script != "" {
		if *command != "" {
			fmt.Fprintln(os.Stderr, "vm: give -script or -run, not both")
			return 2
		}
		b, err := os.ReadFile(*script)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vm: %v\n", err)
			return 2
		}
		workload = string(b)
	}
	if workload == "" && !*prepare {
		fmt.Fprintln(os.Stderr, "vm: nothing to run: give -script FILE, -run 'command' or -prepare")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := &lockedWriter{w: os.Stdout}
	results := make([]string, len(arches))
	codes := make([]int, len(arches))
	var wg sync.WaitGroup
	for i, a := range arches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// "{arch}" in a host path names that guest's own build.
			own := make([]vmharness.File, 0, len(files)+len(optional))
			for _, f := range files {
				f.Host = strings.ReplaceAll(f.Host, "{arch}", string(a))
				own = append(own, f)
			}
			for _, f := range optional {
				f.Host = strings.ReplaceAll(f.Host, "{arch}", string(a))
				if _, err := os.Stat(f.Host); err == nil {
					own = append(own, f)
				}
			}
			cfg := vmharness.Config{
				Arch:       a,
				Files:      own,
				Script:     workload,
				Timeout:    *timeout,
				Log:        out,
				KernelArgs: strings.Fields(*kargs),
			}
			if *verbose {
				cfg.Console = prefixed{prefix: "[" + string(a) + "] ", w: out}
			}
			results[i], codes[i] = runOne(ctx, cfg, *prepare, *timeout)
		}()
	}
	wg.Wait()

	worst := 0
	for i := range arches {
		fmt.Fprintln(os.Stdout, results[i])
		worst = max(worst, codes[i])
	}
	return worst
}

// runOne prepares or runs one guest and returns its report and exit code.
func runOne(ctx context.Context, cfg vmharness.Config, prepareOnly bool, timeout time.Duration) (string, int) {
	start := time.Now()
	if prepareOnly {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		k, err := vmharness.Prepare(pctx, cfg)
		if err != nil {
			return failure(cfg.Arch, err)
		}
		return fmt.Sprintf("PREPARED %s: kernel %s, %d modules, %s\n  vmlinuz %s\n  base    %s",
			cfg.Arch, k.Version, len(k.Modules), time.Since(start).Round(100*time.Millisecond), k.Vmlinuz, k.BaseInitrd), 0
	}
	res, err := vmharness.Run(ctx, cfg)
	if err != nil {
		msg, code := failure(cfg.Arch, err)
		if cfg.Console == nil {
			// Not streamed: what failed may be before the tail.
			if f := failedTests(res.Console); f != "" {
				msg += "\n" + strings.TrimSuffix(f, "\n")
			}
		}
		return msg, code
	}
	return fmt.Sprintf("PASS %s: kernel %s, boot %s, qemu %s, total %s", cfg.Arch, res.Kernel,
		res.Boot.Round(100*time.Millisecond), res.Elapsed.Round(100*time.Millisecond),
		time.Since(start).Round(100*time.Millisecond)), 0
}

func failure(a vmharness.Arch, err error) (string, int) {
	var m *vmharness.MissingError
	if errors.As(err, &m) {
		return fmt.Sprintf("MISSING %s: %v", a, err), 2
	}
	return fmt.Sprintf("FAIL %s: %v", a, err), 1
}
