package logfmt

import (
	"log/slog"
	"testing"
)

// TestParseLevel: the four names in any case, as slog reads them; the
// rest is an error that names what is accepted.
func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    Level
		wantErr string
	}{
		{in: "debug", want: Debug},
		{in: "DEBUG", want: Debug},
		{in: "info", want: Info},
		{in: "Info", want: Info},
		{in: "warn", want: Warn},
		{in: "wArN", want: Warn},
		{in: "error", want: Error},
		{in: "ERROR", want: Error},
		{in: "", wantErr: `unknown level "" (want debug, info, warn or error)`},
		{in: "verbose", wantErr: `unknown level "verbose" (want debug, info, warn or error)`},
		{in: "warning", wantErr: `unknown level "warning" (want debug, info, warn or error)`},
		{in: " info", wantErr: `unknown level " info" (want debug, info, warn or error)`},
		{in: "info+4", wantErr: `unknown level "info+4" (want debug, info, warn or error)`},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseLevel(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		// slog reads the same name as the same level.
		var sl slog.Level
		if err := sl.UnmarshalText([]byte(tt.in)); err != nil || sl != slogLevels[got] {
			t.Errorf("slog reads %q as %v, %v; ParseLevel as %v", tt.in, sl, err, got)
		}
	}
}

// TestLevelString: the names are slog's, and the levels are ordered.
func TestLevelString(t *testing.T) {
	levels := []Level{Debug, Info, Warn, Error}
	for i, l := range levels {
		if got, want := l.String(), slogLevels[l].String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(l), got, want)
		}
		if i > 0 && levels[i-1] >= l {
			t.Errorf("%v is not above %v", l, levels[i-1])
		}
	}
	if got := Level(7).String(); got != "Level(7)" {
		t.Errorf("Level(7).String() = %q", got)
	}
	if Level(0) != Info {
		t.Error("the zero Level is not Info")
	}
}
