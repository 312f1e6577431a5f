package triage

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// Marks in a template key. A byte of the message below markPiece+1 is
// escaped with markEscape, so that no message reads as a mark.
const (
	markEscape = 0x00
	markPiece  = 0x01 // then the piece's class
	markMinion = 0x02 // then the shape of the minion's id, then markMinion
	markTail   = 0x03 // between the head and the tail of a long message
)

// templateKey appends to b the key of a message in the template cache:
// two messages with one key have one template. The key is the message with
//   - each piece (run of letters, digits and underscores) that holds a
//     digit, and each Python temp name (a piece of tmp and 6 or more
//     bytes), replaced by a mark of its class: Mask masks such a piece
//     whatever it holds, and looks at no more of it than the class of its
//     first byte (a date word before a number, a host name label) and
//     whether it is all lowercase letters and digits (a host name label);
//   - the minion's id, where Mask takes it for the id, replaced by its
//     shape (letters, digits and punctuation by kind), which is all that
//     decides whether a host name holds it;
//   - each run of blanks as one blank, a newline if it holds one (a quoted
//     value ends at a newline);
//   - a token (between blanks) holding "://" as it is up to the end of the
//     host after its last "://", but for the id: URL origins stay in the
//     template as they are, paths do not. A token holding "salt://" stays
//     as it is whole, with the tokens joined to it by blanks other than
//     space, tab and newline (a quoted salt:// path may hold those, and
//     Mask keeps it whole).
//
// A message of up to maxMaskInput bytes is keyed whole, even when Mask
// masks only its first and last maskTokens tokens: one key means as many
// tokens, so the cut falls on the same tokens, and the frames between are
// the same on every minion anyway. A longer one is keyed as the head and
// tail Mask masks.
//
// ok is false when no key can promise that: Mask cuts the message by
// bytes (lengths decide), or the minion's id is not a plain one (letters,
// digits, then also dots, dashes and underscores).
func templateKey(b []byte, msg, minionID string) ([]byte, bool) {
	b, _, ok := templateKeyFirst(b, msg, minionID, leadLookup{})
	return b, ok
}

// templateKeyFirst is templateKey, given what was found of msg's first
// line; it also returns the key's hash (see keyHash).
func templateKeyFirst(b []byte, msg, minionID string, first leadLookup) ([]byte, uint64, bool) {
	if !plainID(minionID) {
		return b, 0, false
	}
	if len(msg) <= maxMaskInput {
		b, h := appendKeyFirst(b, msg, minionID, first, 0)
		return b, h, true
	}
	head, tail, byBytes := cutLong(msg)
	if byBytes {
		return b, 0, false
	}
	b, h := appendKeyFirst(b, head, minionID, first, 0)
	if tail != "" {
		b = append(b, markTail)
		b, h = appendKeyFirst(b, tail, minionID, leadLookup{}, foldKeyHash(h, markTail))
	}
	return b, h, true
}

// A template key is hashed line by line: its hash folds the hashes of the
// keys of its lines (keyLineHash) and the blanks and marks between them,
// so that the key of a line found in lineKeys, a traceback's frame, is
// hashed once, when the line is kept, not in every message. The key's
// lines and what stands between them follow from its bytes (a line's key
// holds no newline, and a mark byte of the message is escaped), so one
// key has one hash; and the cache compares keys whole, so two keys of
// one hash cost a miss, never a wrong template.

// keyLineHash returns the hash of the key of a line.
func keyLineHash(key []byte) uint64 { return maphash.Bytes(templateSeed, key) }

// foldKeyHash folds the hash of the next part of a key into h.
func foldKeyHash(h, part uint64) uint64 {
	return (bits.RotateLeft64(h, 29) ^ part) * 0x9e3779b97f4a7c15
}

// plainID reports an id of ASCII letters and digits, then also dots,
// dashes and underscores, or none: what Salt's ids hold. Another one is
// masked without the cache.
func plainID(id string) bool {
	for k := 0; k < len(id); k++ {
		c := id[k]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') &&
			(k == 0 || c != '.' && c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// appendKey appends the key of s, line by line: a run of blanks that holds
// a newline is one in the key, so the key of s is the keys of its lines
// (less the blanks around them) between newlines. A line that does not
// hold the minion's id has the same key for every minion, and most lines
// of a traceback are the same on every minion: their keys come from a
// cache of lines (lineKeys). A line that holds values is keyed from a
// line of its kind seen before (appendNearKey), and a line the message
// repeats (a traceback ends with its first line) from its first time.
func appendKey(b []byte, s, minionID string) []byte {
	b, _ = appendKeyFirst(b, s, minionID, leadLookup{}, 0)
	return b
}

// appendKeyFirst is appendKey, given what was found of the first line of
// s (or of the message s starts); it also folds what it appends into the
// key's hash h, and returns that.
func appendKeyFirst(b []byte, s, minionID string, first leadLookup, h uint64) ([]byte, uint64) {
	id := lineKeys.idBits(minionID)
	tag := rand.Uint64() & 0xff
	// The first line keyed here rather than found, and its key in b.
	memo, memoKey, memoKeyEnd := "", 0, 0
	var memoHash uint64
	var prev *lineEntry // the previous line's, when it came from lineKeys
	for i := 0; i < len(s); {
		if isSpace(s[i]) {
			e, nl := i, false
			for ; e < len(s) && isSpace(s[e]); e++ {
				nl = nl || s[e] == '\n'
			}
			if nl {
				b = append(b, '\n')
				h = foldKeyHash(h, '\n')
			} else {
				b = append(b, ' ')
				h = foldKeyHash(h, ' ')
			}
			i = e
			continue
		}
		if nx := lineKeys.next(prev, s[i:]); nx != nil && (minionID == "" || !mayHold(nx.ids, id) || !strings.Contains(nx.line, minionID)) {
			// The line that followed the previous one last time.
			b = append(b, nx.key...)
			h = foldKeyHash(h, nx.keyHash)
			i += len(nx.line)
			prev = nx
			continue
		}
		le := len(s)
		if k := strings.IndexByte(s[i:], '\n'); k >= 0 {
			le = i + k
		}
		for isSpace(s[le-1]) {
			le--
		}
		line := s[i:le]
		i = le
		if len(line) == len(memo) && line == memo {
			b = append(b, b[memoKey:memoKeyEnd]...)
			h = foldKeyHash(h, memoHash)
			prev = nil
			continue
		}
		e, lh := lineKeys.lookupFirst(line, &first)
		if e != nil && (minionID == "" || !mayHold(e.ids, id) || !strings.Contains(line, minionID)) {
			b = append(b, e.key...)
			h = foldKeyHash(h, e.keyHash)
			lineKeys.follow(prev, e)
			prev = e
			continue
		}
		prev = nil
		idLo, idHi := -1, -1
		if minionID != "" {
			for k := indexFrom(line, minionID, 0); k < len(line); k = indexFrom(line, minionID, k+1) {
				if idLo < 0 {
					idLo = k
				}
				idHi = k + len(minionID)
			}
		}
		start := len(b)
		b = appendNearKey(b, line, minionID, idLo, idHi)
		kh := keyLineHash(b[start:])
		h = foldKeyHash(h, kh)
		if idLo < 0 && e == nil {
			lineKeys.admit(line, lh, b[start:], kh, tag)
		}
		if memo == "" && len(line) >= nearMinBytes {
			memo, memoKey, memoKeyEnd, memoHash = line, start, len(b), kh
		}
	}
	return b, h
}

// appendLineKey appends the key of a line, or of the tokens of a line from
// one on: s holds no newline and starts with no blank. It copies the runs
// of bytes that stay as they are, eight bytes at a time (copyPlain), and
// looks closer only where a run ends. When it meets "://" in a token it
// has already changed, it starts over token by token (appendKeyTokens),
// which gives the same key. firstID is where the minion's id first stands
// in s as text, len(s) if nowhere.
func appendLineKey(b []byte, s, minionID string, firstID int) []byte {
	// Room for the longest key of s: each byte of it becomes at most
	// three (a one-byte id), and copyPlain writes eight bytes at a time.
	b = slices.Grow(b, 3*len(s)+16)
	start := len(b)
	changed := -1 // where in s the key last stopped mirroring it
	nextID := firstID
	for i := 0; i < len(s); {
		if nextID < i {
			nextID = indexFrom(s, minionID, i)
		}
		if b, i = copyPlain(b, s, i, nextID); i == len(s) {
			break
		}
		c := s[i]
		if i == nextID {
			nextID = indexFrom(s, minionID, i+1)
			if (i == 0 || !isWord(s[i-1])) && isMinionIn(s, i, minionID) {
				b = appendMinion(b, minionID)
				i += len(minionID)
				changed = i
				continue
			}
		}
		if c == 't' {
			if pe, ok := tmpPiece(s, i); ok {
				b = append(b, markPiece, pieceClass(s, i, pe))
				i, changed = pe, pe
				continue
			}
		}
		switch {
		case c == ':':
			if !strings.HasPrefix(s[i:], "://") {
				b = append(b, c)
				i++
				continue
			}
			ts := i
			for ts > 0 && !isSpace(s[ts-1]) {
				ts--
			}
			if changed >= ts {
				return appendKeyTokens(b[:start], s, minionID)
			}
			b, i = appendLinkToken(b[:len(b)-(i-ts)], s, ts, minionID)
			changed = i
		case c >= '0' && c <= '9':
			// A value: the whole piece becomes its class. The piece's bytes
			// before the digit were copied as they are: take them back.
			ps := i
			for ps > 0 && isWord(s[ps-1]) {
				ps--
			}
			b = b[:len(b)-(i-ps)]
			pe, class := pieceMark(s, ps)
			b = append(b, markPiece, class)
			// Values come in runs of pieces joined by punctuation (times,
			// addresses): the next piece that starts with a digit is
			// marked here, without going back to copyPlain.
			for pe+1 < len(s) && isDigit(s[pe+1]) && joins(s[pe]) && (minionID == "" || !isMinionIn(s, pe+1, minionID)) {
				b = append(b, s[pe])
				pe, class = pieceMark(s, pe+1)
				b = append(b, markPiece, class)
			}
			i, changed = pe, pe
		case isSpace(c):
			// A run of blanks, of which the spaces before c were copied.
			r := i
			for r > 0 && s[r-1] == ' ' {
				r--
			}
			b = b[:len(b)-(i-r)]
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			b = append(b, ' ')
		case c <= markTail:
			b = append(b, markEscape, c)
			i++
			changed = i
		default: // a control byte that is no blank, a letter: it stays
			b = append(b, c)
			i++
		}
	}
	return b
}

// indexFrom returns where sub next stands in s from i, len(s) if nowhere.
func indexFrom(s, sub string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	if k := strings.Index(s[i:], sub); k >= 0 {
		return i + k
	}
	return len(s)
}

// Eight bytes at a time: each byte's top bit in the result says whether
// the byte is in a class, exactly (no borrow crosses bytes). Bytes of
// UTF-8 sequences (the top bit set) are in none.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	swarLow7 = 0x7f7f7f7f7f7f7f7f
)

// swarEq marks the bytes equal to c.
func swarEq(w uint64, c byte) uint64 {
	z := w ^ swarOnes*uint64(c)
	return ^(((z & swarLow7) + swarLow7) | z) & swarHigh
}

// swarBelow marks the bytes below n (n at most 0x80).
func swarBelow(w uint64, n byte) uint64 {
	return ^((w & swarLow7) + swarOnes*uint64(0x80-n)) & ^w & swarHigh
}

// swarPair marks the bytes equal to a that the next byte, in next (w
// read from one byte on), is b.
func swarPair(w, next uint64, a, b byte) uint64 {
	z := w ^ swarOnes*uint64(a) | next ^ swarOnes*uint64(b)
	return ^(((z & swarLow7) + swarLow7) | z) & swarHigh
}

// swarIn marks the bytes from lo to hi (both below 0x80).
func swarIn(w uint64, lo, hi byte) uint64 {
	y := w & swarLow7
	return (y + swarOnes*uint64(0x80-lo)) & ^(y + swarOnes*uint64(0x7f-hi)) & ^w & swarHigh
}

func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// copyPlain appends to b the bytes of s from i to lim that stay as they
// are in the key, and returns where they end: at a digit, "tm" (a temp
// name may start there), ":/" (a URL), a control byte (blanks other than
// the space, marks), or a space that follows a blank. Single spaces
// between tokens stay. b must have room for len(s)-i+8 more bytes: it
// writes eight at a time.
func copyPlain(b []byte, s string, i, lim int) ([]byte, int) {
	var carry uint64 // the top bit: the byte before i is a blank
	if i > 0 && isSpace(s[i-1]) {
		carry = 0x80
	}
	n := len(b)
	for ; i+9 <= lim; i += 8 {
		w, next := load64(s, i), load64(s, i+1)
		low := swarBelow(w, 0x0e)
		sp := swarEq(w, ' ')
		blank := low | sp
		stop := swarIn(w, '0', '9') | low | sp&(blank<<8|carry) |
			swarPair(w, next, 't', 'm') | swarPair(w, next, ':', '/')
		binary.LittleEndian.PutUint64(b[n:n+8], w)
		if stop != 0 {
			k := bits.TrailingZeros64(stop) / 8
			return b[:n+k], i + k
		}
		n += 8
		carry = blank >> 56
	}
	b = b[:n]
	prev := carry != 0
	for ; i < lim; i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c < 0x0e || c == ' ' && prev || c == ':' || c == 't' {
			return b, i
		}
		b = append(b, c)
		prev = c == ' '
	}
	return b, lim
}

// joins reports punctuation that may join two pieces of one value and
// stays as it is in the key.
func joins(c byte) bool {
	return c > ' ' && c < 0x80 && !isWord(c)
}

// pieceEnd returns where the piece holding i ends.
func pieceEnd(s string, i int) int {
	for i < len(s) && isWord(s[i]) {
		i++
	}
	return i
}

// tmpPiece reports a Python temp name starting a piece at i, where s may
// hold "tmp": Mask masks it whatever follows, and returns where it ends.
func tmpPiece(s string, i int) (int, bool) {
	if i > 0 && isWord(s[i-1]) || !strings.HasPrefix(s[i:], "tmp") {
		return i, false
	}
	pe := pieceEnd(s, i)
	return pe, pe-i >= 9
}

// pieceMark returns where the piece at i ends and its class: what Mask
// may look at in a piece that it masks (see pieceClass), in one pass.
func pieceMark(s string, i int) (int, byte) {
	class := pieceClasses[s[i]]
	host := true
	j := i
	for ; j < len(s); j++ {
		k := wordKinds[s[j]]
		if k == 0 {
			break
		}
		host = host && k == 1
	}
	if host {
		class++
	}
	return j, class
}

// wordKinds: 0 for a byte that is no word's, 1 for a lowercase letter or a
// digit (a host name's), 2 for the other word bytes.
var wordKinds = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			t[c] = 1
		case byteClass[c] == classWord:
			t[c] = 2
		}
	}
	return t
}()

// pieceClasses: the class of a masked piece by its first byte, before its
// host bit.
var pieceClasses = func() (t [256]uint8) {
	for c := range 256 {
		t[c] = pieceClass(string([]byte{byte(c), '_'}), 0, 2) // '_': no host bit
	}
	return t
}()

// pieceClass is what Mask may look at in a piece s[i:j] that it masks.
func pieceClass(s string, i, j int) byte {
	var c byte
	switch first := s[i]; {
	case first >= '0' && first <= '9':
		c = 0
	case first >= 'a' && first <= 'z':
		c = 1
	case first >= 'A' && first <= 'Z':
		c = 2
	default:
		c = 3
	}
	c = 'A' + 2*c
	hostChars := true
	for k := i; k < j; k++ {
		if d := s[k]; !(d >= 'a' && d <= 'z' || d >= '0' && d <= '9') {
			hostChars = false
			break
		}
	}
	if hostChars {
		c++
	}
	return c
}

// appendKeyTokens appends the key of s token by token: the plain
// statement of what appendKey does faster, which it falls back on for a
// token with "://" it has already changed.
func appendKeyTokens(b []byte, s, minionID string) []byte {
	tokB, tokS := len(b), 0      // where the token started, in b and s
	pieceB, pieceS := len(b), -1 // where the piece started; -1: not in one
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case isWord(c):
			if pieceS < 0 {
				if minionID != "" && c == minionID[0] && (i == 0 || !isWord(s[i-1])) && isMinionIn(s, i, minionID) {
					b = appendMinion(b, minionID)
					i += len(minionID)
					continue
				}
				if pe, ok := tmpPiece(s, i); ok {
					b = append(b, markPiece, pieceClass(s, i, pe))
					i = pe
					continue
				}
				pieceB, pieceS = len(b), i
			}
			e := i
			for e < len(s) && isWord(s[e]) && !isDigit(s[e]) {
				e++
			}
			b = append(b, s[i:e]...)
			i = e
			if i < len(s) && isDigit(s[i]) {
				// A value: the whole piece becomes its class.
				e := pieceEnd(s, i)
				b = append(b[:pieceB], markPiece, pieceClass(s, pieceS, e))
				i, pieceS = e, -1
			}
		case isSpace(c):
			pieceS = -1
			e, nl := i, false
			for ; e < len(s) && isSpace(s[e]); e++ {
				nl = nl || s[e] == '\n'
			}
			if nl {
				b = append(b, '\n')
			} else {
				b = append(b, ' ')
			}
			i = e
			tokB, tokS = len(b), i
		case c == ':' && strings.HasPrefix(s[i:], "://"):
			pieceS = -1
			b, i = appendLinkToken(b[:tokB], s, tokS, minionID)
		case c <= markTail:
			pieceS = -1
			b = append(b, markEscape, c)
			i++
		default:
			pieceS = -1
			b = append(b, c)
			i++
		}
	}
	return b
}

// appendLinkToken appends the key of what Mask may keep of the token at ts,
// which holds "://", and returns where in s the key goes on as for any
// text: after the host of its last URL, or, for a token holding "salt://",
// after the token and the ones joined to it by blanks other than space,
// tab and newline.
func appendLinkToken(b []byte, s string, ts int, minionID string) ([]byte, int) {
	te := ts
	for te < len(s) && !isSpace(s[te]) {
		te++
	}
	if strings.Contains(s[ts:te], "salt://") {
		for te < len(s) {
			r := te
			for r < len(s) && (s[r] == '\r' || s[r] == '\v' || s[r] == '\f') {
				r++
			}
			if r == te || r == len(s) || isSpace(s[r]) {
				break
			}
			for te = r; te < len(s) && !isSpace(s[te]); te++ {
			}
		}
		return appendVerbatim(b, s, ts, te, ""), te
	}
	he := te
	for !strings.HasPrefix(s[he:], "://") {
		he = ts + strings.LastIndexByte(s[ts:he], ':')
	}
	he += len("://")
	for he < te && s[he] != '/' && s[he] != '?' && s[he] != '#' {
		he++
	}
	return appendVerbatim(b, s, ts, he, minionID), he
}

// isMinionIn reports the minion's id at i of s, not followed by a byte
// that would make it part of a longer name; Mask's own test.
func isMinionIn(s string, i int, id string) bool {
	k := i + len(id)
	return strings.HasPrefix(s[i:], id) && (k == len(s) || !isWord(s[k]))
}

func appendMinion(b []byte, id string) []byte {
	b = slices.Grow(b, len(id)+2)
	n := len(b)
	b = b[:n+len(id)+2]
	b[n] = markMinion
	for k := 0; k < len(id); k++ {
		b[n+1+k] = shapeBytes[id[k]]
	}
	b[n+1+len(id)] = markMinion
	return b
}

// shapeBytes: each byte as appendShape writes it, in one lookup.
var shapeBytes = func() (t [256]byte) {
	for c := range 256 {
		t[c] = appendShape(nil, string([]byte{byte(c)}))[0]
	}
	return t
}()

// appendVerbatim appends s[i:j] as it is, but for the bytes that read as
// marks, and the minion's id (Mask masks it in a URL's host; what follows
// the host, it masks whole).
func appendVerbatim(b []byte, s string, i, j int, minionID string) []byte {
	var id0 byte // no byte that stays is 0
	if minionID != "" {
		id0 = minionID[0]
	}
	run := i // s[run:k] stays as it is
	for k := i; k < j; {
		c := s[k]
		switch {
		case c <= markTail:
			b = append(append(b, s[run:k]...), markEscape, c)
			k++
			run = k
		case c == id0 && (k == 0 || !isWord(s[k-1])) && isMinionIn(s, k, minionID):
			b = appendMinion(append(b, s[run:k]...), minionID)
			k += len(minionID)
			run = k
		default:
			k++
		}
	}
	return append(b, s[run:j]...)
}

// appendShape appends a minion id with its letters and digits by kind:
// web-dc01-000123 and web-dc02-000456 have one shape.
func appendShape(b []byte, id string) []byte {
	for k := 0; k < len(id); k++ {
		switch c := id[k]; {
		case c >= '0' && c <= '9':
			b = append(b, '0')
		case c >= 'a' && c <= 'z':
			b = append(b, 'a')
		case c >= 'A' && c <= 'Z':
			b = append(b, 'A')
		default:
			b = append(b, c)
		}
	}
	return b
}

// replaceMinion replaces the minion's id in s where Mask takes it for the
// id: where it is not part of a longer word (web-1 in web-10).
func replaceMinion(s, id, with string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], id)
		if k < 0 {
			b.WriteString(s[i:])
			break
		}
		k += i
		end := k + len(id)
		if (k == 0 || !isWord(s[k-1])) && (end == len(s) || !isWord(s[end])) {
			b.WriteString(s[i:k])
			b.WriteString(with)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	return b.String()
}
