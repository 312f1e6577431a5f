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

// arenaPoison makes reset overwrite the text it lets go, so that a test
// sees any string kept past its batch.
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
