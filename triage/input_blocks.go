package triage

import (
	"io"
	"sync"
)

// blockSource gives the input's blocks in order, each of the block size
// but the last.
type blockSource interface {
	// next returns the next block; end is true for the last one (which
	// may be empty).
	next() (b []byte, end bool, err error)
	// done takes back a block no part reads any more.
	done(b []byte)
	// close gives back what is left once the reading is over.
	close()
}

// newBlockSource maps a regular file when it can (see input_mmap.go), and
// reads anything else into reused buffers.
func newBlockSource(in io.Reader, block int) blockSource {
	if src, ok := mapFile(in, block); ok {
		return src
	}
	return &readBlocks{in: in, block: block}
}

// readBlocks reads blocks into buffers it reuses once done with.
type readBlocks struct {
	in    io.Reader
	block int
	mu    sync.Mutex
	free  [][]byte
}

func (r *readBlocks) next() ([]byte, bool, error) {
	r.mu.Lock()
	var b []byte
	if k := len(r.free); k > 0 {
		b, r.free = r.free[k-1][:r.block], r.free[:k-1]
	}
	r.mu.Unlock()
	if b == nil {
		b = make([]byte, r.block)
	}
	n, err := io.ReadFull(r.in, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return b[:n], true, nil
	}
	return b[:n], false, err
}

func (r *readBlocks) done(b []byte) {
	poison(b[:cap(b)])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.free = append(r.free, b[:0])
}

func (r *readBlocks) close() {}
