// Package minijson writes and reads the JSON tunneld needs (the status
// socket, `tunneld status -json`, the record of sysctl originals) without
// linking encoding/json's encoder and decoder into the daemon.
//
// Its output is byte for byte what encoding/json writes for the kinds it
// supports: bool, integers, strings, pointers, interfaces, slices, maps with
// string keys, structs (with the `json:"name,omitempty,omitzero"` tags) and
// encoding.TextMarshaler (time.Time, netip.Addr). Anything else — floats,
// []byte, embedded fields, other tag options — is an error, never a
// silently different encoding.
package minijson
