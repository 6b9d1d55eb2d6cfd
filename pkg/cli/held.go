package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/model"
)

// heldLines say what became of the routes through a tunnel that is not
// up: "routes: 192.168.2.0/24 table vpn unreachable until t1 is up"
// for those held as unreachable routes, then one line for each reason
// others are withdrawn ("routes: 10.9.0.0/16 table main withdrawn until
// t1 is up: another route to it in the configuration is in place").
// For a tunnel up in the desired state but not in the kernel, the first
// line is of the unreachable routes in the kernel that stand for routes
// through it (desired.TunnelStatus.Standing: a creation the kernel
// refused left them). tables names routing tables (number → name).
func heldLines(t desired.TunnelStatus, tables map[uint32]string) []string {
	var out []string
	if held := slices.Concat(t.Held, t.Standing); len(held) > 0 {
		out = append(out, fmt.Sprintf("routes: %s unreachable until %s is up", routeList(held, tables), t.Name))
	}
	var whys []string
	byWhy := map[string][]model.Route{}
	for _, w := range t.Withdrawn {
		if _, ok := byWhy[w.Why]; !ok {
			whys = append(whys, w.Why)
		}
		byWhy[w.Why] = append(byWhy[w.Why], w.Route)
	}
	for _, why := range whys {
		out = append(out, fmt.Sprintf("routes: %s withdrawn until %s is up: %s", routeList(byWhy[why], tables), t.Name, why))
	}
	return out
}

// routeList words routes as "192.168.2.0/24 table vpn, default table
// main metric 5", a metric only where the configuration gave one.
func routeList(rs []model.Route, tables map[uint32]string) string {
	words := make([]string, len(rs))
	for i, r := range rs {
		dst := r.Dst.String()
		if r.Dst.Bits() == 0 {
			dst = "default"
			if r.Dst.Addr().Is6() {
				dst = "::/0"
			}
		}
		table := tables[r.Table]
		if table == "" {
			table = model.TableWord(r.Table)
		}
		w := dst + " table " + table
		if r.Metric != 0 && !(r.Dst.Addr().Is6() && r.Metric == desired.IPv6DefaultMetric) {
			w += fmt.Sprintf(" metric %d", r.Metric)
		}
		words[i] = w
	}
	return strings.Join(words, ", ")
}
