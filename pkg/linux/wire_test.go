package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// canned is a transport that answers from a script: every send queues
// the datagrams its step builds from the request's sequence number.
type canned struct {
	t      *testing.T
	sent   [][]byte
	script []func(seq uint32) [][]byte
	queue  [][]byte
}

func (c *canned) send(b []byte) error {
	c.sent = append(c.sent, append([]byte(nil), b...))
	if len(c.script) == 0 {
		c.t.Fatalf("unexpected send %d", len(c.sent))
	}
	seq := binary.NativeEndian.Uint32(b[8:])
	c.queue = append(c.queue, c.script[0](seq)...)
	c.script = c.script[1:]
	return nil
}

func (c *canned) recv() ([]byte, error) {
	if len(c.queue) == 0 {
		return nil, errors.New("nothing left to receive")
	}
	b := c.queue[0]
	c.queue = c.queue[1:]
	return b, nil
}

func msg(typ netlink.HeaderType, flags netlink.HeaderFlags, seq uint32, data []byte) netlink.Message {
	return netlink.Message{Header: netlink.Header{Type: typ, Flags: flags, Sequence: seq}, Data: data}
}

func datagram(ms ...netlink.Message) []byte {
	var b []byte
	for _, m := range ms {
		b = appendMessage(b, m)
	}
	return b
}

func errno(code int32, extra ...byte) []byte {
	return append(binary.NativeEndian.AppendUint32(nil, uint32(code)), extra...)
}

func TestDump(t *testing.T) {
	obj := func(s string) []byte { return []byte(s) } // lengths not multiples of 4: padding
	tests := []struct {
		name   string
		script []func(seq uint32) [][]byte
		want   []string
		sends  int
		err    string
	}{{
		name: "objects over two datagrams, stale answer skipped",
		script: []func(uint32) [][]byte{func(seq uint32) [][]byte {
			return [][]byte{
				datagram(msg(netlink.Error, 0, seq-1, errno(-int32(unix.EEXIST)))), // a previous request's
				datagram(msg(16, netlink.Multi, seq, obj("a")), msg(16, netlink.Multi, seq, obj("bcdef"))),
				datagram(msg(16, netlink.Multi, seq, obj("gh")), msg(netlink.Done, netlink.Multi, seq, errno(0))),
			}
		}},
		want: []string{"a", "bcdef", "gh"}, sends: 1,
	}, {
		name: "interrupted dump started again",
		script: []func(uint32) [][]byte{
			func(seq uint32) [][]byte {
				return [][]byte{datagram(msg(16, netlink.Multi, seq, obj("old")), msg(netlink.Done, netlink.Multi|netlink.DumpInterrupted, seq, errno(0)))}
			},
			func(seq uint32) [][]byte {
				return [][]byte{datagram(msg(16, netlink.Multi, seq, obj("new")), msg(netlink.Done, netlink.Multi, seq, errno(0)))}
			},
		},
		want: []string{"new"}, sends: 2,
	}, {
		name: "kernel refuses the dump, with a message",
		script: []func(uint32) [][]byte{func(seq uint32) [][]byte {
			req := datagram(msg(unix.RTM_GETROUTE, netlink.Request|netlink.Dump, seq, make([]byte, 12)))
			tlv, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NLMSGERR_ATTR_MSG, Data: []byte("Invalid header\x00")}})
			return [][]byte{datagram(msg(netlink.Error, netlink.AcknowledgeTLVs, seq, errno(-int32(unix.EINVAL), append(req, tlv...)...)))}
		}},
		sends: 1, err: "invalid argument: Invalid header",
	}, {
		name: "error at the end of a dump",
		script: []func(uint32) [][]byte{func(seq uint32) [][]byte {
			return [][]byte{datagram(msg(16, netlink.Multi, seq, obj("a")), msg(netlink.Done, netlink.Multi, seq, errno(-int32(unix.EMSGSIZE))))}
		}},
		want: []string{"a"}, sends: 1, err: "message too long",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &canned{t: t, script: tt.script}
			seq := uint32(100)
			var got []string
			err := unwrap(dumpWith(c, func() uint32 { seq++; return seq }, unix.RTM_GETROUTE, make([]byte, 12),
				func() { got = got[:0] }, func(b []byte) error { got = append(got, string(b)); return nil }))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			if len(c.sent) != tt.sends {
				t.Errorf("%d requests sent, want %d", len(c.sent), tt.sends)
			}
		})
	}
}

// TestDumpInterruptedForever: a table that changes under every attempt
// gives an error after the retries, not a half-read table.
func TestDumpInterruptedForever(t *testing.T) {
	c := &canned{t: t}
	for range dumpRetries + 1 {
		c.script = append(c.script, func(seq uint32) [][]byte {
			return [][]byte{datagram(msg(netlink.Done, netlink.Multi|netlink.DumpInterrupted, seq, errno(0)))}
		})
	}
	seq := uint32(0)
	err := dumpWith(c, func() uint32 { seq++; return seq }, unix.RTM_GETLINK, nil, func() {}, func([]byte) error { return nil })
	if !errors.Is(err, errDumpInterrupted) || len(c.sent) != dumpRetries+1 {
		t.Errorf("err = %v after %d requests, want %v after %d", err, len(c.sent), errDumpInterrupted, dumpRetries+1)
	}
}

func TestEachMessageMalformed(t *testing.T) {
	b := datagram(msg(16, 0, 1, []byte("abcd")))
	binary.NativeEndian.PutUint32(b, uint32(len(b)+4)) // longer than the datagram
	if err := eachMessage(b, func(netlink.Header, []byte) {}); !errors.Is(err, errMalformed) {
		t.Errorf("err = %v, want %v", err, errMalformed)
	}
}

// TestListRules: list, through listRules, appends the decoded rules to
// the array it is given, starts again from it when the dump is
// interrupted, and names the table in a decode error; as the generic list
// it replaced did.
func TestListRules(t *testing.T) {
	rule := func(table uint8) []byte {
		b := make([]byte, fibRuleHdrLen)
		b[0], b[4] = unix.AF_INET, table
		return b
	}
	c := &canned{t: t, script: []func(uint32) [][]byte{
		func(seq uint32) [][]byte {
			return [][]byte{datagram(msg(unix.RTM_NEWRULE, netlink.Multi, seq, rule(1)), msg(netlink.Done, netlink.Multi|netlink.DumpInterrupted, seq, errno(0)))}
		},
		func(seq uint32) [][]byte {
			return [][]byte{datagram(msg(unix.RTM_NEWRULE, netlink.Multi, seq, rule(2)), msg(unix.RTM_NEWRULE, netlink.Multi, seq, rule(3)),
				msg(netlink.Done, netlink.Multi, seq, errno(0)))}
		},
		func(seq uint32) [][]byte {
			return [][]byte{datagram(msg(unix.RTM_NEWRULE, netlink.Multi, seq, []byte{1}), msg(netlink.Done, netlink.Multi, seq, errno(0)))}
		},
	}}
	k := &Kernel{w: c}
	into := make([]ruleMsg, 1, 4)
	got, err := k.listRules(into, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].table != 2 || got[1].table != 3 || &got[0] != &into[0] {
		t.Errorf("rules %+v (in the array given: %t), want tables 2 and 3 in it", got, len(got) > 0 && &got[0] == &into[0])
	}
	got, err = k.listRules(nil, unix.AF_INET)
	if want := "list rules: decode: short rule message"; err == nil || err.Error() != want || got != nil {
		t.Errorf("malformed rule: %v, %v; want nil, %q", got, err, want)
	}
}
