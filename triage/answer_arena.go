package triage

import "sync/atomic"

// slab hands out lists of T from chunks reused from batch to batch: what
// a part's failing minions hold from their decoding until they are
// counted (text, failed states, compile errors, what counting goes by),
// which the collector would otherwise allocate, and walk, for every
// minion. A failing minion keeps some 2 KB (a traceback), and a fleet's
// worth of them, each in an allocation of its own, was a third of what
// triaging saved evidence allocated. Counting copies what it keeps, so
// that once a batch is counted its lists are done with.
type slab[T any] struct {
	chunks [][]T
	cur    int // the chunk being filled
	used   int // values of chunks[cur] handed out
	// size is how many values a chunk holds, slabChunk when zero; a list
	// of more than a quarter of it is an allocation of its own.
	size int
}

const (
	slabChunk = 512
	textChunk = 64 << 10
)

// alloc returns n values, valid until reset; zero unless the slab was
// rewound.
func (s *slab[T]) alloc(n int) []T {
	size := s.size
	if size == 0 {
		size = slabChunk
	}
	if n > size/4 {
		return make([]T, n)
	}
	if len(s.chunks) == 0 || s.used+n > size {
		if len(s.chunks) > 0 {
			s.cur++
		}
		if s.cur == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, size))
		}
		s.used = 0
	}
	l := s.chunks[s.cur][s.used : s.used+n : s.used+n]
	s.used += n
	return l
}

// handedOut calls f with each run of values handed out since the last
// reset.
func (s *slab[T]) handedOut(f func([]T)) {
	for i := 0; i < s.cur && i < len(s.chunks); i++ {
		f(s.chunks[i])
	}
	if s.cur < len(s.chunks) {
		f(s.chunks[s.cur][:s.used])
	}
}

// reset zeroes what was handed out, so that it keeps nothing alive and
// is handed out zero again.
func (s *slab[T]) reset() {
	s.handedOut(func(l []T) { clear(l) })
	s.rewind()
}

// rewind takes back what was handed out without zeroing it: for values
// that hold no pointer and are written before they are read.
func (s *slab[T]) rewind() { s.cur, s.used = 0, 0 }

// textArena is a slab of text, in chunks of textChunk bytes.
type textArena struct {
	slab[byte]
	// gen tells the text of one batch from the next: a string remembered
	// with the generation it was made in is valid while gen is unchanged.
	gen uint64
}

// arenaPoison makes reset overwrite the text it lets go, and a block
// source the buffers given back, so that a test sees any string kept
// past its batch or borrowed from a block let go.
var arenaPoison atomic.Bool

// poison overwrites b, when tests ask for it (arenaPoison).
func poison(b []byte) {
	if arenaPoison.Load() {
		for i := range b {
			b[i] = 0xff
		}
	}
}

// reset lets go of all the text handed out: nothing may hold it.
func (a *textArena) reset() {
	a.handedOut(poison)
	a.rewind()
	a.gen++
}

// batchArena is where a part of a parallel reading keeps what its
// minions hold from their decoding until they are counted.
type batchArena struct {
	text     textArena
	states   slab[FailedState]
	errs     slab[CompileError]
	fails    slab[stateFailure]
	refs     slab[stateRef]
	services slab[serviceHit]
	strs     slab[string]
	jobList  slab[Job]
}

func newBatchArena() *batchArena {
	b := new(batchArena)
	b.text.size = textChunk
	return b
}

// reset lets go of all that was handed out: nothing may hold it.
func (b *batchArena) reset() {
	b.text.reset()
	b.states.reset()
	b.errs.reset()
	b.fails.reset()
	b.refs.reset()
	b.services.reset()
	b.strs.reset()
	b.jobList.reset()
}

// The lists a minion and counting it hold: from the arena when it is
// set, else allocations of their own.

func (b *batchArena) failedStates(n int) []FailedState {
	if b == nil {
		return make([]FailedState, n)
	}
	return b.states.alloc(n)
}

func (b *batchArena) compileErrors(n int) []CompileError {
	if b == nil {
		return make([]CompileError, n)
	}
	return b.errs.alloc(n)
}

func (b *batchArena) stateFailures(n int) []stateFailure {
	if b == nil {
		return make([]stateFailure, n)
	}
	return b.fails.alloc(n)
}

func (b *batchArena) stateRefs(n int) []stateRef {
	if b == nil {
		return make([]stateRef, n)
	}
	return b.refs.alloc(n)
}

func (b *batchArena) serviceHits(n int) []serviceHit {
	if b == nil {
		return make([]serviceHit, n)
	}
	return b.services.alloc(n)
}

func (b *batchArena) strings(n int) []string {
	if b == nil {
		return make([]string, n)
	}
	return b.strs.alloc(n)
}

func (b *batchArena) jobs(n int) []Job {
	if b == nil {
		return make([]Job, n)
	}
	return b.jobList.alloc(n)
}
