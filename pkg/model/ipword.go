package model

import "strings"

// ipLinkWords are the words `ip link` (iproute2's, and busybox's) reads
// as keywords where it takes a device's name (iproute2's iplink_parse),
// each also by any prefix of it: a device named "t" is read as
// txqueuelen, "d" as dynamic (a tester's pasted plan failed so). Each
// follows a space: one string searched, not a slice made at every start.
const ipLinkWords = " address addrgenmode alias allmulticast arp brd broadcast carrier" +
	" dev down dynamic gro_ipv4_max_size gro_max_size group" +
	" gso_ipv4_max_size gso_max_segs gso_max_size help index inet link" +
	" link-netns link-netnsid master mode mtu multicast name netns" +
	" nomaster numrxqueues numtxqueues off on parentdev promisc" +
	" protodown protodown_reason qlen state trailers txqlen txqueuelen" +
	" type up vf vrf xdp xdpdrv xdpgeneric xdpoffload"

// LinkArg is the device name as `ip link add|set|change|del` takes it:
// after the keyword dev where ip would read the name as one of its words
// (a prefix of one), as it is otherwise.
func LinkArg(name string) string {
	if name == "" || strings.Contains(ipLinkWords, " "+name) {
		return "dev " + name
	}
	return name
}
