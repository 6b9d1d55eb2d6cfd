package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a configuration file, located at the option it
// concerns.
type Error struct {
	File      string
	Line, Col int
	// Path is the option's dotted path (tunnel.moe.ttl, route[2].via); empty
	// for syntax errors.
	Path string
	Msg  string
}

// Error formats the problem as FILE:LINE:COL: path: message.
func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Path, e.Msg)
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

// Error joins the problems one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
