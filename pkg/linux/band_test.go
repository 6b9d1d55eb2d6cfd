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
		{{Min: 21000, Max: 21999}, {Min: 0, Max: 4294967295}},
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
	if _, err := (&Kernel{opts: k.opts}).readBands(); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("a damaged record: %v, want an error naming %s", err, path)
	}
	// ruleBands reads it as none, with a warning (TestUnreadableRecords).
}
