package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tunneld/tunneld/pkg/kernel"
	"github.com/tunneld/tunneld/pkg/model"
)

// TestHandOverRecords: a daemon that lost the state directory adds to its
// records the sysctl originals and rule bands they lack, leaving the
// entries there as they are; the process that holds the directory takes
// the additions into its own at its next AdoptRecords, and its next write
// of a record keeps them.
func TestHandOverRecords(t *testing.T) {
	dir := t.TempDir()
	lost := &Kernel{opts: Options{StateDir: dir}}
	lost.sysctls, lost.sysctlsKnown = kernel.SysctlRecord{
		model.IPForward:               {Original: "0", Ours: []string{"1"}},
		"net/ipv4/conf/lan/proxy_arp": {Original: "0", Ours: []string{"1"}},
	}, true
	lost.bands, lost.bandsKnown = []model.RuleBand{{Min: 20000, Max: 20999}, {Min: 30000, Max: 30999}}, true
	holder := &Kernel{opts: Options{StateDir: dir}}
	if err := holder.saveOriginals(kernel.SysctlRecord{"net/ipv4/conf/lan/proxy_arp": {Original: "1", Ours: []string{"1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := holder.saveRuleBands([]model.RuleBand{{Min: 20000, Max: 20999}}); err != nil {
		t.Fatal(err)
	}
	if err := lost.HandOverRecords(); err != nil {
		t.Fatal(err)
	}
	want := kernel.SysctlRecord{
		model.IPForward:               {Original: "0", Ours: []string{"1"}},
		"net/ipv4/conf/lan/proxy_arp": {Original: "1", Ours: []string{"1"}},
	}
	if got, _, err := holder.readOriginals(); err != nil || !cmp.Equal(want, got) {
		t.Errorf("the file after the hand-over: %v (-want +got):\n%s", err, cmp.Diff(want, got))
	}
	holder.AdoptRecords()
	if got, _ := holder.originals(); !cmp.Equal(want, got) {
		t.Errorf("the holder's record after AdoptRecords (-want +got):\n%s", cmp.Diff(want, got))
	}
	wantBands := []model.RuleBand{{Min: 20000, Max: 20999}, {Min: 30000, Max: 30999}}
	if got, _ := holder.ruleBands(); !cmp.Equal(wantBands, got) {
		t.Errorf("the holder's bands after AdoptRecords (-want +got):\n%s", cmp.Diff(wantBands, got))
	}
	// The holder's next write (a restore of ip_forward) keeps the rest.
	rec, _ := holder.originals()
	delete(rec, model.IPForward)
	if err := holder.saveOriginals(rec); err != nil {
		t.Fatal(err)
	}
	delete(want, model.IPForward)
	if got, _, _ := holder.readOriginals(); !cmp.Equal(want, got) {
		t.Errorf("the file after the holder's restore (-want +got):\n%s", cmp.Diff(want, got))
	}
	// Nothing new to hand over writes nothing: the file stays the holder's.
	same := &Kernel{opts: Options{StateDir: dir}}
	same.sysctls, same.sysctlsKnown = kernel.SysctlRecord{"net/ipv4/conf/lan/proxy_arp": {Original: "0"}}, true
	if err := same.HandOverRecords(); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := holder.readOriginals(); !cmp.Equal(want, got) {
		t.Errorf("the file after a hand-over of nothing new (-want +got):\n%s", cmp.Diff(want, got))
	}
}

// TestAdoptRecordsRewritesBroken: a record garbled while the daemon runs
// (which keeps it in memory) is moved aside and written again from
// memory at the daemon's next keep, with a warning that nothing is lost;
// before, it stayed garbled until that record's next write.
func TestAdoptRecordsRewritesBroken(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{opts: Options{StateDir: dir}}
	rec := kernel.SysctlRecord{model.IPForward: {Original: "0", Ours: []string{"1"}}}
	if err := k.saveOriginals(rec); err != nil {
		t.Fatal(err)
	}
	bands := []model.RuleBand{{Min: 20000, Max: 20999}}
	if err := k.saveRuleBands(bands); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{sysctlFile, bandsFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k.AdoptRecords()
	if got, _, err := (&Kernel{opts: k.opts}).readOriginals(); err != nil || !cmp.Equal(rec, got) {
		t.Errorf("sysctl record after the keep: %v, %v; want it written again", got, err)
	}
	if got, _, err := (&Kernel{opts: k.opts}).readBands(); err != nil || !cmp.Equal(bands, got) {
		t.Errorf("bands record after the keep: %v, %v; want it written again", got, err)
	}
	broken, _ := filepath.Glob(filepath.Join(dir, "*.broken-*"))
	if len(broken) != 2 || len(k.warnings) != 2 || !strings.Contains(k.warnings[0], "written again from the daemon's memory; nothing is lost") {
		t.Errorf("moved aside %q, warnings %q; want both moved, each said", broken, k.warnings)
	}
}

// TestHandOverOverBrokenRecord: a record of the other daemon's that
// cannot be read is replaced by what this one hands over, which had
// failed the hand-over (logged) and lost the originals.
func TestHandOverOverBrokenRecord(t *testing.T) {
	dir := t.TempDir()
	lost := &Kernel{opts: Options{StateDir: dir}}
	lost.sysctls, lost.sysctlsKnown = kernel.SysctlRecord{model.IPForward: {Original: "0", Ours: []string{"1"}}}, true
	lost.bands, lost.bandsKnown = []model.RuleBand{{Min: 20000, Max: 20999}}, true
	for _, name := range []string{sysctlFile, bandsFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := lost.HandOverRecords(); err != nil {
		t.Fatal(err)
	}
	if got, _, err := (&Kernel{opts: lost.opts}).readOriginals(); err != nil || !cmp.Equal(lost.sysctls, got) {
		t.Errorf("sysctl record after the hand-over: %v, %v", got, err)
	}
	if got, _, err := (&Kernel{opts: lost.opts}).readBands(); err != nil || !cmp.Equal(lost.bands, got) {
		t.Errorf("bands record after the hand-over: %v, %v", got, err)
	}
}
