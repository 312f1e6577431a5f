//go:build unix

package triage

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDecodeFaultPoolsNothing decodes an answer from a mapped file cut
// short under it, so that reading its second page faults half way through
// the answer, its failed states already read: the decoding must not hand
// what it read to the next one through the pool of interners.
func TestDecodeFaultPoolsNothing(t *testing.T) {
	raw := commitAnswer("web-1")
	want := DecodeMinion("web-2", raw)
	page := os.Getpagesize()
	cut := bytes.Index(raw, []byte(`"blame.last_highstate_failure"`)) + 10
	if cut < 10 || bytes.Index(raw, []byte(`"blame.last_failed_states"`)) > cut {
		t.Fatalf("answer does not read its failed states before its failure: %s", raw)
	}
	in := bytes.Repeat([]byte(" "), 2*page)
	copy(in[page-cut:], raw)
	path := filepath.Join(t.TempDir(), "answer.json")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped, err := unix.Mmap(int(f.Fd()), 0, 2*page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mapped)
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var faults int
	var got Minion
	go func() {
		defer close(done)
		debug.SetPanicOnFault(true)
		for range 20 {
			func() {
				defer func() {
					if r, ok := recover().(interface{ Addr() uintptr }); ok && r != nil {
						faults++
					}
				}()
				decodePrefix(Minion{ID: "web-1"}, mapped[page-cut:])
			}()
		}
		got = DecodeMinion("web-2", raw)
	}()
	<-done
	if faults == 0 {
		t.Fatal("reading past the cut did not fault")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after %d faults, the next answer decodes to\n%+v\nwant\n%+v", faults, got, want)
	}
}
