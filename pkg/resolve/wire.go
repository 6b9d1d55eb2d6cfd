package resolve

import (
	"encoding/binary"
	"errors"
	"strings"
)

// The little of the DNS wire format (RFC 1035, section 4) that ttl needs:
// a query with one question, and the TTLs of a reply's answers.

const (
	headerLen = 12  // ID, flags, and the four section counts
	maxLabel  = 63  // octets in a label (RFC 1035 2.3.4)
	maxName   = 255 // octets in an encoded name, length octets included

	typeA    uint16 = 1
	typeAAAA uint16 = 28
	classIN  uint16 = 1

	flagQR = 1 << 15 // the message is a response
	flagRD = 1 << 8  // recursion desired
)

var (
	errEmptyLabel   = errors.New("empty label in name")
	errLongLabel    = errors.New("label longer than 63 octets")
	errLongName     = errors.New("name longer than 255 octets")
	errOtherID      = errors.New("reply to another query")
	errNotResponse  = errors.New("message is not a response")
	errTruncated    = errors.New("message ends early")
	errBadLabelType = errors.New("reserved label type")
	errBadPointer   = errors.New("compression pointer does not point back")
)

// newQuery is a standard query with ID id and the recursion desired bit for
// name (trailing dot optional) with type typ and class IN.
func newQuery(id uint16, name string, typ uint16) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	// One length octet per label, the dots' places included, and the
	// root's zero octet.
	if len(name)+2 > maxName {
		return nil, errLongName
	}
	b := make([]byte, headerLen, headerLen+len(name)+2+4)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flagRD)
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT; the other counts are 0
	for rest := name; ; {
		label, tail, more := strings.Cut(rest, ".")
		switch {
		case label == "":
			return nil, errEmptyLabel
		case len(label) > maxLabel:
			return nil, errLongLabel
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
		if !more {
			break
		}
		rest = tail
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint16(b, classIN), nil
}

// minTTL reads msg as the reply to the query with ID id asking for type
// typ: the smallest TTL among its answers of type typ and class IN, and
// whether there was one. An error means msg is not that reply (it is too
// short, has another ID, is not a response, or is malformed up to the end
// of its answers); a reply with a non-zero RCODE has no TTL. The authority
// and additional sections and the answers' data are not looked at.
func minTTL(msg []byte, id, typ uint16) (uint32, bool, error) {
	if len(msg) < headerLen {
		return 0, false, errTruncated
	}
	if binary.BigEndian.Uint16(msg) != id {
		return 0, false, errOtherID
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR == 0 {
		return 0, false, errNotResponse
	}
	if flags&0xf != 0 { // RCODE
		return 0, false, nil
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	off := headerLen
	for range qd {
		end, err := skipName(msg, off)
		if err != nil {
			return 0, false, err
		}
		off = end + 4 // QTYPE, QCLASS
		if off > len(msg) {
			return 0, false, errTruncated
		}
	}
	var best uint32
	found := false
	for range an {
		end, err := skipName(msg, off)
		if err != nil {
			return 0, false, err
		}
		if end+10 > len(msg) { // TYPE, CLASS, TTL, RDLENGTH
			return 0, false, errTruncated
		}
		rtype := binary.BigEndian.Uint16(msg[end:])
		class := binary.BigEndian.Uint16(msg[end+2:])
		ttl := binary.BigEndian.Uint32(msg[end+4:])
		off = end + 10 + int(binary.BigEndian.Uint16(msg[end+8:]))
		if off > len(msg) {
			return 0, false, errTruncated
		}
		if rtype == typ && class == classIN && (!found || ttl < best) {
			best, found = ttl, true
		}
	}
	return best, found, nil
}

// skipName checks the name at msg[off:] and says where what follows it
// starts. Compression pointers are followed to check the name they end
// with. Each must point before the labels that led to it (RFC 1035 4.1.4:
// to a prior occurrence), so pointers cannot loop; and the name, expanded,
// must fit in 255 octets.
func skipName(msg []byte, off int) (int, error) {
	end := -1    // where the name ends in place (after its first pointer)
	start := off // where the labels being read start
	length := 0  // octets of the expanded name so far
	for {
		if off >= len(msg) {
			return 0, errTruncated
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			length += 1 + c
			if length > maxName {
				return 0, errLongName
			}
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return end, nil
			}
			off += 1 + c
		case 0xc0:
			if off+1 >= len(msg) {
				return 0, errTruncated
			}
			if end < 0 {
				end = off + 2
			}
			to := (c&0x3f)<<8 | int(msg[off+1])
			if to >= start {
				return 0, errBadPointer
			}
			start, off = to, to
		default: // 0x40 and 0x80: extended and unallocated label types
			return 0, errBadLabelType
		}
	}
}
