package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/config"
	"github.com/tunneld/tunneld/pkg/internal/syncbuf"
	"github.com/tunneld/tunneld/pkg/linux"
	"github.com/tunneld/tunneld/pkg/logfmt"
	"github.com/tunneld/tunneld/pkg/model"
	"github.com/tunneld/tunneld/pkg/netnstest"
	"github.com/tunneld/tunneld/pkg/watch"
)

// bandConfig has two rules without a priority and a resync far longer
// than the test: only the rule hints make the daemon look again.
const bandConfig = `
[global]
firewall = false
resync_interval = "1h"

[[rule]]
from = "10.60.0.0/16"
table = 42

[[rule]]
from = "10.61.0.0/16"
table = 43
`

// TestPrivilegedDaemonForeignRuleInBand runs the real daemon in a fresh
// namespace and adds a rule by hand at the priority of tunneld's first
// one (`ip rule add prio 20000 from 10.9.9.9 table 100`): on its hint,
// the daemon moves its rules past it, once, logs the warning once, and
// rests: its own moves do not make it move again. When the rule goes,
// tunneld's rules move back, and the daemon rests again.
func TestPrivilegedDaemonForeignRuleInBand(t *testing.T) {
	netnstest.Enter(t)
	k, err := linux.Open(linux.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	w, err := watch.Open(k.PortID())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := netlink.Dial(unix.NETLINK_ROUTE, nil) // the admin's
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	other, err := linux.Open(linux.Options{StateDir: t.TempDir()}) // reads the rules from another socket
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan watch.Event, watch.Backlog)
	go w.Run(ctx, events)
	var log syncbuf.Buffer
	converges := make(chan struct{}, 1000)
	d := New(Deps{
		Kernel: k, Events: events, Log: logfmt.New(&log, logfmt.Debug),
		Load: func() (*config.Config, error) { return config.Parse("t.toml", []byte(bandConfig)) },
		OnConverge: func(Facts) {
			select {
			case converges <- struct{}{}:
			default:
			}
		},
	})
	scope := model.Scope{Band: model.RuleBand{Min: 20000, Max: 20999}}
	// rules lists tunneld's priorities and the foreign ones in the band.
	rules := func() (ours, foreign []uint32) {
		s, in, err := other.Observe(context.Background(), scope)
		if err != nil {
			t.Error(err)
		}
		for _, r := range s.Rules {
			ours = append(ours, r.Priority)
		}
		for _, f := range in.ForeignRules {
			foreign = append(foreign, f.Priority)
		}
		return ours, foreign
	}
	moved := func(what string, want []uint32) {
		deadline := time.Now().Add(3 * time.Second)
		for {
			ours, foreign := rules()
			if slices.Equal(ours, want) {
				for _, p := range ours {
					if slices.Contains(foreign, p) {
						t.Errorf("%s: tunneld's rule at %d shares it with a foreign rule", what, p)
					}
				}
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: tunneld's rules not there within 3s (-want +got):\n%s", what, cmp.Diff(want, ours))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hand := netnstest.Rule{Family: unix.AF_INET, Priority: 20000, Table: 100, Src: netip.MustParsePrefix("10.9.9.9/32")}
	const warning = `level=WARN msg="rule[0]: placed at priority 20001, past 20000, which a rule tunneld does not own holds`
	result := make(chan struct{})
	go func() {
		defer close(result)
		defer cancel()
		<-converges
		if n, ok := rest(converges); !ok {
			t.Errorf("after start: %d converges, no rest", n)
			return
		}
		moved("after start", []uint32{20000, 20001})
		if err := netnstest.AddRuleOver(raw, hand); err != nil {
			t.Errorf("add the rule by hand: %v", err)
			return
		}
		moved("after the rule by hand", []uint32{20001, 20002})
		if n, ok := rest(converges); !ok {
			t.Errorf("after the rule by hand: %d converges, no rest", n)
		}
		if n := strings.Count(log.String(), warning); n != 1 {
			t.Errorf("the warning logged %d times, want once:\n%s", n, log.String())
		}
		if err := netnstest.DelRule(raw, hand); err != nil {
			t.Errorf("delete the rule by hand: %v", err)
			return
		}
		moved("after it went", []uint32{20000, 20001})
		if n, ok := rest(converges); !ok {
			t.Errorf("after it went: %d converges, no rest", n)
		}
	}()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	<-result
}
