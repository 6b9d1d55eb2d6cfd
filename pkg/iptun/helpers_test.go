package iptun

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
)

// cmpAddr lets cmp compare netip.Addr values, which have unexported fields.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// encode runs d.Encode on a fresh encoder and returns the attribute bytes
// (the IFLA_INFO_DATA payload).
func encode(d rtnetlink.LinkDriver) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if err := d.Encode(ae); err != nil {
		return nil, err
	}
	return ae.Encode()
}

// decode runs Decode of a new driver of d's kind on b, and SetAttr on
// each attribute of the same bytes: the two must agree, in the driver or in failing.
func decode(d rtnetlink.LinkDriver, b []byte) (rtnetlink.LinkDriver, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	got := d.New()
	err = got.Decode(ad)
	raw, rawErr := setAttrs(d.New(), b)
	if (err == nil) != (rawErr == nil) {
		return nil, fmt.Errorf("Decode: %v, but SetAttr: %v", err, rawErr)
	}
	if err != nil {
		return nil, err
	}
	if diff := cmp.Diff(got, raw, cmpAddr); diff != "" {
		return nil, fmt.Errorf("SetAttr differs from Decode (-Decode +SetAttr):\n%s", diff)
	}
	return got, nil
}

// setAttrs decodes b into d attribute by attribute with SetAttr.
func setAttrs(d rtnetlink.LinkDriver, b []byte) (rtnetlink.LinkDriver, error) {
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if err := SetAttr(d, a.Type&^(netlink.Nested|netlink.NetByteOrder), a.Data); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// attr is an attribute in a form cmp prints readably.
type attr struct {
	Type  uint16
	Value string // hex
}

// attrList splits an attribute payload into its attributes.
func attrList(t *testing.T, b []byte) []attr {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatalf("unmarshal attributes: %v", err)
	}
	out := make([]attr, 0, len(as))
	for _, a := range as {
		out = append(out, attr{Type: a.Type, Value: hex.EncodeToString(a.Data)})
	}
	return out
}

// mustEncodeAttrs builds an attribute payload from as, for hand-made input.
func mustEncodeAttrs(t *testing.T, as ...netlink.Attribute) []byte {
	t.Helper()
	b, err := netlink.MarshalAttributes(as)
	if err != nil {
		t.Fatalf("marshal attributes: %v", err)
	}
	return b
}

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.2")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8::2")
)
