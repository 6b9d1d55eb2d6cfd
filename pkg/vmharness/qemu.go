package vmharness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kernel command line: serial console, few kernel messages, and reboot at
// once on panic — which -no-reboot turns into qemu exiting.
const kernelCmdline = "quiet panic=-1"

// afterMarkerGrace is how long qemu may take to exit after the end marker
// before it is killed (poweroff -f normally takes well under a second).
const afterMarkerGrace = 15 * time.Second

// maxConsole caps the console text kept in Result.Console.
const maxConsole = 32 << 20

// qemuArgs returns the qemu command line for one run; kernelArgs are
// added to the kernel's command line.
func qemuArgs(g guest, vmlinuz, initrd string, memMiB, cpus int, kernelArgs []string) []string {
	if memMiB <= 0 {
		memMiB = g.memMiB
	}
	if cpus <= 0 {
		cpus = g.cpus
	}
	args := []string{"-accel", "tcg"}
	args = append(args, g.machine...)
	args = append(args, "-m", strconv.Itoa(memMiB))
	if cpus > 1 {
		args = append(args, "-smp", strconv.Itoa(cpus))
	}
	return append(args,
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", vmlinuz, "-initrd", initrd,
		"-append", strings.Join(append([]string{"console=" + g.console, kernelCmdline}, kernelArgs...), " "))
}

// qemuRun is one qemu process and what it watches for.
type qemuRun struct {
	bin     string
	args    []string
	nonce   string
	timeout time.Duration
	console io.Writer
}

// qemuOutcome is what a qemu run showed.
type qemuOutcome struct {
	console  string
	tail     []string
	ok       bool // end marker seen
	status   int  // workload exit status; -1 without marker
	started  bool // begin marker seen
	boot     time.Duration
	elapsed  time.Duration
	timedOut bool
	canceled error // the caller's context error, if it ended the run
	qemuErr  error // qemu failed to start or exited non-zero on its own
}

// reason sums up a failed outcome in a few words.
func (o qemuOutcome) reason(timeout time.Duration) string {
	panicLine := ""
	for _, l := range o.tail {
		if strings.Contains(l, "Kernel panic") {
			panicLine = strings.TrimSpace(l)
			break
		}
	}
	switch {
	case o.ok:
		return fmt.Sprintf("workload exited with status %d", o.status)
	case panicLine != "":
		return "no end marker: " + panicLine
	case o.canceled != nil:
		return fmt.Sprintf("no end marker: run canceled (%v)", o.canceled)
	case o.timedOut && o.started:
		return fmt.Sprintf("no end marker: workload still running after the %v timeout", timeout)
	case o.timedOut:
		return fmt.Sprintf("no end marker: workload had not started after the %v timeout", timeout)
	case o.qemuErr != nil:
		return fmt.Sprintf("no end marker: qemu failed: %v", o.qemuErr)
	case o.started:
		return "no end marker: guest stopped while the workload ran (panic or poweroff?)"
	default:
		return "no end marker: guest stopped before the workload started (boot failure?)"
	}
}

// run starts qemu, follows the console until qemu exits (or the timeout or
// ctx ends it) and reports what it saw.
func (q qemuRun) run(ctx context.Context) qemuOutcome {
	out := qemuOutcome{status: -1}
	rctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()

	cmd := exec.CommandContext(rctx, q.bin, q.args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr limitedBuffer
	stderr.max = 64 << 10
	sink := &consoleSink{nonce: q.nonce, out: q.console, tail: newTailBuffer(TailLines)}
	cmd.Stdout = sink
	cmd.Stderr = &stderr

	start := time.Now()
	sink.start = start
	var killOnce sync.Once
	sink.onEnd = func() {
		killOnce.Do(func() {
			time.AfterFunc(afterMarkerGrace, func() { _ = cmd.Process.Kill() })
		})
	}
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	sink.flush()
	out.elapsed = time.Since(start)

	out.console = sink.all.String()
	out.tail = sink.tail.get()
	out.ok, out.status, out.started, out.boot = sink.ended, sink.status, sink.started, sink.boot
	if !out.ok {
		out.status = -1
	}
	switch {
	case ctx.Err() != nil:
		out.canceled = ctx.Err()
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		out.timedOut = true
	case err != nil && !out.ok:
		out.qemuErr = err
	}
	if s := strings.TrimSpace(stderr.String()); s != "" && !out.ok {
		for _, l := range strings.Split(s, "\n") {
			out.tail = append(out.tail, "qemu: "+cleanLine(l))
		}
	}
	return out
}

// consoleSink receives qemu's serial output, cleans it line by line, keeps
// it and watches for the markers. exec feeds it from a single goroutine.
type consoleSink struct {
	nonce   string
	out     io.Writer
	tail    *tailBuffer
	all     strings.Builder
	partial []byte
	start   time.Time
	onEnd   func()

	started bool
	boot    time.Duration
	ended   bool
	status  int
}

func (s *consoleSink) Write(b []byte) (int, error) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) == 0 {
		s.partial = nil
	}
	return len(b), nil
}

// flush handles a last line that had no newline.
func (s *consoleSink) flush() {
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func (s *consoleSink) line(raw string) {
	l := cleanLine(raw)
	if s.all.Len() < maxConsole {
		s.all.WriteString(l)
		s.all.WriteByte('\n')
	}
	s.tail.add(l)
	if s.out != nil {
		_, _ = io.WriteString(s.out, l+"\n")
	}
	if !s.started && hasBeginMarker(l, s.nonce) {
		s.started = true
		s.boot = time.Since(s.start)
	}
	if !s.ended {
		if st, ok := parseEndMarker(l, s.nonce); ok {
			s.ended, s.status = true, st
			if s.onEnd != nil {
				s.onEnd()
			}
		}
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		if len(b) > room {
			l.buf.Write(b[:room])
		} else {
			l.buf.Write(b)
		}
	}
	return len(b), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
