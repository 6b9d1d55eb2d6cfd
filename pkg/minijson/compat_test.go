package minijson_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tunneld/tunneld/pkg/cli"
	"github.com/tunneld/tunneld/pkg/daemon"
	"github.com/tunneld/tunneld/pkg/desired"
	"github.com/tunneld/tunneld/pkg/minijson"
	"github.com/tunneld/tunneld/pkg/model"
)

// nasty holds every kind of character encoding/json escapes; invalid
// holds invalid UTF-8, which it writes as U+FFFD.
const (
	nasty   = "<a&b> \u2028\u2029 \x00\x01\x1f\x7f \"q\" \\ / \b\f\n\r\t é 😀 \ufffd end"
	invalid = "\xff \xc3( \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82"
)

var (
	when = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("", 5*3600+30*60))
	// cmpAddr compares netip.Addr and netip.Prefix, which have unexported
	// fields, by ==.
	cmpAddr = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})
)

func fullFacts() daemon.Facts {
	return daemon.Facts{
		Started:      when,
		LastReload:   when.Add(time.Second).UTC(),
		ConfigFile:   nasty,
		ConfigSum:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		PID:          4242,
		LastConverge: time.Now(), // with a monotonic reading
		Converges:    math.MaxInt32,
		LastError:    nasty,
		LastErrorAt:  time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		Cleared:      &daemon.ClearedError{Err: nasty, At: when, Cleared: when.Add(time.Second).UTC(), By: nasty},
		Tunnels: []desired.TunnelStatus{
			{Name: "moe", Up: true, Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddr("2001:db8::2")},
			{Name: nasty, Reason: nasty, Blocked: true, Remote: netip.MustParseAddr("fe80::1%eth0"),
				Held:      []model.Route{{Table: 42, Dst: netip.MustParsePrefix("192.168.2.0/24"), Via: netip.MustParseAddr("10.0.0.2"), Dev: nasty, OnLink: true, Metric: 7, Src: netip.MustParseAddr("10.0.0.1"), Type: model.RouteUnreachable}},
				Withdrawn: []desired.WithdrawnRoute{{Route: model.Route{Table: 254, Dst: netip.MustParsePrefix("::/0"), Metric: 1024, Type: model.RouteUnreachable}, Why: nasty}}, Dropping: nasty, LocalGuess: true, Looped: nasty, LocalAbsent: nasty},
			{Local: netip.MustParseAddr("::ffff:192.0.2.1")},
			{Name: "larry", Reason: nasty, Refused: true},
			{Name: "curly", Up: true, Standing: []model.Route{{Table: 254, Dst: netip.MustParsePrefix("10.70.0.0/24"), Type: model.RouteUnreachable}}},
		},
		Notes:      []string{nasty, ""},
		LastChange: map[string]string{"moe": "12:00:00", nasty: nasty, "": "", "Moe": "x", "<": ">"},
		Held:       []string{"link moe"},
		Holds:      []daemon.Hold{{Object: "route 10.9.0.0/16 table main", Tunnel: nasty, Until: when}, {Object: nasty, Until: when.UTC()}},
		Resolved:   map[string][]string{"peer.example": {"198.51.100.2", "2001:db8::2"}, "gone": nil, "empty": {}},
		Kept:       map[string][]string{"peer.example": {"2001:db8::2"}, nasty: {nasty}, "empty": {}},
		Failing:    map[string]string{"peer.example": nasty, nasty: ""},
		Hooks:      map[string]daemon.HookRun{"moe": {Path: "/etc/tunneld/he-update.sh", Reason: "moved", At: when, Status: "exit status 1", Try: 3, Retry: when.Add(2 * time.Minute), Running: when.Add(time.Minute), RunningFor: "up", MovedBack: true}, nasty: {Status: nasty}},
		Unmarked:   map[string]int{"moe": 7, nasty: math.MaxInt32},
	}
}

func fullStatus() cli.Status {
	f := fullFacts()
	return cli.Status{
		Tunnels: []cli.TunnelReport{{
			Name: "moe", Mode: model.ModeIPIP6, Up: true, Reason: nasty,
			LocalWanted: "192.0.2.1", LocalActual: "192.0.2.2", RemoteWanted: "any", RemoteActual: nasty,
			LocalDevice: "wan", LocalDeviceAddrs: []string{"192.0.2.1/24", "2001:db8::1/64"},
			LocalDeviceUnusable: []string{"2001:db8::5/64 is in duplicate address detection"}, RemoteName: "peer.example",
			RemoteAnswers: []string{"198.51.100.2", nasty}, RemoteKept: []string{nasty}, RemoteFailing: nasty, Foreign: true,
			MTU: -1, Stats: model.Stats{RxPackets: 1, TxPackets: 2, RxBytes: math.MaxUint64, TxBytes: 4, RxErrors: 5, TxErrors: 6, RxDropped: 7, TxDropped: 8},
			LastChange: "yesterday",
			Routes:     []string{"routes: 192.168.2.0/24 table vpn unreachable until moe is up", nasty},
			LastHook:   &daemon.HookRun{Path: nasty, Reason: "start", At: when.UTC(), Status: "killed after 30s", Try: math.MaxInt32, Retry: when.Add(30 * time.Second).UTC(), Running: when.UTC(), RunningFor: nasty, MovedBack: true},
			Held:       []daemon.Hold{{Object: `tunnel "moe"`, Tunnel: "moe", Until: when}},
			Underlay:   []string{"wan has no carrier", nasty}, Dropping: nasty, Looped: nasty, LocalAbsent: nasty, Unrouted: nasty, LocalGuess: true,
		}, {Name: "larry"}},
		NotReloaded:  true,
		ConfigErrors: []string{nasty, "t.toml:3:7: tunnel.moe.ttl: 999 is out of range 1–255"},
		FromDaemon:   true,
		Drift:        []string{"ip link add moe\n  type ipip", ""},
		Notes:        []string{nasty},
		Warnings:     []string{nasty, "net.ipv6.conf.wan.accept_ra is 1"},
		Drops:        map[string]model.Counter{"input: drop": {Packets: 1, Bytes: 2}, "b": {}},
		Daemon:       &f,
		DaemonError:  nasty,
	}
}

// cases are the values tunneld writes: fully populated, zero, and with
// empty but non-nil slices and maps.
var cases = []struct {
	name  string
	v     any
	lossy bool // invalid UTF-8: it does not read back as it was
}{
	{"facts full", fullFacts(), false},
	{"facts zero", daemon.Facts{}, false},
	{"facts empty", daemon.Facts{Tunnels: []desired.TunnelStatus{}, Notes: []string{}, LastChange: map[string]string{}, Held: []string{}, Holds: []daemon.Hold{}, Resolved: map[string][]string{}}, false},
	{"status full", fullStatus(), false},
	{"status zero", cli.Status{}, false},
	{"status zero daemon", cli.Status{Daemon: &daemon.Facts{}, Tunnels: []cli.TunnelReport{{}}, Drops: map[string]model.Counter{}}, false},
	{"sysctl", map[string]string{"net/ipv4/ip_forward": "0", "net/ipv6/conf/all/forwarding": "1", nasty: nasty, "": ""}, false},
	{"sysctl one", map[string]string{"net/ipv4/conf/moe/rp_filter": "2"}, false},
	{"sysctl empty", map[string]string{}, false},
	{"sysctl nil", map[string]string(nil), false},
	{"sysctl invalid", map[string]string{invalid: invalid, "x": invalid + "<"}, true},
	{"facts invalid", daemon.Facts{Notes: []string{invalid}, LastChange: map[string]string{invalid: "x"}}, true},
}

// TestFullyPopulated fails when a field of a type the cases hold is zero in
// all of them: a new field must be given a value here, and so be checked.
func TestFullyPopulated(t *testing.T) {
	set := map[string]bool{}
	for _, tc := range cases {
		walk(reflect.ValueOf(tc.v), set)
	}
	for f, ok := range set {
		if !ok {
			t.Errorf("no case sets %s", f)
		}
	}
}

func walk(v reflect.Value, set map[string]bool) {
	if v.Type().Implements(reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), set)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), set)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walk(it.Value(), set)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			name := v.Type().String() + "." + v.Type().Field(i).Name
			set[name] = set[name] || !v.Field(i).IsZero()
			walk(v.Field(i), set)
		}
	}
}

// TestMarshal: the bytes are encoding/json's, compact and indented, as
// its Encoder writes them.
func TestMarshal(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(tc.v); err != nil {
				t.Fatal(err)
			}
			got, err := minijson.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), string(got)+"\n"); diff != "" {
				t.Errorf("Marshal (-want +got):\n%s", diff)
			}
			want.Reset()
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(tc.v); err != nil {
				t.Fatal(err)
			}
			got, err = minijson.MarshalIndent(tc.v, "  ")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), string(got)+"\n"); diff != "" {
				t.Errorf("MarshalIndent (-want +got):\n%s", diff)
			}
			other, _ := json.MarshalIndent(tc.v, "", "\t")
			if got, _ := minijson.MarshalIndent(tc.v, "\t"); !bytes.Equal(got, other) {
				t.Errorf("MarshalIndent with a tab:\n%s\nwant\n%s", got, other)
			}
		})
	}
}

// TestUnmarshal: what Unmarshal makes of encoding/json's output, compact
// and indented, is what json.Unmarshal makes of it.
func TestUnmarshal(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			compact, _ := json.Marshal(tc.v)
			indented, _ := json.MarshalIndent(tc.v, "", "  ")
			for _, b := range [][]byte{compact, indented} {
				want, got := reflect.New(reflect.TypeOf(tc.v)), reflect.New(reflect.TypeOf(tc.v))
				if err := json.Unmarshal(b, want.Interface()); err != nil {
					t.Fatal(err)
				}
				if err := minijson.Unmarshal(b, got.Interface()); err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				if diff := cmp.Diff(want.Interface(), got.Interface(), cmpAddr); diff != "" {
					t.Errorf("Unmarshal(%s) (-want +got):\n%s", b, diff)
				}
			}
		})
	}
}

// TestRoundTrip: encoding/json reads back what Marshal wrote, and so does
// Unmarshal (up to nil and empty, which omitempty and null do not keep
// apart; with invalid UTF-8, as encoding/json reads back its own output).
func TestRoundTrip(t *testing.T) {
	opts := cmp.Options{cmpAddr, cmpopts.EquateEmpty()}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := minijson.MarshalIndent(tc.v, "  ")
			if err != nil {
				t.Fatal(err)
			}
			want := tc.v
			if tc.lossy {
				w := reflect.New(reflect.TypeOf(tc.v))
				j, _ := json.Marshal(tc.v)
				if err := json.Unmarshal(j, w.Interface()); err != nil {
					t.Fatal(err)
				}
				want = w.Elem().Interface()
			}
			for name, unmarshal := range map[string]func([]byte, any) error{"json": json.Unmarshal, "minijson": minijson.Unmarshal} {
				got := reflect.New(reflect.TypeOf(tc.v))
				if err := unmarshal(b, got.Interface()); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(want, got.Elem().Interface(), opts); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// zeroer's IsZero disagrees with reflect: omitzero follows the method.
type zeroer int

func (z zeroer) IsZero() bool { return z == 7 }

// tagged has a field of each kind Marshal writes, with each tag.
type tagged struct {
	I     int     `json:"i"`
	I8    int8    `json:",omitempty"`
	U16   uint16  `json:"u,omitzero"`
	B     bool    `json:",omitempty"`
	S     string  `json:"s,omitempty"`
	Skip  string  `json:"-"`
	P     *tagged `json:",omitempty"`
	PZ    *tagged `json:",omitzero"`
	L     []int   `json:",omitempty"`
	LZ    []int   `json:",omitzero"`
	M     map[model.Mode]uint8
	MZ    map[string]string `json:",omitzero"`
	T     time.Time         `json:",omitempty"`
	TZ    time.Time         `json:",omitzero"`
	A     netip.Addr        `json:",omitzero"`
	Z     zeroer            `json:",omitzero"`
	ZE    zeroer            `json:",omitempty,omitzero"`
	N     struct{ X int }   `json:",omitempty"`
	NZ    struct{ X int }   `json:",omitzero"`
	Any   any
	inner int
}

// TestTags: the kinds and tags beyond what tunneld's types use today are
// written and read as encoding/json does.
func TestTags(t *testing.T) {
	full := tagged{I: -1, I8: -128, U16: 65535, B: true, S: "s", Skip: "skip", P: &tagged{I: 2}, PZ: &tagged{},
		L: []int{1}, LZ: []int{}, M: map[model.Mode]uint8{model.ModeGRE: 1, model.ModeSIT: 255}, MZ: map[string]string{},
		T: when, TZ: when, A: netip.MustParseAddr("::1"), Z: 1, ZE: 7, N: struct{ X int }{1}, Any: "x", inner: 1}
	for _, v := range []tagged{{}, {Z: 7, ZE: 0}, full} {
		want, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := minijson.MarshalIndent(v, " ")
		if diff := cmp.Diff(string(want), string(got)); err != nil || diff != "" {
			t.Errorf("MarshalIndent: %v (-want +got):\n%s", err, diff)
		}
		want, _ = json.Marshal(v)
		var w, g tagged
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		w.Any = nil // Unmarshal does not read into interfaces
		want = bytes.Replace(want, []byte(`"Any":"x"`), []byte(`"Any":null`), 1)
		if err := minijson.Unmarshal(want, &g); err != nil {
			t.Fatalf("Unmarshal(%s): %v", want, err)
		}
		if diff := cmp.Diff(w, g, cmpAddr, cmp.AllowUnexported(tagged{})); diff != "" {
			t.Errorf("Unmarshal(%s) (-want +got):\n%s", want, diff)
		}
	}
}
