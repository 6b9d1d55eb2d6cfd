package model

import "strings"

// ipLinkWords are the words `ip link` (iproute2's, and busybox's) reads
// as keywords where it takes a device's name, each also by any prefix of
// it: a device named "t" is read as txqueuelen, "d" as dynamic (a
// tester's pasted plan failed so).
var ipLinkWords = strings.Fields(`accept_local accept_redirects accept_source_route add address addrgenmode
afstats alias allmulticast altname arp arp_accept arp_announce arp_evict_nocarrier arp_filter arp_ignore
arp_notify auto bc_forwarding bootp_relay brd broadcast carrier change del delete dev disable
disable_policy disable_xfrm down drop_gratuitous_arp drop_unicast_in_l2_multicast dynamic enable
force_igmp_version forwarding gro_ipv4_max_size gro_max_size group gso_ipv4_max_size gso_max_segs
gso_max_size help igmpv2_unsolicited_report_interval igmpv3_unsolicited_report_interval
ignore_routes_with_linkdown index inet link link-netns link-netnsid list log_martians lst mac master
max_tx_rate medium_id min_tx_rate mode mtu multicast name netns node_guid nomaster numrxqueues
numtxqueues off on parentdev port_guid promisc promote_secondaries property proto protodown
protodown_reason proxy_arp proxy_arp_pvlan qlen qos query_rss rate replace route_localnet rp_filter
secure_redirects send_redirects set shared_media show spoofchk src_vmark state tag trailers trust
txqlen txqueuelen type up vf vlan vrf xdp xdpdrv xdpgeneric xdpoffload xstats`)

// LinkArg is the device name as `ip link add|set|change|del` takes it:
// after the keyword dev where ip would read the name as one of its words
// (a prefix of one), as it is otherwise.
func LinkArg(name string) string {
	for _, w := range ipLinkWords {
		if strings.HasPrefix(w, name) {
			return "dev " + name
		}
	}
	return name
}
