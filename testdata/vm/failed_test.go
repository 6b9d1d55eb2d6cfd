package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFailedTests: each failed test is quoted from its "=== RUN" line to
// its "--- FAIL" line, a subtest's failure too; passing tests are not.
func TestFailedTests(t *testing.T) {
	console := strings.Join([]string{
		"=== RUN   TestA",
		"--- PASS: TestA (0.1s)",
		"=== RUN   TestB",
		"    b_test.go:10: boom",
		"--- FAIL: TestB (0.2s)",
		"=== RUN   TestC",
		"=== RUN   TestC/x",
		"    c_test.go:3: bad",
		"    --- FAIL: TestC/x (0.0s)",
		"--- FAIL: TestC (0.0s)",
		"FAIL",
	}, "\n")
	want := strings.Join([]string{
		"--- TestB, as the guest printed it:",
		"=== RUN   TestB",
		"    b_test.go:10: boom",
		"--- FAIL: TestB (0.2s)",
		"--- TestC/x, as the guest printed it:",
		"=== RUN   TestC/x",
		"    c_test.go:3: bad",
		"    --- FAIL: TestC/x (0.0s)",
		"--- TestC, as the guest printed it:",
		"=== RUN   TestC",
		"=== RUN   TestC/x",
		"    c_test.go:3: bad",
		"    --- FAIL: TestC/x (0.0s)",
		"--- FAIL: TestC (0.0s)",
		"",
	}, "\n")
	if diff := cmp.Diff(want, failedTests(console)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := failedTests("=== RUN   TestA\n--- PASS: TestA (0s)\n"); got != "" {
		t.Errorf("passing tests quoted: %q", got)
	}
}
