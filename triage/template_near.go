package triage

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
)

// The near-line cache serves lines that hold per-minion values: a syslog
// line with its time, pid and host, a Vault error with the minion's path.
// Most of such a line is the same on every minion; only a few tokens
// differ. A line is keyed from a line of its kind seen before (the same
// first two tokens and last token): the tokens before the first byte on
// which they differ and after the last one take their keys from that
// line's, and only the tokens between are keyed. The key of a line is the keys of its
// tokens joined by blanks, each token's from the token alone, so this is
// the line's key, provided that no token outside the differing ones holds
// either minion's id (which one line marks and the other keeps), and that
// the line it is keyed from holds no token joined to the next by blanks
// other than space and tab (a quoted salt:// path is whole across those).
//
// It is direct-mapped by kind and bounded. A kind is kept the second time
// it is seen, and keeps that line rather than take each new one, so that
// lines of one kind, and kinds seen once, cost no allocation. Lookups take
// no lock; entries are immutable.
const (
	nearSlots    = 1 << 8
	nearMinBytes = 160 // shorter ones are keyed as fast as spliced
	nearMaxBytes = 512
)

type nearEntry struct {
	kind      uint64
	line, key string
	// tokLine and tokKey are where the line's tokens start in line and in
	// key.
	tokLine, tokKey []uint16
	// idLo and idHi bound where the id of the minion the line was keyed
	// for stands in it; idLo < 0 when nowhere.
	idLo, idHi int
}

var (
	nearSeed  = maphash.MakeSeed()
	nearLines [nearSlots]atomic.Pointer[nearEntry]
	nearSeen  [nearSlots]atomic.Uint64
)

// lineKind hashes a line's first two tokens and its last token.
func lineKind(s string) uint64 {
	f := 0
	for f < len(s) && !isSpace(s[f]) {
		f++
	}
	for f < len(s) && isSpace(s[f]) {
		f++
	}
	for f < len(s) && !isSpace(s[f]) {
		f++
	}
	l := len(s)
	for l > f && !isSpace(s[l-1]) {
		l--
	}
	return maphash.String(nearSeed, s[:f]) ^ bits.RotateLeft64(maphash.String(nearSeed, s[l:]), 31)
}

// appendNearKey appends the key of a line (as appendLineKey), from the
// line of its kind seen before, if any. idLo and idHi bound where the
// minion's id stands in s as text, idLo < 0 when nowhere.
func appendNearKey(b []byte, s, minionID string, idLo, idHi int) []byte {
	firstID := idLo
	if idLo < 0 {
		firstID = len(s)
	}
	if len(s) < nearMinBytes || len(s) > nearMaxBytes {
		return appendLineKey(b, s, minionID, firstID)
	}
	kind := lineKind(s)
	slot := &nearLines[kind%nearSlots]
	e := slot.Load()
	if e != nil && e.kind == kind {
		if out, ok := e.splice(b, s, minionID, idLo, idHi); ok {
			return out
		}
		return appendLineKey(b, s, minionID, firstID)
	}
	start := len(b)
	b = appendLineKey(b, s, minionID, firstID)
	// A kind is kept the second time it is seen: one with a value in its
	// first two tokens or its last, seen once each, costs nothing.
	if nearSeen[kind%nearSlots].Swap(kind) == kind {
		if n := newNearEntry(kind, s, string(b[start:]), idLo, idHi); n != nil {
			slot.Store(n)
		}
	}
	return b
}

// newNearEntry returns the entry of a line and its key, nil when the line
// cannot be spliced from.
func newNearEntry(kind uint64, s, key string, idLo, idHi int) *nearEntry {
	if strings.Contains(s, "salt://") || strings.ContainsAny(s, "\r\v\f") {
		return nil
	}
	e := &nearEntry{kind: kind, line: strings.Clone(s), key: key, idLo: idLo, idHi: idHi}
	e.tokLine = append(e.tokLine, 0)
	for i := 1; i < len(s); i++ {
		if isSpace(s[i-1]) && !isSpace(s[i]) {
			e.tokLine = append(e.tokLine, uint16(i))
		}
	}
	e.tokKey = append(e.tokKey, 0)
	for i := 1; i < len(key); i++ {
		if key[i-1] == ' ' {
			e.tokKey = append(e.tokKey, uint16(i))
		}
	}
	if len(e.tokLine) != len(e.tokKey) {
		return nil // a blank in the key that is no run of blanks: not spliced from
	}
	return e
}

// keyAt returns where the token that starts at i of the entry's line
// starts in its key, -1 if no token starts there.
func (e *nearEntry) keyAt(i int) int {
	if i == len(e.line) {
		return len(e.key)
	}
	j, ok := slices.BinarySearch(e.tokLine, uint16(i))
	if !ok {
		return -1
	}
	return int(e.tokKey[j])
}

// splice appends the key of s made from the entry's: its tokens before the
// first byte where s and the entry's line differ and after the last, and
// the key of the tokens between. It reports false when the minions' ids
// stand outside the tokens between.
func (e *nearEntry) splice(b []byte, s, minionID string, idLo, idHi int) ([]byte, bool) {
	t := e.line
	n := min(len(s), len(t))
	p := commonPrefix(s[:n], t[:n])
	q := commonSuffix(s[len(s)-(n-p):], t[len(t)-(n-p):])
	// The token holding the first difference, or, when it falls in a run
	// of blanks, the token before it.
	ts := p
	for ts > 0 && isSpace(s[ts-1]) {
		ts--
	}
	for ts > 0 && !isSpace(s[ts-1]) {
		ts--
	}
	// The first token that the common tail holds with the blank before it.
	te := len(s) - q
	for te < len(s) && !isSpace(s[te]) {
		te++
	}
	for te < len(s) && isSpace(s[te]) {
		te++
	}
	tt := te - len(s) + len(t) // where that token starts in the entry's line
	if idLo >= 0 && (idLo < ts || idHi > te) || e.idLo >= 0 && (e.idLo < ts || e.idHi > tt) {
		return b, false
	}
	kp, kt := e.keyAt(ts), e.keyAt(tt)
	if kp < 0 || kt < 0 {
		return b, false
	}
	b = append(b, e.key[:kp]...)
	firstID := te - ts // the id stands in s[ts:te] or nowhere
	if idLo >= 0 {
		firstID = idLo - ts
	}
	b = appendLineKey(b, s[ts:te], minionID, firstID)
	return append(b, e.key[kt:]...), true
}

// commonPrefix returns how many bytes a and b, of one length, start with
// alike.
func commonPrefix(a, b string) int {
	i := 0
	for ; i+8 <= len(a); i += 8 {
		if x := load64(a, i) ^ load64(b, i); x != 0 {
			return i + trailingZeroBytes(x)
		}
	}
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix returns how many bytes a and b, of one length, end with
// alike.
func commonSuffix(a, b string) int {
	n := 0
	for ; n+8 <= len(a); n += 8 {
		if x := load64(a, len(a)-n-8) ^ load64(b, len(b)-n-8); x != 0 {
			return n + leadingZeroBytes(x)
		}
	}
	for n < len(a) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

func trailingZeroBytes(x uint64) int { return bits.TrailingZeros64(x) / 8 }

func leadingZeroBytes(x uint64) int { return bits.LeadingZeros64(x) / 8 }
