package triage

import "sync/atomic"

// textArena holds what a part's failing minions keep of their answers
// (comments, compile errors' messages, state names, job ids) from their
// decoding until they are counted, in chunks reused from batch to batch.
// A failing minion keeps some 2 KB (a traceback), and a fleet's worth of
// them, each in an allocation of its own, was a third of what triaging
// saved evidence allocated: the collector ran for it, and the heap grew
// into fresh pages for it. Counting copies what it keeps of a message, so
// that once a batch is counted its text is done with.
type textArena struct {
	chunks [][]byte
	cur    int // the chunk being filled
	used   int // bytes of chunks[cur] handed out
	// gen tells the text of one batch from the next: a string remembered
	// with the generation it was made in is valid while gen is unchanged.
	gen uint64
}

const (
	arenaChunk = 64 << 10
	// arenaMax is the longest text taken from chunks; a longer one (a
	// message of abnormal length) is an allocation of its own.
	arenaMax = arenaChunk / 4
)

// arenaPoison makes reset overwrite the text it lets go, and a block
// source the buffers given back, so that a test sees any string kept
// past its batch or borrowed from a block let go.
var arenaPoison atomic.Bool

// alloc returns n bytes to write a text into, valid until reset.
func (a *textArena) alloc(n int) []byte {
	if n > arenaMax {
		return make([]byte, n)
	}
	if len(a.chunks) == 0 || a.used+n > arenaChunk {
		if len(a.chunks) > 0 {
			a.cur++
		}
		if a.cur == len(a.chunks) {
			a.chunks = append(a.chunks, make([]byte, arenaChunk))
		}
		a.used = 0
	}
	b := a.chunks[a.cur][a.used : a.used+n : a.used+n]
	a.used += n
	return b
}

// reset lets go of all the text handed out: nothing may hold it.
func (a *textArena) reset() {
	if arenaPoison.Load() {
		for i := 0; i <= a.cur && i < len(a.chunks); i++ {
			for j := range a.chunks[i] {
				a.chunks[i][j] = 0xff
			}
		}
	}
	a.cur, a.used = 0, 0
	a.gen++
}

// slab hands out lists of T from chunks reused from batch to batch, as
// textArena hands out text: a failing minion's failed states, compile
// errors and what counting it goes by, which the collector would
// otherwise allocate and walk for every minion.
type slab[T any] struct {
	chunks [][]T
	cur    int
	used   int
}

// slabChunk is how many values a chunk holds; a list of more than a
// quarter of it is an allocation of its own.
const slabChunk = 512

// alloc returns n zero values, valid until reset.
func (s *slab[T]) alloc(n int) []T {
	if n > slabChunk/4 {
		return make([]T, n)
	}
	if len(s.chunks) == 0 || s.used+n > slabChunk {
		if len(s.chunks) > 0 {
			s.cur++
		}
		if s.cur == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, slabChunk))
		}
		s.used = 0
	}
	l := s.chunks[s.cur][s.used : s.used+n : s.used+n]
	s.used += n
	return l
}

// reset zeroes what was handed out, so that it keeps nothing alive and
// is handed out zero again.
func (s *slab[T]) reset() {
	for i := 0; i < s.cur && i < len(s.chunks); i++ {
		clear(s.chunks[i])
	}
	if s.cur < len(s.chunks) {
		clear(s.chunks[s.cur][:s.used])
	}
	s.cur, s.used = 0, 0
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
