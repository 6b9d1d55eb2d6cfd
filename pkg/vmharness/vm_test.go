package vmharness

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// envVM is the environment variable that enables the tests booting real
// guests; they skip with a reason otherwise.
const envVM = "TUNNELD_VM"

func gateVM(t *testing.T) {
	t.Helper()
	if os.Getenv(envVM) != "1" {
		t.Skipf("boots qemu guests: set %s=1 (host packages: testdata/vm/REQUIREMENTS)", envVM)
	}
	if testing.Short() {
		t.Skip("boots qemu guests: not in -short mode")
	}
}

// TestGuestBoots boots each architecture and runs a trivial workload that
// needs a tunnel driver, then a failing one that must be reported.
func TestGuestBoots(t *testing.T) {
	gateVM(t)
	for _, arch := range Arches() {
		t.Run(string(arch), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var log strings.Builder
			res, err := Run(ctx, Config{
				Arch:    arch,
				Script:  "ip tunnel add vmt1 mode ipip local 10.0.0.1 remote 10.0.0.2 && ip link show vmt1 && grep -q vmt1 /proc/net/dev && echo workload-ok",
				Timeout: 4 * time.Minute,
				Log:     &log,
			})
			if IsMissing(err) {
				t.Skipf("%s guest unavailable: %v", arch, err)
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, log.String())
			}
			if res.Status != 0 || !strings.Contains(res.Console, "workload-ok") || !strings.Contains(res.Console, "link/ipip 10.0.0.1 peer 10.0.0.2") {
				t.Fatalf("status %d, console:\n%s", res.Status, res.Console)
			}
			t.Logf("%s: kernel %s, boot %v, qemu %v", arch, res.Kernel, res.Boot.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))

			res, err = Run(ctx, Config{Arch: arch, Script: "echo failing-on-purpose; exit 3", Timeout: 4 * time.Minute})
			var ge *GuestError
			if !errors.As(err, &ge) || ge.Status != 3 || res.Status != 3 {
				t.Fatalf("failing workload: err %v, status %d", err, res.Status)
			}
			if !strings.Contains(err.Error(), "failing-on-purpose") {
				t.Errorf("error lacks the console tail: %v", err)
			}
		})
	}
}
