package resolve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/dns/dnsmessage"
)

// The codec is checked against golang.org/x/net/dns/dnsmessage: it parses
// the queries newQuery builds and packs (with name compression) the replies
// minTTL reads. Only the tests import it; the binary does not.

func TestNewQuery(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name255 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".") // 253 octets: 255 encoded
	tests := []struct {
		name    string
		in      string
		id      uint16
		typ     uint16
		want    string // the question's name as dnsmessage reads it
		wantErr error
	}{
		{name: "A", in: "peer.example", id: 0x7a00, typ: typeA, want: "peer.example."},
		{name: "AAAA", in: "peer.example", id: 0x7a01, typ: typeAAAA, want: "peer.example."},
		{name: "trailing dot", in: "peer.example.", id: 1, typ: typeA, want: "peer.example."},
		{name: "one label", in: "router", id: 2, typ: typeA, want: "router."},
		{name: "case and hyphens kept", in: "Peer-1.Example.ORG", id: 3, typ: typeA, want: "Peer-1.Example.ORG."},
		{name: "label of 63", in: label63 + ".example", id: 4, typ: typeA, want: label63 + ".example."},
		{name: "name of 255 encoded", in: name255, id: 5, typ: typeA, want: name255 + "."},
		{name: "name of 255 encoded, trailing dot", in: name255 + ".", id: 6, typ: typeA, want: name255 + "."},
		{name: "empty", in: "", wantErr: errEmptyLabel},
		{name: "root", in: ".", wantErr: errEmptyLabel},
		{name: "leading dot", in: ".example", wantErr: errEmptyLabel},
		{name: "empty label inside", in: "peer..example", wantErr: errEmptyLabel},
		{name: "two trailing dots", in: "peer.example..", wantErr: errEmptyLabel},
		{name: "label of 64", in: label63 + "a.example", wantErr: errLongLabel},
		{name: "name of 256 encoded", in: name255 + "b", wantErr: errLongName},
		{name: "name of 256 encoded, trailing dot", in: name255 + "b.", wantErr: errLongName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := newQuery(tt.id, tt.in, tt.typ)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("newQuery(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got dnsmessage.Message
			if err := got.Unpack(b); err != nil {
				t.Fatalf("dnsmessage cannot read the query: %v", err)
			}
			want := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: tt.id, RecursionDesired: true},
				Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(tt.want), Type: dnsmessage.Type(tt.typ), Class: dnsmessage.ClassINET}},
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("query as dnsmessage reads it (-want +got):\n%s", diff)
			}
			// The same query packed by dnsmessage: byte for byte.
			wantB, err := want.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantB, b); diff != "" {
				t.Errorf("query bytes (-want +got):\n%s", diff)
			}
		})
	}
}

// result is what minTTL returns, for comparing.
type result struct {
	TTL   uint32
	Found bool
	Err   error
}

func minTTLResult(msg []byte, id, typ uint16) result {
	ttl, found, err := minTTL(msg, id, typ)
	return result{ttl, found, err}
}

var resultOpts = cmpopts.EquateErrors()

// Resources for the replies.
func rrA(name string, ttl uint32) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AResource{A: [4]byte{198, 51, 100, byte(ttl)}},
	}
}

func rrAAAA(name string, ttl uint32) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AAAAResource{AAAA: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(ttl)}},
	}
}

func rrCNAME(name, target string, ttl uint32) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)},
	}
}

func rrNS(name, host string, ttl uint32) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.NSResource{NS: dnsmessage.MustNewName(host)},
	}
}

func inClass(r dnsmessage.Resource, c dnsmessage.Class) dnsmessage.Resource {
	r.Header.Class = c
	return r
}

func question(name string, typ dnsmessage.Type) dnsmessage.Question {
	return dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}
}

// reply is a response to query 0x7a00 for peer.example with these answers.
func reply(typ dnsmessage.Type, answers ...dnsmessage.Resource) *dnsmessage.Message {
	return &dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x7a00, Response: true, RecursionDesired: true, RecursionAvailable: true},
		Questions: []dnsmessage.Question{question("peer.example.", typ)},
		Answers:   answers,
	}
}

func with(m *dnsmessage.Message, f func(*dnsmessage.Message)) *dnsmessage.Message {
	f(m)
	return m
}

func pack(t testing.TB, m *dnsmessage.Message) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw is a message from its header fields and its sections' octets.
func raw(id, flags, qd, an uint16, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, qd)
	b = binary.BigEndian.AppendUint16(b, an)
	b = append(b, 0, 0, 0, 0)
	return append(b, bytes.Join(body, nil)...)
}

// rrTail is an answer's octets after its name: an A record of class IN.
func rrTail(ttl uint32) []byte {
	b := binary.BigEndian.AppendUint16(nil, typeA)
	b = binary.BigEndian.AppendUint16(b, classIN)
	b = binary.BigEndian.AppendUint32(b, ttl)
	b = binary.BigEndian.AppendUint16(b, 4)
	return append(b, 198, 51, 100, 1)
}

// qTail is a question's octets after its name: type A, class IN.
var qTail = []byte{0, 1, 0, 1}

const resp = flagQR | flagRD

type minTTLCase struct {
	name string
	m    *dnsmessage.Message // packed into msg when set
	msg  []byte
	id   uint16 // 0x7a00 when 0
	typ  uint16
	want result
}

func minTTLCases(t testing.TB) []minTTLCase {
	l63 := strings.Repeat("\x3f"+strings.Repeat("x", 63), 3) // three labels of 63: 192 octets
	cases := []minTTLCase{
		{name: "one A", m: reply(dnsmessage.TypeA, rrA("peer.example.", 300)), typ: typeA, want: result{300, true, nil}},
		{name: "smallest of several A", m: reply(dnsmessage.TypeA, rrA("peer.example.", 300), rrA("peer.example.", 42), rrA("peer.example.", 7200)), typ: typeA, want: result{42, true, nil}},
		{name: "mixed types, A asked", m: reply(dnsmessage.TypeA, rrA("peer.example.", 300), rrAAAA("peer.example.", 10), rrA("peer.example.", 60)), typ: typeA, want: result{60, true, nil}},
		{name: "mixed types, AAAA asked", m: reply(dnsmessage.TypeAAAA, rrA("peer.example.", 300), rrAAAA("peer.example.", 10), rrAAAA("peer.example.", 20), rrA("peer.example.", 5)), typ: typeAAAA, want: result{10, true, nil}},
		{name: "CNAME chain before the A records", m: reply(dnsmessage.TypeA,
			rrCNAME("peer.example.", "edge.cdn.example.", 5),
			rrCNAME("edge.cdn.example.", "node.eu.cdn.example.", 3),
			rrA("node.eu.cdn.example.", 600),
			rrA("node.eu.cdn.example.", 120),
		), typ: typeA, want: result{120, true, nil}},
		{name: "CNAME chain, AAAA asked, A answers only", m: reply(dnsmessage.TypeAAAA,
			rrCNAME("peer.example.", "edge.cdn.example.", 5),
			rrA("edge.cdn.example.", 600),
		), typ: typeAAAA, want: result{0, false, nil}},
		{name: "CNAME only", m: reply(dnsmessage.TypeA, rrCNAME("peer.example.", "gone.example.", 30)), typ: typeA, want: result{0, false, nil}},
		{name: "no answers", m: reply(dnsmessage.TypeAAAA), typ: typeAAAA, want: result{0, false, nil}},
		{name: "other class ignored", m: reply(dnsmessage.TypeA, inClass(rrA("peer.example.", 1), dnsmessage.ClassCHAOS), rrA("peer.example.", 50)), typ: typeA, want: result{50, true, nil}},
		{name: "only another class", m: reply(dnsmessage.TypeA, inClass(rrA("peer.example.", 1), dnsmessage.ClassCHAOS)), typ: typeA, want: result{0, false, nil}},
		{name: "TTL 0 counts", m: reply(dnsmessage.TypeA, rrA("peer.example.", 30), rrA("peer.example.", 0)), typ: typeA, want: result{0, true, nil}},
		{name: "largest TTL", m: reply(dnsmessage.TypeA, rrA("peer.example.", 1<<32-1)), typ: typeA, want: result{1<<32 - 1, true, nil}},
		{name: "authority and additional records not counted", m: with(reply(dnsmessage.TypeA, rrA("peer.example.", 100)), func(m *dnsmessage.Message) {
			m.Authorities = []dnsmessage.Resource{rrNS("example.", "ns.example.", 1), rrA("peer.example.", 2)}
			m.Additionals = []dnsmessage.Resource{rrA("ns.example.", 3)}
		}), typ: typeA, want: result{100, true, nil}},
		{name: "two questions", m: with(reply(dnsmessage.TypeA, rrA("other.example.", 9), rrA("peer.example.", 90)), func(m *dnsmessage.Message) {
			m.Questions = append(m.Questions, question("other.example.", dnsmessage.TypeA))
		}), typ: typeA, want: result{9, true, nil}},
		{name: "no questions", m: with(reply(dnsmessage.TypeA, rrA("peer.example.", 90)), func(m *dnsmessage.Message) {
			m.Questions = nil
		}), typ: typeA, want: result{90, true, nil}},
		{name: "TC set: the answers there count", m: with(reply(dnsmessage.TypeA, rrA("peer.example.", 70)), func(m *dnsmessage.Message) {
			m.Truncated = true
		}), typ: typeA, want: result{70, true, nil}},
		{name: "NXDOMAIN", m: with(reply(dnsmessage.TypeA), func(m *dnsmessage.Message) {
			m.RCode = dnsmessage.RCodeNameError
		}), typ: typeA, want: result{0, false, nil}},
		{name: "SERVFAIL with an answer", m: with(reply(dnsmessage.TypeA, rrA("peer.example.", 10)), func(m *dnsmessage.Message) {
			m.RCode = dnsmessage.RCodeServerFailure
		}), typ: typeA, want: result{0, false, nil}},
		{name: "REFUSED", m: with(reply(dnsmessage.TypeA), func(m *dnsmessage.Message) {
			m.RCode = dnsmessage.RCodeRefused
		}), typ: typeA, want: result{0, false, nil}},
		{name: "wrong ID", m: reply(dnsmessage.TypeA, rrA("peer.example.", 10)), id: 0x7a01, typ: typeA, want: result{Err: errOtherID}},
		{name: "QR unset", m: with(reply(dnsmessage.TypeA, rrA("peer.example.", 10)), func(m *dnsmessage.Message) {
			m.Response = false
		}), typ: typeA, want: result{Err: errNotResponse}},
		{name: "QR unset, no answers: the query itself", m: with(reply(dnsmessage.TypeA), func(m *dnsmessage.Message) {
			m.Header = dnsmessage.Header{ID: 0x7a00, RecursionDesired: true}
		}), typ: typeA, want: result{Err: errNotResponse}},

		// Hand-made, for what dnsmessage does not build.
		{name: "empty", msg: nil, typ: typeA, want: result{Err: errTruncated}},
		{name: "header cut", msg: raw(0x7a00, resp, 0, 0)[:11], typ: typeA, want: result{Err: errTruncated}},
		{name: "header only", msg: raw(0x7a00, resp, 0, 0), typ: typeA, want: result{0, false, nil}},
		{name: "more answers counted than present", msg: raw(0x7a00, resp, 0, 2, []byte{0}, rrTail(5)), typ: typeA, want: result{Err: errTruncated}},
		{name: "more questions counted than present", msg: raw(0x7a00, resp, 2, 0, []byte{0}, qTail), typ: typeA, want: result{Err: errTruncated}},
		{name: "pointer to itself", msg: raw(0x7a00, resp, 0, 1, []byte{0xc0, 12}, rrTail(5)), typ: typeA, want: result{Err: errBadPointer}},
		{name: "pointer to its own labels", msg: raw(0x7a00, resp, 0, 1, []byte{1, 'a', 0xc0, 12}, rrTail(5)), typ: typeA, want: result{Err: errBadPointer}},
		{name: "two pointers in a loop", msg: raw(0x7a00, resp, 1, 1,
			[]byte{0xc0, 18}, qTail, // question at 12: to 18
			[]byte{0xc0, 12}, rrTail(5), // answer at 18: to 12
		), typ: typeA, want: result{Err: errBadPointer}},
		{name: "loop through a backward pointer", msg: raw(0x7a00, resp, 0, 2,
			[]byte{1, 'a', 0}, rrTail(7)[:10], []byte{1, 'q', 0xc0, 29}, // answer at 12, its data at 25: q and a pointer to 29
			[]byte{0xc0, 25}, rrTail(5), // answer at 29: to 25
		), typ: typeA, want: result{Err: errBadPointer}},
		{name: "forward pointer", msg: raw(0x7a00, resp, 1, 0, []byte{0xc0, 14}, []byte{0}, qTail), typ: typeA, want: result{Err: errBadPointer}},
		{name: "pointer out of range", msg: raw(0x7a00, resp, 0, 1, []byte{0xff, 0xff}, rrTail(5)), typ: typeA, want: result{Err: errBadPointer}},
		{name: "pointer past the end", msg: raw(0x7a00, resp, 1, 1, []byte{1, 'a', 0}, qTail, []byte{0xc0, 200}, rrTail(5)), typ: typeA, want: result{Err: errBadPointer}},
		{name: "pointer cut", msg: raw(0x7a00, resp, 0, 1, []byte{0xc0}), typ: typeA, want: result{Err: errTruncated}},
		{name: "pointer to a pointer", msg: raw(0x7a00, resp, 1, 2,
			[]byte{7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}, qTail, // question at 12: example.
			[]byte{4, 'p', 'e', 'e', 'r', 0xc0, 12}, rrTail(50), // answer at 25: peer.example.
			[]byte{0xc0, 25}, rrTail(40), // peer.example. again
		), typ: typeA, want: result{40, true, nil}},
		{name: "pointer into the header", msg: raw(0x7a00, resp, 0, 1, []byte{0xc0, 5}, rrTail(5)), typ: typeA, want: result{5, true, nil}}, // reads 0 at 5 (QDCOUNT's low octet): the root
		{name: "label type 01", msg: raw(0x7a00, resp, 0, 1, []byte{0x41, 'a', 0}, rrTail(5)), typ: typeA, want: result{Err: errBadLabelType}},
		{name: "label type 10", msg: raw(0x7a00, resp, 0, 1, []byte{0x81, 'a', 0}, rrTail(5)), typ: typeA, want: result{Err: errBadLabelType}},
		{name: "label past the end", msg: raw(0x7a00, resp, 0, 1, []byte{9, 'a', 'b'}), typ: typeA, want: result{Err: errTruncated}},
		{name: "no terminating zero", msg: raw(0x7a00, resp, 0, 1, []byte{1, 'a'}), typ: typeA, want: result{Err: errTruncated}},
		{name: "record header cut", msg: raw(0x7a00, resp, 0, 1, []byte{0}, rrTail(5)[:9]), typ: typeA, want: result{Err: errTruncated}},
		{name: "RDLENGTH past the end", msg: raw(0x7a00, resp, 0, 1, []byte{0}, rrTail(5)[:13]), typ: typeA, want: result{Err: errTruncated}},
		{name: "question cut", msg: raw(0x7a00, resp, 1, 0, []byte{0}, qTail[:3]), typ: typeA, want: result{Err: errTruncated}},
		{name: "name of 255", msg: raw(0x7a00, resp, 0, 1, []byte(l63), []byte{61}, bytes.Repeat([]byte{'y'}, 61), []byte{0}, rrTail(8)), typ: typeA, want: result{8, true, nil}},
		{name: "name of 256", msg: raw(0x7a00, resp, 0, 1, []byte(l63), []byte{62}, bytes.Repeat([]byte{'y'}, 62), []byte{0}, rrTail(8)), typ: typeA, want: result{Err: errLongName}},
		{name: "name of 257 through a pointer", msg: raw(0x7a00, resp, 1, 1,
			[]byte(l63), []byte{0}, qTail, // question at 12: 193 octets
			[]byte{63}, bytes.Repeat([]byte{'z'}, 63), []byte{0xc0, 12}, rrTail(8),
		), typ: typeA, want: result{Err: errLongName}},
	}
	for i := range cases {
		if cases[i].m != nil {
			cases[i].msg = pack(t, cases[i].m)
		}
		if cases[i].id == 0 {
			cases[i].id = 0x7a00
		}
	}
	return cases
}

func TestMinTTL(t *testing.T) {
	for _, tt := range minTTLCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			got := minTTLResult(tt.msg, tt.id, tt.typ)
			if diff := cmp.Diff(tt.want, got, resultOpts); diff != "" {
				t.Errorf("minTTL (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompressed checks that the replies dnsmessage packs for the tests do
// use name compression, and in several hops.
func TestCompressed(t *testing.T) {
	for _, tt := range minTTLCases(t) {
		if strings.HasPrefix(tt.name, "CNAME chain before") {
			// edge.cdn.example. in the second answer's name points into
			// the first's data, where cdn.example. is a label and a
			// pointer to the question's example.
			if n := bytes.Count(tt.msg, []byte{0xc0}); n < 5 {
				t.Errorf("%s: %d pointers, want at least 5:\n% x", tt.name, n, tt.msg)
			}
			return
		}
	}
	t.Fatal("no CNAME chain case")
}

// TestMinTTLTruncated reads every prefix of every case's message: none may
// panic; a prefix that ends before the answer section does (before the
// header does, for an error reply) is reported truncated, and one that ends
// after it reads as the whole message.
func TestMinTTLTruncated(t *testing.T) {
	for _, tt := range minTTLCases(t) {
		full := minTTLResult(tt.msg, tt.id, tt.typ)
		end := -1 // where the answers end, when dnsmessage says
		if tt.m != nil {
			m := *tt.m
			m.Authorities, m.Additionals = nil, nil
			end = len(pack(t, &m))
			if m.RCode != dnsmessage.RCodeSuccess {
				end = headerLen // an error reply is not read past its header
			}
		}
		for n := range len(tt.msg) {
			got := minTTLResult(tt.msg[:n], tt.id, tt.typ)
			switch {
			case end >= 0 && n >= end:
				if diff := cmp.Diff(full, got, resultOpts); diff != "" {
					t.Errorf("%s, first %d of %d octets, after the answers (-want +got):\n%s", tt.name, n, len(tt.msg), diff)
				}
			case end >= 0 && full.Err == nil:
				if diff := cmp.Diff(result{Err: errTruncated}, got, resultOpts); diff != "" {
					t.Errorf("%s, first %d of %d octets (-want +got):\n%s", tt.name, n, len(tt.msg), diff)
				}
			default:
				if !errors.Is(got.Err, errTruncated) && cmp.Diff(full, got, resultOpts) != "" {
					t.Errorf("%s, first %d of %d octets: %+v, want truncated or as the whole message (%+v)", tt.name, n, len(tt.msg), got, full)
				}
			}
		}
	}
}

// dnsmessageTTL is what minTTL should say of a message dnsmessage reads.
func dnsmessageTTL(m *dnsmessage.Message, typ uint16) result {
	if m.RCode != dnsmessage.RCodeSuccess {
		return result{}
	}
	var r result
	for _, a := range m.Answers {
		if a.Header.Type == dnsmessage.Type(typ) && a.Header.Class == dnsmessage.ClassINET && (!r.Found || a.Header.TTL < r.TTL) {
			r.TTL, r.Found = a.Header.TTL, true
		}
	}
	return r
}

// TestMinTTLAgainstDNSMessage checks every case both codecs read against
// dnsmessage's reading.
func TestMinTTLAgainstDNSMessage(t *testing.T) {
	for _, tt := range minTTLCases(t) {
		var m dnsmessage.Message
		if m.Unpack(tt.msg) != nil || tt.want.Err != nil {
			continue
		}
		if diff := cmp.Diff(dnsmessageTTL(&m, tt.typ), tt.want, resultOpts); diff != "" {
			t.Errorf("%s: the case's want differs from dnsmessage's reading (-dnsmessage +want):\n%s", tt.name, diff)
		}
	}
}

// FuzzParse reads arbitrary messages: no panic, and where dnsmessage reads
// the message too the two agree.
func FuzzParse(f *testing.F) {
	for _, tt := range minTTLCases(f) {
		f.Add(tt.msg, tt.id, tt.typ)
	}
	f.Fuzz(func(t *testing.T, msg []byte, id, typ uint16) {
		got := minTTLResult(msg, id, typ)
		if got.Err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(msg) != nil {
			return // minTTL reads less of a message (not the records' data nor the last two sections)
		}
		if diff := cmp.Diff(dnsmessageTTL(&m, typ), got, resultOpts); diff != "" {
			t.Errorf("minTTL differs from dnsmessage (-dnsmessage +minTTL):\n%s", diff)
		}
	})
}

// FuzzNewQuery builds queries for arbitrary names: dnsmessage must read
// each back, and refuse the names newQuery refuses.
func FuzzNewQuery(f *testing.F) {
	for _, s := range []string{"peer.example", "peer.example.", "", ".", "a..b", strings.Repeat("a", 64), strings.Repeat("a.", 127)} {
		f.Add(s, uint16(0x7a00), typeA)
	}
	f.Fuzz(func(t *testing.T, name string, id, typ uint16) {
		fqdn := strings.TrimSuffix(name, ".") + "."
		var wantB []byte
		n, wantErr := dnsmessage.NewName(fqdn)
		if wantErr == nil {
			want := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
				Questions: []dnsmessage.Question{{Name: n, Type: dnsmessage.Type(typ), Class: dnsmessage.ClassINET}},
			}
			wantB, wantErr = want.Pack()
		}
		if wantErr == nil && fqdn == "." {
			wantErr = errEmptyLabel // dnsmessage packs the root; newQuery refuses it
		}
		b, err := newQuery(id, name, typ)
		if err != nil {
			if wantErr == nil && len(fqdn) != maxName { // 255 text octets are 256 encoded: newQuery refuses them
				t.Fatalf("newQuery(%q): %v; dnsmessage packs it", name, err)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("newQuery(%q) packed what dnsmessage refuses (%v)", name, wantErr)
		}
		if diff := cmp.Diff(wantB, b); diff != "" {
			t.Errorf("newQuery(%q) (-dnsmessage +newQuery):\n%s", name, diff)
		}
	})
}
