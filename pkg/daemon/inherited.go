package daemon

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// inheritedOnce marks, before the first hook runs, the descriptors the
// daemon inherited without close-on-exec so: Go opens its own with it,
// but one its parent left open (a shell's `exec 7>file` before `tunneld
// run`) stayed open in every hook (a tester's).
var inheritedOnce sync.Once

// closeInherited marks every open descriptor above stderr close-on-exec.
// The directory's own descriptor, opened for the listing, has it already.
func closeInherited() {
	inheritedOnce.Do(func() {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, e := range entries {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				unix.CloseOnExec(fd)
			}
		}
	})
}
