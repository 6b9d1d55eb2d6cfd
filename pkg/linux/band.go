package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/plan"
)

// bandsFile records the rule priority bands tunneld has added rules in,
// as a JSON array of {"Min": …, "Max": …}. A rule of protocol 116 inside
// a recorded band is tunneld's even when the configuration's band has
// moved since: apply, the daemon after a reload and down remove it. A
// band is recorded before the first rule is added in it (a crash cannot
// leave a rule outside every recorded band) and forgotten once no rule of
// protocol 116 is left in it (see syncBands).
//
// Without the file (a fresh boot: /run is a tmpfs, and the kernel has no
// rules of tunneld's either) only the configuration's band is owned. A
// state directory that outlives a reboot keeps its bands until the next
// apply that adds or deletes a rule finds them empty and forgets them.
const bandsFile = "rule-bands.json"

// ruleBands returns the recorded bands (none when there is no record,
// or one that cannot be read: setAside), read from the file the first
// time.
func (k *Kernel) ruleBands() ([]model.RuleBand, error) {
	if k.bandsKnown {
		return slices.Clone(k.bands), nil
	}
	bands, dropped, err := k.readBands()
	if err != nil {
		if err = k.setAside(err, lostBands); err != nil {
			return nil, err
		}
		bands = nil
	}
	if len(dropped) > 0 {
		// Said once: the file is written without them by a process
		// that holds the lock, and read so by the next.
		k.warnForeignBands(filepath.Join(k.opts.StateDir, bandsFile), dropped)
		if k.locked {
			_ = k.saveRecord(bandsFile, len(bands) == 0, bands)
		}
	}
	k.bands, k.bandsKnown = bands, true
	return slices.Clone(bands), nil
}

// saveRuleBands writes the record atomically; no band removes the file.
func (k *Kernel) saveRuleBands(bands []model.RuleBand) error {
	if err := k.saveRecord(bandsFile, len(bands) == 0, bands); err != nil {
		k.bandsKnown = false // read it again: it may or may not be written
		return err
	}
	k.bands, k.bandsKnown = slices.Clone(bands), true
	return nil
}

// recordBand adds band to the record unless it is there.
func (k *Kernel) recordBand(band model.RuleBand) error {
	bands, err := k.ruleBands()
	if err != nil {
		return err
	}
	if slices.Contains(bands, band) {
		return nil
	}
	return k.saveRuleBands(append(bands, band))
}

// syncBands runs after a plan that added or deleted rules: the record
// then holds the bands model.BandsInUse keeps for the rules of tunneld's
// protocol in the kernel now.
func (k *Kernel) syncBands(current model.RuleBand) error {
	bands, err := k.ruleBands()
	if err != nil {
		return err
	}
	rules, err := k.listRules(nil, unix.AF_UNSPEC)
	if err != nil {
		return err
	}
	var prios []uint32
	for i := range rules {
		if rules[i].attrs.protocol == model.RuleProtocol {
			prios = append(prios, rules[i].attrs.priority)
		}
	}
	keep := model.BandsInUse(bands, current, prios)
	if slices.Equal(keep, bands) {
		return nil
	}
	return k.saveRuleBands(keep)
}

// bandsLeftEmpty reports whether a recorded band holds no rule of
// tunneld's protocol in the last observation: a down killed after
// deleting the rules and before forgetting their band left one, which no
// later plan without rule operations brought up to date (a tester's).
// It reads no file and dumps nothing.
func (k *Kernel) bandsLeftEmpty() bool {
	if !k.bandsKnown {
		return false
	}
	for _, b := range k.bands {
		used := false
		for i := range k.scratch.rules {
			m := &k.scratch.rules[i]
			used = used || m.attrs.protocol == model.RuleProtocol && b.Contains(m.attrs.priority)
		}
		if !used {
			return true
		}
	}
	return false
}

// changesRules reports whether a plan adds or deletes a rule.
func changesRules(p plan.Plan) bool {
	return slices.ContainsFunc(p.Ops, func(op plan.Op) bool { return op.Kind == plan.RuleAdd || op.Kind == plan.RuleDel })
}

// readBands reads the rule bands' record from its file (none when there
// is no file; a *badRecordError when it cannot be read as the record),
// without the bands no configuration makes, which it returns besides
// (configurableBand).
func (k *Kernel) readBands() (bands, dropped []model.RuleBand, err error) {
	path := filepath.Join(k.opts.StateDir, bandsFile)
	b, err := readRecordFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if err := minijson.Unmarshal(b, &bands); err != nil {
		return nil, nil, &badRecordError{path: path, content: b, err: err}
	}
	bands = slices.DeleteFunc(bands, func(b model.RuleBand) bool {
		if !configurableBand(b) {
			dropped = append(dropped, b)
			return true
		}
		return false
	})
	return bands, dropped, nil
}

// Rule priorities a configuration's band may hold
// (global.rule_priority_min/max): not 0, the kernel's rule of table
// local, nor 32766 and 32767, those of tables main and default.
const (
	minBandPriority = 1
	maxBandPriority = 32765
)

// configurableBand reports whether a configuration can make band b, and
// so whether tunneld can have recorded it: of priorities in
// minBandPriority..maxBandPriority, its minimum not above its maximum. A
// tester's forged rule-bands.json, [{"Min": 0, "Max": 32766}], had down
// delete rules of protocol 116 that were not tunneld's, at priority 0
// too.
func configurableBand(b model.RuleBand) bool {
	return b.Min >= minBandPriority && b.Max <= maxBandPriority && b.Min <= b.Max
}

// warnForeignBands adds the warning (Inputs.Warnings) for each band of
// dropped (readBands) that the record at path named.
func (k *Kernel) warnForeignBands(path string, dropped []model.RuleBand) {
	for _, b := range dropped {
		k.warnings = append(k.warnings, fmt.Sprintf("state record %s names rule priority band %s, which no configuration makes "+
			"(global.rule_priority_min/max: %d-%d, the minimum not above the maximum): not tunneld's doing "+notOurs+"; "+
			"dropped from the record, and the rules of protocol 116 in it outside tunneld's bands left alone", path, b, minBandPriority, maxBandPriority))
	}
}

// lostBands is what an unreadable rule bands' record loses, for its
// warning (setAside).
func lostBands([]byte) string {
	return "rules of protocol 116 in a priority band tunneld used before, other than the configuration's " +
		"(global.rule_priority_min/max), are no longer seen as tunneld's, and stay (ip rule show proto 116; ip -6 rule show proto 116): " +
		"a warning names each with the command that deletes it"
}

// unionBands returns a with the bands of b it lacks appended, and whether
// there were any.
func unionBands(a, b []model.RuleBand) ([]model.RuleBand, bool) {
	added := false
	for _, band := range b {
		if !slices.Contains(a, band) {
			a, added = append(a, band), true
		}
	}
	return a, added
}
