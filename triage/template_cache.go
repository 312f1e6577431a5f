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
	key, ok := templateKey(msg, minionID)
	if !ok {
		return Mask(msg, minionID)
	}
	sh := &templateCache[maphash.String(templateSeed, key)%templateShards]
	sh.mu.Lock()
	t, ok := sh.m[key]
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
	sh.m[key] = t
	sh.bytes += size
	sh.mu.Unlock()
	return t
}

// Marks in a template key. A byte of the message below markPiece+1 is
// escaped with markEscape, so that no message reads as a mark.
const (
	markEscape = 0x00
	markPiece  = 0x01 // then the piece's class
	markMinion = 0x02 // then the shape of the minion's id, then markMinion
	markTail   = 0x03 // between the head and the tail of a long message
)

// templateKey returns the key of a message in the template cache: two
// messages with one key have one template. The key is the message with
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
//   - a token (between blanks) holding "://" as it is: salt:// paths and
//     URL origins stay in the template as they are.
//
// ok is false when no key can promise that: Mask cuts the message by
// bytes (lengths decide), or the minion's id holds a blank.
func templateKey(msg, minionID string) (string, bool) {
	if strings.ContainsAny(minionID, " \t\n\r\v\f") {
		return "", false
	}
	head, tail, byBytes := cutLong(msg)
	if byBytes {
		return "", false
	}
	b := make([]byte, 0, len(head)+len(tail)+1)
	b = appendKey(b, head, minionID)
	if tail != "" {
		b = append(b, markTail)
		b = appendKey(b, tail, minionID)
	}
	return string(b), true
}

func appendKey(b []byte, s, minionID string) []byte {
	for i := 0; i < len(s); {
		if isSpace(s[i]) {
			nl := false
			for ; i < len(s) && isSpace(s[i]); i++ {
				nl = nl || s[i] == '\n'
			}
			if nl {
				b = append(b, '\n')
			} else {
				b = append(b, ' ')
			}
			continue
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		b = appendTokenKey(b, s, i, j, minionID)
		i = j
	}
	return b
}

// appendTokenKey appends the key of the token s[i:j]. Word boundaries are
// judged in s, as Mask judges them.
func appendTokenKey(b []byte, s string, i, j int, minionID string) []byte {
	verbatim := strings.Contains(s[i:j], "://")
	for k := i; k < j; {
		c := s[k]
		if c <= markTail {
			b = append(b, markEscape, c)
			k++
			continue
		}
		if !isWord(c) {
			b = append(b, c)
			k++
			continue
		}
		if minionID != "" && c == minionID[0] && (k == 0 || !isWord(s[k-1])) && strings.HasPrefix(s[k:], minionID) &&
			(k+len(minionID) == len(s) || !isWord(s[k+len(minionID)])) {
			b = append(b, markMinion)
			b = appendShape(b, minionID)
			b = append(b, markMinion)
			k += len(minionID)
			continue
		}
		e, digit, hostChars := k, false, true
		for ; e < j && isWord(s[e]); e++ {
			switch d := s[e]; {
			case d >= '0' && d <= '9':
				digit = true
			case d >= 'a' && d <= 'z':
			default:
				hostChars = false
			}
		}
		if !digit || verbatim {
			b = append(b, s[k:e]...)
		} else {
			b = append(b, markPiece, pieceClass(s[k], hostChars))
		}
		k = e
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
