// Command benchtable prints the BENCH lines of `make bench` (JSON, one per
// line on stdin) as a table, with each timed figure's ratio to tunneld
// apply's converge of the same N.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

type result struct {
	Arch   string  `json:"arch"`
	Bench  string  `json:"bench"`
	Impl   string  `json:"impl"`
	N      int     `json:"n"`
	Median float64 `json:"median_ms"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Note   string  `json:"note"`
}

func main() {
	var rs []result
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var r result
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			rs = append(rs, r)
		}
	}
	base := map[string]float64{}
	for _, r := range rs {
		if r.Bench == "converge" && r.Impl == "tunneld apply" {
			base[fmt.Sprint(r.Arch, r.N)] = r.Median
		}
	}
	fmt.Println("| arch | benchmark | implementation | N | median / value | vs tunneld apply | note |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rs {
		val, ratio := fmt.Sprintf("%.1f %s", r.Value, r.Unit), ""
		if r.Median > 0 {
			val = fmt.Sprintf("%.1f ms", r.Median)
			if b := base[fmt.Sprint(r.Arch, r.N)]; b > 0 && r.N > 0 {
				ratio = fmt.Sprintf("%.2f×", r.Median/b)
			}
		}
		n := ""
		if r.N > 0 {
			n = fmt.Sprint(r.N)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.Arch, r.Bench, r.Impl, n, val, ratio, r.Note)
	}
}
