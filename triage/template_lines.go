package triage

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// The line cache holds the keys of lines seen on more than one message: the
// frames of a traceback, the fixed lines of apt's or systemd's output. The
// key of a line that does not hold the minion's id depends on the line
// only, so one found by its hash and checked against the line itself is
// the line's key for any minion.
//
// It is direct-mapped and bounded: a line takes the slot of its hash, in
// place of what was there, and only lines of lineMinBytes to lineMaxBytes
// are kept. A line is kept the second time it is seen, in another message
// (seen holds the hash of the last line looked up in each slot, and a tag
// of its message), so that lines holding per-minion values, seen once
// each, cost no allocation and evict nothing. Lookups take no lock;
// entries are immutable.
const (
	lineSlots    = 1 << 11
	lineMinBytes = 24 // shorter ones are keyed faster than found
	lineMaxBytes = 256
)

type lineEntry struct {
	hash      uint64
	line, key string
}

type lineCache struct {
	seed  maphash.Seed
	slots [lineSlots]atomic.Pointer[lineEntry]
	seen  [lineSlots]atomic.Uint64
}

var lineKeys = &lineCache{seed: maphash.MakeSeed()}

// appendKey appends the key of a line: s holds no newline, starts and ends
// with no blank, and does not hold the minion's id. tag tells one message
// from another (in the low 8 bits), so that a line seen twice in one
// message (a traceback repeats its first line last) is not kept for that.
func (c *lineCache) appendKey(b []byte, s string, tag uint64) []byte {
	if len(s) < lineMinBytes || len(s) > lineMaxBytes {
		return appendLineKey(b, s, "")
	}
	h := maphash.String(c.seed, s)
	slot := h % lineSlots
	if e := c.slots[slot].Load(); e != nil && e.hash == h && e.line == s {
		return append(b, e.key...)
	}
	start := len(b)
	b = appendLineKey(b, s, "")
	if seen := c.seen[slot].Swap(h&^0xff | tag); seen&^0xff == h&^0xff && seen&0xff != tag {
		// A copy: s may be read from a buffer that is reused.
		c.slots[slot].Store(&lineEntry{hash: h, line: strings.Clone(s), key: string(b[start:])})
	}
	return b
}
