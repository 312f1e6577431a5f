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
	lineSlots    = 1 << 10
	lineMinBytes = 24 // shorter ones are keyed faster than found
	lineMaxBytes = 256
)

type lineEntry struct {
	hash      uint64
	line, key string
	// keyHash is the key's hash as a line of a template key (keyLineHash).
	keyHash uint64
	// ids has the bits (idBits) of every text in the line that a minion's
	// id could be taken for where it stands: the key, made for no
	// minion, is the line's key for a minion whose bits are not all in.
	ids [2]uint64
	// msg is a whole message that starts with the line, tmpl its
	// template for a minion whose id it does not hold, and msgIDs the
	// bits of its texts, as ids: a message with no values, on every
	// minion, is found as it is (wholeTemplate).
	msg, tmpl string
	msgIDs    [2]uint64
	// after is the hash of the line that followed this one last time: a
	// traceback's frames are found one after the other without hashing.
	after atomic.Uint64
}

type lineCache struct {
	seed  maphash.Seed
	slots [lineSlots]atomic.Pointer[lineEntry]
	seen  [lineSlots]atomic.Uint64
}

var lineKeys = &lineCache{seed: maphash.MakeSeed()}

// lookup returns the entry of a line, if the cache holds it, and the
// line's hash. s holds no newline and starts and ends with no blank; the
// entry's key is the line's for no minion.
func (c *lineCache) lookup(s string) (*lineEntry, uint64) {
	if len(s) < lineMinBytes || len(s) > lineMaxBytes {
		return nil, 0
	}
	h := maphash.String(c.seed, s)
	if e := c.slots[h%lineSlots].Load(); e != nil && e.hash == h && e.line == s {
		return e, h
	}
	return nil, h
}

// admit keeps the key of a line that lookup did not find, when the line
// was seen before in another message. tag tells one message from another
// (in its low 8 bits), so that a line seen twice in one message (a
// traceback repeats its first line last) is not kept for that.
func (c *lineCache) admit(s string, h uint64, key []byte, keyHash, tag uint64) {
	if len(s) < lineMinBytes || len(s) > lineMaxBytes {
		return
	}
	slot := h % lineSlots
	if seen := c.seen[slot].Swap(h&^0xff | tag); seen&^0xff == h&^0xff && seen&0xff != tag {
		// A copy: s may be read from a buffer that is reused.
		c.slots[slot].Store(&lineEntry{hash: h, line: strings.Clone(s), key: string(key), keyHash: keyHash, ids: c.idTexts(s)})
	}
}

// idBits returns the two bits, of 128, that stand for a minion's id.
func (c *lineCache) idBits(id string) [2]uint8 {
	h := maphash.String(c.seed, id)
	return [2]uint8{uint8(h & 127), uint8(h >> 7 & 127)}
}

// mayHold reports whether the texts of bits may hold the id of idBits.
func mayHold(bits [2]uint64, id [2]uint8) bool {
	return bits[id[0]/64]&(1<<(id[0]%64)) != 0 && bits[id[1]/64]&(1<<(id[1]%64)) != 0
}

// idTexts returns the bits of every text of s that a minion's id could be
// taken for (isMinionIn): ids are plain (plainID), so such a text starts a
// word, runs over letters, digits, dots, dashes and underscores, and ends
// where a word does. A run of those too long to list has all bits set.
func (c *lineCache) idTexts(s string) (bits [2]uint64) {
	set := func(t string) {
		for _, b := range c.idBits(t) {
			bits[b/64] |= 1 << (b % 64)
		}
	}
	for i := 0; i < len(s); {
		if !plainByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && plainByte(s[j]) {
			j++
		}
		if j-i > 64 {
			return [2]uint64{^uint64(0), ^uint64(0)}
		}
		for a := i; a < j; a++ {
			if a > 0 && isWord(s[a-1]) || !isAlnum(s[a]) {
				continue
			}
			for z := a + 1; z <= j; z++ {
				if z == len(s) || !isWord(s[z]) {
					set(s[a:z])
				}
			}
		}
		i = j
	}
	return bits
}

// plainByte reports the bytes of plain ids.
func plainByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == '-' || c == '_'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// wholeMaxBytes bounds the messages kept whole.
const wholeMaxBytes = 512

// leadingLine returns the first line of msg, less the blanks around it.
func leadingLine(msg string) string {
	i := 0
	for i < len(msg) && isSpace(msg[i]) {
		i++
	}
	e := len(msg)
	if k := strings.IndexByte(msg[i:], '\n'); k >= 0 {
		e = i + k
	}
	for e > i && isSpace(msg[e-1]) {
		e--
	}
	return msg[i:e]
}

// leadLookup is what wholeTemplate found of a message's first line: the
// line, its entry (nil if none) and its hash (0 when not hashed), so that
// appendKey does not hash the line again.
type leadLookup struct {
	line string
	e    *lineEntry
	h    uint64
}

// lookupFirst returns lookup(s), from first when s is its line.
func (c *lineCache) lookupFirst(s string, first *leadLookup) (*lineEntry, uint64) {
	if first.h != 0 && len(s) == len(first.line) && s == first.line {
		return first.e, first.h
	}
	return c.lookup(s)
}

// wholeTemplate returns the template of a message kept whole, or what it
// found of the message's first line when the message is not.
func (c *lineCache) wholeTemplate(msg, minionID string) (string, leadLookup, bool) {
	if len(msg) > wholeMaxBytes {
		return "", leadLookup{}, false
	}
	line := leadingLine(msg)
	e, h := c.lookup(line)
	if e == nil {
		return "", leadLookup{line: line, h: h}, false
	}
	if len(e.msg) == len(msg) && e.msg == msg &&
		(minionID == "" || !mayHold(e.msgIDs, c.idBits(minionID)) || !strings.Contains(msg, minionID)) {
		return e.tmpl, leadLookup{}, true
	}
	return "", leadLookup{line: line, e: e, h: h}, false
}

// keepWhole keeps a message and its template in the entry of its first
// line, when that holds none yet and the message does not hold the id of
// the minion the template was made for.
func (c *lineCache) keepWhole(e *lineEntry, msg, minionID, tmpl string) {
	if e == nil || e.msg != "" || minionID != "" && strings.Contains(msg, minionID) {
		return
	}
	n := &lineEntry{hash: e.hash, line: e.line, key: e.key, keyHash: e.keyHash, ids: e.ids,
		msg: strings.Clone(msg), tmpl: tmpl, msgIDs: c.idTexts(msg)}
	n.after.Store(e.after.Load())
	c.slots[e.hash%lineSlots].CompareAndSwap(e, n)
}

// next returns the entry of the line that followed prev's last time, if s
// starts with that line (less the blanks after it).
func (c *lineCache) next(prev *lineEntry, s string) *lineEntry {
	if prev == nil {
		return nil
	}
	h := prev.after.Load()
	if h == 0 {
		return nil
	}
	e := c.slots[h%lineSlots].Load()
	if e == nil || e.hash != h || !strings.HasPrefix(s, e.line) {
		return nil
	}
	for k := len(e.line); k < len(s) && s[k] != '\n'; k++ {
		if !isSpace(s[k]) {
			return nil // the line goes on
		}
	}
	return e
}

// follow notes that e's line followed prev's.
func (c *lineCache) follow(prev, e *lineEntry) {
	if prev != nil && prev.after.Load() != e.hash {
		prev.after.Store(e.hash)
	}
}
