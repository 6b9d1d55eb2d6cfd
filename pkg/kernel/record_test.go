package kernel

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSysctlRecordSet: before a write, the original is recorded once and
// the value written as ours, each time; before a write of ip_forward, each
// interface's copy likewise, with the value the kernel copies onto it.
func TestSysctlRecordSet(t *testing.T) {
	values := map[string]string{
		"net/ipv4/ip_forward": "0", "net/ipv4/conf/lan/forwarding": "1", "net/ipv4/conf/all/accept_redirects": "0",
	}
	read := func(p string) (string, error) {
		if v, ok := values[p]; ok {
			return v, nil
		}
		return "", errors.New("gone")
	}
	copies := []string{"net/ipv4/conf/all/accept_redirects", "net/ipv4/conf/gone/forwarding", "net/ipv4/conf/lan/forwarding"}
	r := SysctlRecord{}
	for _, step := range []struct {
		v       string
		changed bool
		want    SysctlRecord
	}{
		{"1", true, SysctlRecord{
			"net/ipv4/ip_forward":                {Original: "0", Ours: []string{"1"}},
			"net/ipv4/conf/lan/forwarding":       {Original: "1", Ours: []string{"1"}},
			"net/ipv4/conf/all/accept_redirects": {Original: "0", Ours: []string{"0"}},
		}},
		{"1", false, nil},
		{"0", true, SysctlRecord{
			"net/ipv4/ip_forward":                {Original: "0", Ours: []string{"0"}},
			"net/ipv4/conf/lan/forwarding":       {Original: "1", Ours: []string{"0"}},
			"net/ipv4/conf/all/accept_redirects": {Original: "0", Ours: []string{"1"}},
		}},
	} {
		want := step.want
		if want == nil {
			want = SysctlRecord{}
			for p, e := range r {
				want[p] = e
			}
		}
		changed, err := r.Set("net/ipv4/ip_forward", step.v, copies, read)
		if err != nil || changed != step.changed {
			t.Errorf("Set %s: changed %v, %v; want %v", step.v, changed, err, step.changed)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("after Set %s (-want +got):\n%s", step.v, diff)
		}
	}
	if _, err := r.Set("net/ipv4/conf/gone/proxy_arp", "1", nil, read); err == nil {
		t.Error("Set of a sysctl that cannot be read: no error")
	}
}
