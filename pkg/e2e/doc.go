// Package e2e holds the end-to-end tests of the seed scenarios: each test
// builds a how-to's topology out of network namespaces and veth pairs, runs
// the real tunneld binary (TUNNELD_BIN) in every endpoint, and proves the
// tunnel works on the wire — ping and TCP across it, the outer header
// captured on the underlay, MTU, policy routing, proxy ARP, the spoofing
// filter — and that `tunneld down` leaves each namespace as it found it.
//
// The tests need a kernel with tunnel drivers: they skip on a host without
// them and run for real in the test VMs (make test-vm). Gate: root,
// TUNNELD_PRIVILEGED=1 and TUNNELD_BIN set.
package e2e
