package config

import (
	"strconv"
	"strings"
)

// keyPath is an option's location in the document, e.g. tunnel.moe.ttl or
// route[2].via. Components that are not bare TOML keys are quoted.
type keyPath string

func (p keyPath) key(k string) keyPath {
	if !bareKey(k) {
		k = strconv.Quote(k)
	}
	if p == "" {
		return keyPath(k)
	}
	return p + "." + keyPath(k)
}

func (p keyPath) index(i int) keyPath {
	return p + keyPath("["+strconv.Itoa(i)+"]")
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	return strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}
