package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestRuleBandRecord: the record of bands reads back what was saved, in
// the process that saved it and in the next, an empty one removes the
// file, and a damaged one is an error naming it when read.
func TestRuleBandRecord(t *testing.T) {
	k := &Kernel{opts: Options{StateDir: t.TempDir()}}
	path := filepath.Join(k.opts.StateDir, bandsFile)
	for _, bands := range [][]model.RuleBand{
		{{Min: 20000, Max: 20999}},
		{{Min: 21000, Max: 21999}, {Min: 1, Max: 32765}},
		nil,
	} {
		if err := k.saveRuleBands(bands); err != nil {
			t.Fatal(err)
		}
		// As this process knows it, and as the next one reads it.
		for _, r := range []*Kernel{k, {opts: k.opts}} {
			got, err := r.ruleBands()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(bands, got); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("an empty record left the file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`[{"Min":"x"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&Kernel{opts: k.opts}).readBands(); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("a damaged record: %v, want an error naming %s", err, path)
	}
	// ruleBands reads it as none, with a warning (TestUnreadableRecords).
}

// TestForeignBandsDropped: a recorded band no configuration makes (a
// priority outside 1–32765, or its minimum above its maximum) is dropped
// as the record is read, with a warning naming it, once: a process that
// holds the lock writes the record without it; one that does not
// leaves the file. A tester's forged [{"Min": 0, "Max": 32766}] had down
// delete rules of protocol 116 outside tunneld's band, at priority 0 too.
func TestForeignBandsDropped(t *testing.T) {
	const forged = `[{"Min": 0, "Max": 32766}, {"Min": 20000, "Max": 20999}, {"Min": 300, "Max": 200}, {"Min": 1, "Max": 32765}, {"Min": 32000, "Max": 32766}]`
	want := []model.RuleBand{{Min: 20000, Max: 20999}, {Min: 1, Max: 32765}}
	for _, locked := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, bandsFile)
		if err := os.WriteFile(path, []byte(forged), 0o600); err != nil {
			t.Fatal(err)
		}
		k := &Kernel{opts: Options{StateDir: dir}, locked: locked}
		got, err := k.ruleBands()
		if diff := cmp.Diff(want, got); err != nil || diff != "" {
			t.Errorf("locked %v: %v (-want +got):\n%s", locked, err, diff)
		}
		var named []string
		for _, w := range k.warnings {
			if !strings.HasPrefix(w, "state record "+path+" names rule priority band ") || !strings.Contains(w, "not tunneld's doing") || !strings.Contains(w, "left alone") {
				t.Errorf("locked %v: warning %q does not say what it is", locked, w)
			}
			named = append(named, strings.TrimSuffix(strings.Fields(strings.TrimPrefix(w, "state record "+path+" names rule priority band "))[0], ","))
		}
		if diff := cmp.Diff([]string{"0-32766", "300-200", "32000-32766"}, named); diff != "" {
			t.Errorf("locked %v: the bands named (-want +got):\n%s", locked, diff)
		}
		next := &Kernel{opts: k.opts, locked: true}
		if again, err := next.ruleBands(); err != nil || !cmp.Equal(want, again) {
			t.Errorf("locked %v: read again: %v, %v", locked, again, err)
		}
		if said := len(next.warnings) > 0; said == locked {
			t.Errorf("locked %v: read again, warnings %q", locked, next.warnings)
		}
	}
}
