package logfmt

import (
	"fmt"
	"strings"
)

// Level is a record's importance; a Logger writes the records at or above
// its minimum level.
type Level int

// The levels, least important first. Info is the zero value.
const (
	Debug Level = iota - 1
	Info
	Warn
	Error
)

// levelNames are the levels' names as records show them, from Debug on.
var levelNames = [...]string{"DEBUG", "INFO", "WARN", "ERROR"}

// String is the level's name as records show it: DEBUG, INFO, WARN or
// ERROR.
func (l Level) String() string {
	if i := int(l - Debug); i >= 0 && i < len(levelNames) {
		return levelNames[i]
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel returns the level named s: debug, info, warn or error, in
// any case (compared in upper case, as log/slog does).
func ParseLevel(s string) (Level, error) {
	upper := strings.ToUpper(s)
	for i, name := range levelNames {
		if upper == name {
			return Debug + Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
}
