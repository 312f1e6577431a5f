//go:build unix

package triage

import (
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"sync"
)

// mappedBlocks maps a regular file block by block: the decoding reads the
// page cache where it is, without a copy into buffers, and a block is
// unmapped once no part reads it, so that what is resident stays within
// the window. The file's size is taken once; a file cut shorter while it
// is read would fault, which the parts turn into an error (see
// part.run).
type mappedBlocks struct {
	f     *os.File
	size  int64
	block int
	off   int64
	mu    sync.Mutex
	live  map[*byte][]byte // mapped blocks not yet taken back, by their first byte
}

// mapFile returns a source of mapped blocks for a regular file; ok false
// for anything else, read instead.
func mapFile(in io.Reader, block int) (blockSource, bool) {
	f, ok := in.(*os.File)
	if !ok {
		return nil, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, false
	}
	// Map from where the file is read: a file handed over part read.
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	if block%os.Getpagesize() != 0 || off%int64(os.Getpagesize()) != 0 {
		return nil, false
	}
	return &mappedBlocks{f: f, size: st.Size(), block: block, off: off, live: map[*byte][]byte{}}, true
}

func (m *mappedBlocks) next() ([]byte, bool, error) {
	n := min(int64(m.block), m.size-m.off)
	if n <= 0 {
		return nil, true, nil
	}
	b, err := unix.Mmap(int(m.f.Fd()), m.off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, false, fmt.Errorf("mapping %s at byte %d: %w", m.f.Name(), m.off, err)
	}
	// The parts read it from start to end, once.
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	m.off += n
	m.mu.Lock()
	m.live[&b[0]] = b
	m.mu.Unlock()
	return b, m.off == m.size, nil
}

func (m *mappedBlocks) done(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unmap(b[:cap(b)])
}

// unmap unmaps a block; m.mu is held.
func (m *mappedBlocks) unmap(b []byte) {
	if len(b) == 0 {
		return
	}
	if _, ok := m.live[&b[0]]; !ok {
		return
	}
	delete(m.live, &b[0])
	_ = unix.Munmap(b)
}

func (m *mappedBlocks) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.live {
		_ = unix.Munmap(b)
	}
	m.live = nil
}
