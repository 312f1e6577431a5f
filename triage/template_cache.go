package triage

import (
	"hash/maphash"
	"strings"
	"sync"
)

// The template cache holds the templates of messages seen before. In an
// incident most minions send one of a few messages that differ only in
// their values (ids, pids, addresses, times), so the cache is keyed by the
// message with those values reduced to marks (templateKey): one failure on
// many minions is masked once. It is bounded in bytes, not entries:
// messages can be long tracebacks.
const (
	templateShards     = 16
	templateShardBytes = 128 << 10 // 2 MiB for all shards
)

type templateShard struct {
	mu    sync.Mutex
	m     map[string]string
	bytes int
}

var (
	templateSeed  = maphash.MakeSeed()
	templateCache [templateShards]templateShard
)

// TemplateOf returns Mask(msg, minionID), from the cache when a message
// with the same key was masked before. It is safe for concurrent use; the
// decoding workers call it, so that no template is made under the
// aggregator's lock.
func TemplateOf(msg, minionID string) string {
	if msg == "" {
		return ""
	}
	kb := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(kb)
	key, ok := templateKey((*kb)[:0], msg, minionID)
	*kb = key
	if !ok {
		return Mask(msg, minionID)
	}
	sh := &templateCache[maphash.Bytes(templateSeed, key)%templateShards]
	sh.mu.Lock()
	t, ok := sh.m[string(key)] // no copy of the key for a lookup
	sh.mu.Unlock()
	if ok {
		return t
	}
	t = Mask(msg, minionID)
	size := len(key) + len(t)
	if size > templateShardBytes/4 {
		return t
	}
	sh.mu.Lock()
	if sh.m == nil || sh.bytes+size > templateShardBytes {
		// Full: start over rather than keep the first messages forever; a
		// new incident's messages then find room.
		sh.m, sh.bytes = make(map[string]string, 256), 0
	}
	sh.m[string(key)] = t
	sh.bytes += size
	sh.mu.Unlock()
	return t
}

// keyBuffers hold the keys being built, one per decoding worker at a time.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

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
//     digit replaced by a mark of its class: Mask masks such a piece
//     whatever it holds, and looks at no more of it than the class of its
//     first byte (a date word before a number, a host name label) and
//     whether it is all lowercase letters and digits (a host name label);
//   - the minion's id, where Mask takes it for the id, replaced by its
//     shape (letters, digits and punctuation by kind), which is all that
//     decides whether a host name holds it;
//   - each run of blanks as one blank, a newline if it holds one (a quoted
//     value ends at a newline);
//   - a token (between blanks) holding "://" as it is, but for the id in
//     a URL: salt:// paths and URL origins stay in the template as they
//     are.
//
// ok is false when no key can promise that: Mask cuts the message by
// bytes (lengths decide), or the minion's id holds a blank or starts with
// punctuation.
func templateKey(b []byte, msg, minionID string) ([]byte, bool) {
	if strings.ContainsAny(minionID, " \t\n\r\v\f") || minionID != "" && !isWord(minionID[0]) {
		return b, false
	}
	head, tail, byBytes := cutLong(msg)
	if byBytes {
		return b, false
	}
	b = appendKey(b, head, minionID)
	if tail != "" {
		b = append(b, markTail)
		b = appendKey(b, tail, minionID)
	}
	return b, true
}

// appendKey appends the key of s, copying the long runs of bytes that stay
// as they are. When it meets "://" in a token it has already changed, it
// starts over token by token (appendKeyTokens).
func appendKey(b []byte, s, minionID string) []byte {
	start := len(b)
	changed := -1 // where in s the key last stopped mirroring it
	next := 0     // where the id next stands in s (as text), len(s) if nowhere
	for i := 0; i < len(s); {
		if next < i || i == 0 {
			next = len(s)
			if k := strings.Index(s[i:], minionID); minionID != "" && k >= 0 {
				next = i + k
			}
		}
		// A run of bytes that stay: not a digit, not a mark, not a blank
		// other than one space between two tokens, not "://", not where
		// the id stands.
		e := i
	scan:
		for e < next {
			switch keyStop[s[e]] {
			case stopNone:
				e++
				continue
			case stopSpace:
				if e > 0 && e+1 < len(s) && !isSpace(s[e+1]) {
					e++
					continue
				}
			case stopColon:
				if !strings.HasPrefix(s[e:], "://") {
					e++
					continue
				}
			}
			break scan
		}
		b = append(b, s[i:e]...)
		if i = e; i == len(s) {
			break
		}
		switch c := s[i]; keyKind[c] {
		case keyColon: // "://": the whole token as it is, from its start
			ts := i
			for ts > 0 && !isSpace(s[ts-1]) {
				ts--
			}
			if changed >= ts {
				return appendKeyTokens(b[:start], s, minionID)
			}
			e := i
			for e < len(s) && !isSpace(s[e]) {
				e++
			}
			b = appendVerbatim(b[:len(b)-(i-ts)], s, ts, e, minionID)
			i, changed = e, e
			continue
		case keyDigit:
			// A value: the whole piece becomes its class. The piece's bytes
			// before the digit were copied as they are: take them back.
			ps := i
			for ps > 0 && isWord(s[ps-1]) {
				ps--
			}
			pe, hostChars := ps, true
			for ; pe < len(s) && isWord(s[pe]); pe++ {
				if d := s[pe]; !(d >= 'a' && d <= 'z' || d >= '0' && d <= '9') {
					hostChars = false
				}
			}
			if minionID != "" && s[ps] == minionID[0] && isMinionIn(s, ps, minionID) {
				// The id stands there and holds this digit.
				b = appendMinion(b[:len(b)-(i-ps)], minionID)
				i = ps + len(minionID)
				changed = i
				continue
			}
			b = append(b[:len(b)-(i-ps)], markPiece, pieceClass(s[ps], hostChars))
			i, changed = pe, pe
		case keySpace:
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
		case keyMark:
			b = append(b, markEscape, c)
			i++
			changed = i
		default: // the first byte of the id
			if (i == 0 || !isWord(s[i-1])) && isMinionIn(s, i, minionID) {
				b = appendMinion(b, minionID)
				i += len(minionID)
				changed = i
				continue
			}
			b = append(b, c)
			i++
		}
	}
	return b
}

// Byte kinds of the key builder.
const (
	keyPunct = iota
	keyWord  // a letter, the underscore, a byte of a UTF-8 sequence
	keyDigit
	keySpace
	keyColon // may start "://"
	keyMark  // a byte that reads as a mark: escaped
)

// Where the run-copying key builder stops to look.
const (
	stopNone = iota
	stopHere
	stopSpace // a space: one between two tokens stays
	stopColon // a colon: "://" starts a URL
)

var keyStop = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ' ':
			t[c] = stopSpace
		case c == ':':
			t[c] = stopColon
		case c >= '0' && c <= '9', byteClass[c] == classSpace, c <= markTail:
			t[c] = stopHere
		}
	}
	return t
}()

var keyKind = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= '0' && c <= '9':
			t[c] = keyDigit
		case byteClass[c] == classWord:
			t[c] = keyWord
		case byteClass[c] == classSpace:
			t[c] = keySpace
		case c == ':':
			t[c] = keyColon
		case c <= markTail:
			t[c] = keyMark
		}
	}
	return t
}()

// appendKeyTokens appends the key of s token by token, for a message
// with tokens that hold "://".
func appendKeyTokens(b []byte, s, minionID string) []byte {
	tokB, tokS := len(b), 0      // where the token started, in b and s
	pieceB, pieceS := len(b), -1 // where the piece started; -1: not in one
	for i := 0; i < len(s); {
		switch keyKind[s[i]] {
		case keyWord, keyDigit:
			if pieceS < 0 {
				if minionID != "" && s[i] == minionID[0] && (i == 0 || !isWord(s[i-1])) && isMinionIn(s, i, minionID) {
					b = appendMinion(b, minionID)
					i += len(minionID)
					continue
				}
				pieceB, pieceS = len(b), i
			}
			e := i
			for e < len(s) && keyKind[s[e]] == keyWord {
				e++
			}
			b = append(b, s[i:e]...)
			i = e
			if i < len(s) && keyKind[s[i]] == keyDigit {
				// A value: the whole piece becomes its class.
				e, hostChars := pieceS, true
				for ; e < len(s) && isWord(s[e]); e++ {
					if c := s[e]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
						hostChars = false
					}
				}
				b = append(b[:pieceB], markPiece, pieceClass(s[pieceS], hostChars))
				i, pieceS = e, -1
			}
		case keySpace:
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
		case keyColon:
			pieceS = -1
			if strings.HasPrefix(s[i:], "://") {
				// The whole token as it is, from its start.
				e := i
				for e < len(s) && !isSpace(s[e]) {
					e++
				}
				b = appendVerbatim(b[:tokB], s, tokS, e, minionID)
				i = e
				continue
			}
			b = append(b, ':')
			i++
		case keyMark:
			pieceS = -1
			b = append(b, markEscape, s[i])
			i++
		default:
			pieceS = -1
			e := i + 1
			for e < len(s) && keyKind[s[e]] == keyPunct {
				e++
			}
			b = append(b, s[i:e]...)
			i = e
		}
	}
	return b
}

// isMinionIn reports the minion's id at i of s, not followed by a byte
// that would make it part of a longer name; Mask's own test.
func isMinionIn(s string, i int, id string) bool {
	k := i + len(id)
	return strings.HasPrefix(s[i:], id) && (k == len(s) || !isWord(s[k]))
}

func appendMinion(b []byte, id string) []byte {
	b = append(b, markMinion)
	b = appendShape(b, id)
	return append(b, markMinion)
}

// appendVerbatim appends s[i:j] as it is, but for the bytes that read as
// marks, and the minion's id in a URL (Mask masks it in the host; the
// path is masked whole). In a token with a salt:// path the id stays:
// Mask keeps the path as it is, id and all.
func appendVerbatim(b []byte, s string, i, j int, minionID string) []byte {
	if strings.Contains(s[i:j], "salt://") {
		minionID = ""
	}
	for k := i; k < j; {
		c := s[k]
		switch {
		case c <= markTail:
			b = append(b, markEscape, c)
		case minionID != "" && c == minionID[0] && (k == 0 || !isWord(s[k-1])) && isMinionIn(s, k, minionID):
			b = appendMinion(b, minionID)
			k += len(minionID)
			continue
		default:
			b = append(b, c)
		}
		k++
	}
	return b
}

// pieceClass is what Mask may look at in a piece that holds a digit.
func pieceClass(first byte, hostChars bool) byte {
	var c byte
	switch {
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
	if hostChars {
		c++
	}
	return c
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
		case c <= markTail:
			b = append(b, markEscape, c)
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
