package triage

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Bytes of eight repeated.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = '"' * ones
	slashs = '\\' * ones
	blanks = 0x20 * ones
)

// scanString returns the index of the first byte at or after i that ends
// a run of a string's plain bytes: a quote, a backslash or a control
// character (len(b) if none). high is set when a byte above 0x7f came
// before it (UTF-8 to check), and may be when one came soon after.
func scanString(b []byte, i int) (k int, high bool) {
	var h uint64
	for ; i+16 <= len(b); i += 16 {
		x, y := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		h |= x | y
		if mx, my := stops(x), stops(y); mx|my != 0 {
			if mx == 0 {
				return i + 8 + bits.TrailingZeros64(my)>>3, h&highs != 0
			}
			return i + bits.TrailingZeros64(mx)>>3, h&highs != 0
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		h |= uint64(c)
	}
	return i, h&highs != 0
}

// stops returns the high bits of the bytes of x that are a quote, a
// backslash or below 0x20: exact for the lowest such byte (borrows only
// carry up), which is all scanString looks at.
func stops(x uint64) uint64 {
	// A byte of x^quotes or x^slashs has its high bit where x has it:
	// one &^ x clears the bytes above 0x7f of all three.
	return ((x ^ quotes - ones) | (x ^ slashs - ones) | (x - blanks)) &^ x & highs
}

// body reads the string at i (its opening quote) and returns its value: a
// slice of b when it has no escapes, else of the scratch, where it is
// unescaped. Bad escapes, lone surrogates, control characters and bad
// UTF-8, which the general decoder reports, are surprises.
func (r *wireReader) body() []byte {
	if r.bad || r.peek() != '"' {
		r.bad = true
		return nil
	}
	start := r.i + 1
	k, high := scanString(r.b, start)
	if k < len(r.b) && r.b[k] == '"' {
		if high && !utf8.Valid(r.b[start:k]) {
			r.bad = true
			return nil
		}
		r.i = k + 1
		return r.b[start:k]
	}
	return r.unescape(start, k, high)
}

// unescape unescapes the string whose body starts at start into the
// scratch, k being its first quote, backslash or control character.
func (r *wireReader) unescape(start, k int, high bool) []byte {
	b, out := r.b, r.it.a.scratch
	off, i := len(out), start
	for {
		if k >= len(b) || b[k] < 0x20 {
			r.bad = true // the end, or a control character
			return nil
		}
		out = append(out, b[i:k]...)
		if b[k] == '"' {
			break
		}
		if k+1 >= len(b) {
			r.bad = true
			return nil
		}
		i = k + 2
		switch e := b[k+1]; e {
		case 'n':
			out = append(out, '\n')
		case '"', '\\', '/':
			out = append(out, e)
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			var ok bool
			if out, i, ok = unescapeU(b, k, out); !ok {
				r.bad = true
				return nil
			}
		default:
			r.bad = true
			return nil
		}
		// The next stop, eight bytes at a time: escapes are close
		// together in tracebacks, a call per run between them costs more
		// than the run.
		for k = i; ; k += 8 {
			if k+8 > len(b) {
				var h bool
				k, h = scanString(b, k)
				high = high || h
				break
			}
			x := binary.LittleEndian.Uint64(b[k:])
			high = high || x&highs != 0
			if m := stops(x); m != 0 {
				k += bits.TrailingZeros64(m) >> 3
				break
			}
		}
	}
	// Escapes are ASCII: the raw body is valid UTF-8 when the value is.
	if high && !utf8.Valid(b[start:k]) {
		r.bad = true
		return nil
	}
	r.i = k + 1
	r.it.a.scratch = out
	return out[off:]
}

// unescapeU appends the character of the \u escape at k (and of the low
// surrogate's escape after it), and returns where the string goes on.
func unescapeU(s []byte, k int, out []byte) ([]byte, int, bool) {
	r1, ok := hex4(s, k+2)
	if !ok {
		return out, 0, false
	}
	i := k + 6
	if utf16.IsSurrogate(r1) {
		if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return out, 0, false
		}
		r2, ok := hex4(s, i+2)
		if !ok {
			return out, 0, false
		}
		r1 = utf16.DecodeRune(r1, r2)
		if r1 == utf8.RuneError {
			return out, 0, false
		}
		i += 6
	}
	return utf8.AppendRune(out, r1), i, true
}

// str reads a string value into a borrowed string: valid until the
// input or the scratch is reused. (own copies what a minion keeps.)
func (r *wireReader) str(dst *string) {
	if s := r.body(); !r.bad && len(s) > 0 {
		*dst = unsafe.String(&s[0], len(s))
	}
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var v rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// skipString reads through a string that is not kept, refusing what the
// general decoder refuses: a raw control character, a bad escape. (Bad
// UTF-8 and lone surrogates it reads, replaced.) It looks at sixteen
// bytes at a time, and goes on after an escape without a call.
func (r *wireReader) skipString() {
	b, i := r.b, r.i+1
	for {
		if i+16 > len(b) {
			i, _ = scanString(b, i)
		} else {
			w := b[i : i+16]
			x, y := binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
			mx, my := stops(x), stops(y)
			switch {
			case mx != 0:
				i += bits.TrailingZeros64(mx) >> 3
			case my != 0:
				i += 8 + bits.TrailingZeros64(my)>>3
			default:
				i += 16
				continue
			}
		}
		if i >= len(b) || b[i] < 0x20 {
			r.bad = true // the end, or a control character
			return
		}
		if b[i] == '"' {
			r.i = i + 1
			return
		}
		if i+1 >= len(b) {
			r.bad = true
			return
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if _, ok := hex4(b, i+2); !ok {
				r.bad = true
				return
			}
			i += 6
		default:
			r.bad = true
			return
		}
	}
}
