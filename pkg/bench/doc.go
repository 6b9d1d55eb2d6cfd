// Package bench holds tunneld's benchmarks (make bench): converge from
// empty against iproute2 (one process per operation, and ip -batch), the
// no-op resync, the reaction to a WAN address change, the daemon's memory
// and idle cost. They run in the test VM, where the kernel has the tunnel
// drivers; every comparison is between runs made side by side in one
// session, and results are printed as a table and as BENCH lines of JSON.
package bench
