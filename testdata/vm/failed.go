package main

import "strings"

// maxFailedLines caps what failedTests quotes of each failed test.
const maxFailedLines = 40

// failedTests picks out of a guest's whole console what `go test -v`
// printed for each failed test: from its "=== RUN" line (or the 40 lines
// before, if that is further) to its "--- FAIL" line. A failed guest's
// error carries only the console's last lines, where an earlier test's
// failure is not.
func failedTests(console string) string {
	lines := strings.Split(console, "\n")
	var b strings.Builder
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "--- FAIL: ") {
			continue
		}
		name := strings.Fields(strings.TrimPrefix(t, "--- FAIL: "))[0]
		start := max(0, i-maxFailedLines)
		for j := i - 1; j >= start; j-- {
			if strings.TrimSpace(lines[j]) == "=== RUN   "+name {
				start = j
				break
			}
		}
		b.WriteString("--- " + name + ", as the guest printed it:\n")
		for _, q := range lines[start : i+1] {
			b.WriteString(q + "\n")
		}
	}
	return b.String()
}
