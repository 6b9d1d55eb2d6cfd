// Package model holds the data types shared by every stage of tunneld: the
// kernel objects tunneld owns (links, addresses, routes, rules, sysctls and
// one nftables table), the environment it observes but does not own
// (devices, underlay routes, DNS answers), and the ownership markers that
// tell the two apart. It has no behaviour beyond formatting and comparison.
package model
