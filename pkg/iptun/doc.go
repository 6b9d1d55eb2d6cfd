// Package iptun implements rtnetlink/v2 link drivers for the Linux IP
// tunnel kinds "ipip", "sit", "gre" and "ip6tnl".
//
// Each driver type (IPIP, SIT, GRE, IP6Tnl) encodes and decodes the
// IFLA_INFO_DATA attributes of its kind. Encode always writes the complete
// parameter set, in the order and encoding iproute2's "ip link add NAME type
// KIND ..." uses, because the kernel's changelink for these kinds resets
// every parameter that is missing from the request to its default. The only
// attributes that are left out are those iproute2 also leaves out, and for
// those the kernel's default equals the zero value of the field: an
// unspecified (any) local or remote address, and GRE's underlay link 0.
//
// Decode reads every attribute Encode writes and ignores all others
// (IFLA_IPTUN_6RD_*, IFLA_IPTUN_COLLECT_METADATA, ERSPAN, attributes added
// by newer kernels, ...), so decode(encode(x)) == x for every valid x.
//
// Byte order follows the kernel: addresses are raw network-order bytes, GRE
// flags and keys, IFLA_IPTUN_FLOWINFO and the encapsulation ports are big
// endian, and every other integer is host endian. Go fields always hold
// plain host-order values; Encode and Decode do the conversion.
//
// Call Register once before decoding link messages so that rtnetlink knows
// the four kinds.
//
// AddrGenMode builds the IFLA_AF_SPEC attribute of a setlink that sets a
// link's IPv6 address generation mode (ip's addrgenmode).
package iptun
