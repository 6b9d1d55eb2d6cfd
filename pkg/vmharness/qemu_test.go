package vmharness

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConsoleSinkSplitWrites(t *testing.T) {
	var streamed strings.Builder
	ended := 0
	s := &consoleSink{nonce: "n1", out: &streamed, tail: newTailBuffer(2), start: time.Now(), onEnd: func() { ended++ }}
	raw := "\x1bc\x1b[2JSeaBIOS\r\nBooting..\r\n\r\nTUNNELD-VM-BEGIN n1 6.1\r\nhello\r\n\r\nTUNNELD-VM-END n1 status=4\r\n[ 1.9] reboot: Power down\r\nno newline"
	// Feed one byte at a time: markers must survive any chunking.
	for i := 0; i < len(raw); i++ {
		if _, err := s.Write([]byte{raw[i]}); err != nil {
			t.Fatal(err)
		}
	}
	s.flush()
	if !s.started || !s.ended || s.status != 4 || ended != 1 {
		t.Fatalf("started=%v ended=%v status=%d onEnd calls=%d", s.started, s.ended, s.status, ended)
	}
	want := "SeaBIOS\nBooting..\n\nTUNNELD-VM-BEGIN n1 6.1\nhello\n\nTUNNELD-VM-END n1 status=4\n[ 1.9] reboot: Power down\nno newline\n"
	if got := s.all.String(); got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if streamed.String() != want {
		t.Errorf("streamed = %q, want %q", streamed.String(), want)
	}
	if got := s.tail.get(); !slices.Equal(got, []string{"[ 1.9] reboot: Power down", "no newline"}) {
		t.Errorf("tail = %q", got)
	}
}

func TestOutcomeReason(t *testing.T) {
	for _, tc := range []struct {
		o    qemuOutcome
		want string
	}{
		{qemuOutcome{ok: true, status: 1}, "workload exited with status 1"},
		{qemuOutcome{started: true, tail: []string{"x", "[ 2.4] Kernel panic - not syncing: sysrq triggered crash"}}, "Kernel panic - not syncing"},
		{qemuOutcome{started: true, timedOut: true}, "still running after the 1m0s timeout"},
		{qemuOutcome{timedOut: true}, "had not started after the 1m0s timeout"},
		{qemuOutcome{}, "before the workload started"},
		{qemuOutcome{started: true}, "while the workload ran"},
	} {
		if got := tc.o.reason(time.Minute); !strings.Contains(got, tc.want) {
			t.Errorf("reason(%+v) = %q, want it to contain %q", tc.o, got, tc.want)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	amd := qemuArgs(guests[AMD64], "/k", "/i", 0, 2, nil)
	mips := qemuArgs(guests[MIPSLE], "/k", "/i", 128, 0, []string{"highres=off"})
	for _, args := range [][]string{amd, mips} {
		joined := strings.Join(args, " ")
		for _, want := range []string{"-accel tcg", "-nographic", "-no-reboot", "-nic none", "-kernel /k", "-initrd /i", "console=ttyS0", "panic=-1"} {
			if !strings.Contains(joined, want) {
				t.Errorf("%q lacks %q", joined, want)
			}
		}
		if strings.Contains(joined, "kvm") {
			t.Errorf("%q mentions kvm: TCG only", joined)
		}
	}
	if j := strings.Join(amd, " "); !strings.Contains(j, "-m 512") || !strings.Contains(j, "-smp 2") || strings.Contains(j, "malta") {
		t.Errorf("amd64 args %q", j)
	}
	if j := strings.Join(mips, " "); !strings.Contains(j, "-M malta") || !strings.Contains(j, "-m 128") || strings.Contains(j, "-smp") {
		t.Errorf("mipsle args %q", j)
	}
	// The kernel's command line is one argument, the extra ones last.
	if i := slices.Index(mips, "-append"); i < 0 || mips[i+1] != "console=ttyS0 "+kernelCmdline+" highres=off" {
		t.Errorf("mipsle kernel command line in %q", mips)
	}
	if i := slices.Index(amd, "-append"); i < 0 || amd[i+1] != "console=ttyS0 "+kernelCmdline {
		t.Errorf("amd64 kernel command line in %q", amd)
	}
}

func TestGuestErrorMessage(t *testing.T) {
	e := &GuestError{Arch: MIPSLE, Reason: "workload exited with status 1", Status: 1, Tail: []string{"a", "b"}}
	want := "vmharness: mipsle guest: workload exited with status 1\n--- last 2 console lines (mipsle) ---\na\nb\n--- end of console (mipsle) ---"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	m := &MissingError{What: "qemu-system-mipsel", Fix: "apt-get install -y qemu-system-mips"}
	if got := m.Error(); got != "vmharness: qemu-system-mipsel is missing; run: apt-get install -y qemu-system-mips" {
		t.Errorf("MissingError = %q", got)
	}
	if !IsMissing(m) || IsMissing(e) {
		t.Error("IsMissing wrong")
	}
}
