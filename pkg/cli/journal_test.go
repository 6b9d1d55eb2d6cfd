package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrLines: every line, however the writes cut it, starts with <3>.
func TestErrLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"one line", []string{"a\n"}, "<3>a\n"},
		{"two in one write", []string{"a\nb\n"}, "<3>a\n<3>b\n"},
		{"a line in pieces", []string{"a", "b\nc", "\n"}, "<3>ab\n<3>c\n"},
		{"no newline at the end", []string{"a\nb"}, "<3>a\n<3>b"},
		{"empty lines", []string{"\n\n"}, "<3>\n<3>\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &errLines{w: &b}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Errorf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
				}
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunJournal: with stderr as the journal, each of the daemon's lines
// starts with its level's syslog priority, and a configuration error with
// err's.
func TestRunJournal(t *testing.T) {
	code, _, log := runDaemonIn(t, true, func(log string) bool { return convergedLine.MatchString(log) }, "-log-level", "debug")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	prio := map[string]string{"DEBUG": "7", "INFO": "6", "WARN": "4", "ERROR": "3"}
	line := regexp.MustCompile(`^<(\d)>time=\S+ level=(\w+) `)
	levels := map[string]bool{}
	for _, l := range strings.SplitAfter(log, "\n") {
		if l == "" {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil || prio[m[2]] != m[1] {
			t.Errorf("line without its priority: %q", l)
			continue
		}
		levels[m[2]] = true
	}
	if !levels["DEBUG"] || !levels["INFO"] {
		t.Errorf("levels seen %v, want DEBUG and INFO among them:\n%s", levels, log)
	}

	file := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(file, []byte("[global]\nip_forward = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main(&Env{Stdout: &out, Stderr: &errb, Journal: true}, []string{"check", "-c", file}); code != 1 {
		t.Errorf("check: exit %d, want 1", code)
	}
	want := "<3>" + file + ":2:14: global.ip_forward: must be true or false, not the integer 3\n"
	if diff := cmp.Diff(want, errb.String()); diff != "" {
		t.Errorf("check's stderr (-want +got):\n%s", diff)
	}
}

// TestRunLogSplit: with -log-split, info and debug lines go to stdout and
// nothing of a run without trouble to stderr but its warning (seed 002's
// colo filters no source from Moe; the warnings' way there is logfmt's
// TestSplitAndPriority).
func TestRunLogSplit(t *testing.T) {
	code, out, log := runDaemonIn(t, false, func(string) bool { return true }, "-log-level", "debug", "-log-split")
	if code != 0 || strings.Count(log, "\n") != 1 || !strings.Contains(log, "level=WARN msg=\"tunnel \\\"Moe\\\": no source filtering for IPv4") {
		t.Fatalf("exit %d, stderr:\n%s", code, log)
	}
	for _, want := range []string{"level=DEBUG msg=converged reason=start", "level=INFO msg=changed", "level=INFO msg=\"stopped; everything tunneld owned is removed\""} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q on stdout:\n%s", want, out)
		}
	}
}
