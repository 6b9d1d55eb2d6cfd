package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestIsJournal: the stream is the journal only when JOURNAL_STREAM names
// its device and inode.
func TestIsJournal(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f, other := open("stream"), open("other")
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	named := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, tc := range []struct {
		name, stream string
		f            *os.File
		want         bool
	}{
		{"named", named, f, true},
		{"another file", named, other, false},
		{"unset", "", f, false},
		{"garbage", "x:y", f, false},
	} {
		if got := isJournal(tc.stream, tc.f); got != tc.want {
			t.Errorf("%s: isJournal(%q) = %v, want %v", tc.name, tc.stream, got, tc.want)
		}
	}
}
