package vmharness

import (
	"errors"
	"fmt"
	"strings"
)

// MissingError reports a host prerequisite that is not there: a program,
// a Debian architecture or a package list. Fix is the exact shell command
// that provides it; the harness never installs system packages itself.
type MissingError struct {
	// What is missing, e.g. "qemu-system-mipsel".
	What string
	// Fix is the command that provides it, e.g.
	// "apt-get install -y qemu-system-mips".
	Fix string
}

// Error returns a one-line message naming what is missing and the fix.
func (e *MissingError) Error() string {
	return fmt.Sprintf("vmharness: %s is missing; run: %s", e.What, e.Fix)
}

// IsMissing reports whether err is (or wraps) a *MissingError.
func IsMissing(err error) bool {
	var m *MissingError
	return errors.As(err, &m)
}

// GuestError reports a guest run that did not end with the success marker:
// the workload exited non-zero, the kernel panicked, qemu failed or the
// timeout expired. Its message ends with the tail of the cleaned console.
type GuestError struct {
	// Arch is the guest that failed.
	Arch Arch
	// Reason says what went wrong, in a few words.
	Reason string
	// Status is the workload's exit status, or -1 if no end marker was seen.
	Status int
	// Tail holds the last TailLines lines of the cleaned guest console,
	// followed by any qemu diagnostics.
	Tail []string
}

// Error returns the reason followed by the console tail, one line each.
func (e *GuestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmharness: %s guest: %s", e.Arch, e.Reason)
	if len(e.Tail) > 0 {
		fmt.Fprintf(&b, "\n--- last %d console lines (%s) ---", len(e.Tail), e.Arch)
		for _, l := range e.Tail {
			b.WriteString("\n")
			b.WriteString(l)
		}
		fmt.Fprintf(&b, "\n--- end of console (%s) ---", e.Arch)
	}
	return b.String()
}
