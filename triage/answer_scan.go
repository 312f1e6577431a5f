package triage

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decodeFast decodes a well-formed blame answer by hand: one pass, fields
// it does not need (tracebacks, timings, changes) skipped with a vectorised
// search for the end of their strings, no reflection. It gives up on
// anything unusual (a missing function, a value of another type, null, a
// duplicate field, bad UTF-8), and the general decoders, which say what is
// wrong, take over; what it accepts decodes as they would decode it.
func decodeFast(m Minion, raw []byte) (Minion, bool) {
	m, n, ok := decodePrefix(m, raw)
	if !ok || len(bytes.TrimLeft(raw[n:], " \t\n\r")) != 0 {
		return m, false
	}
	return m, true
}

// decodePrefix decodes, as decodeFast, the answer object that b starts
// with, and returns how many bytes of b it took; what follows is not read.
// It lets a reader decode an answer where it lies in its input, without
// first finding its end and copying it out. ok is false where decodeFast
// would give up, and when b ends inside the object.
func decodePrefix(m Minion, b []byte) (Minion, int, bool) {
	it := interners.Get().(*interner)
	defer interners.Put(it)
	r := wireReader{b: b, intern: it}
	var (
		states []wireFailedState
		f      wireFailure
		errs   []wireCompileError
		seen   uint8
		// A function that answered a string (a traceback, Salt's words
		// for a missing module) in place of its results, by its place in
		// BlameFunctions.
		said [3]*string
	)
	// message reads the string a function answered in place of results.
	message := func(fun int) bool {
		s := new(string)
		said[fun] = s
		return r.str(s)
	}
	ok := r.object(func(key []byte) bool {
		switch string(key) {
		case FunFailedStates:
			if seen&1 != 0 {
				return r.fail()
			}
			seen |= 1
			if r.peek() == '"' {
				return message(0)
			}
			states = it.states[:0]
			return r.array(func() bool {
				var s wireFailedState
				ok := r.failedState(&s)
				states = append(states, s)
				return ok
			})
		case FunHighstateFailure:
			if seen&2 != 0 {
				return r.fail()
			}
			seen |= 2
			if r.peek() == '"' {
				return message(1)
			}
			return r.failure(&f)
		case FunCompileErrors:
			if seen&4 != 0 {
				return r.fail()
			}
			seen |= 4
			if r.peek() == '"' {
				return message(2)
			}
			errs = it.errs[:0]
			return r.array(func() bool {
				var e wireCompileError
				ok := r.compileError(&e)
				errs = append(errs, e)
				return ok
			})
		}
		return r.skip()
	})
	if !ok || r.bad || seen != 7 {
		return m, 0, false
	}
	n := r.i
	// As checkFunctions: the first function, in BlameFunctions' order,
	// that answered a string says what the minion is.
	for _, s := range said {
		if s != nil {
			return classifyString(m, *s), n, true
		}
	}
	m = classify(m, &f, states, errs)
	it.reuse(states, errs, f.Commits)
	return m, n, true
}

// wireReader reads JSON from b at i. Any surprise sets bad, and every
// method then returns false.
type wireReader struct {
	b      []byte
	i      int
	bad    bool
	intern *interner
}

// interner hands out one string for short values that repeat from minion
// to minion (commit ids and authors, state ids, functions, sls, versions):
// one allocation per value, not per minion. It is a direct-mapped cache,
// not a map: a slot found by a cheap hash of the value's ends, one compare,
// and values that do not repeat (job ids, times) just take a slot over.
// Each decoding worker takes one from the pool at a time.
type interner struct {
	// Scratch lists of the wire values being decoded: classify copies
	// what it keeps out of them.
	states  []wireFailedState
	errs    []wireCompileError
	commits []wireCommit
	jobs    [2]wireJob

	slots [internSlots]string
}

const (
	maxInterned = 64 // bytes: longer values rarely repeat
	internBits  = 10
	internSlots = 1 << internBits
)

// reuse keeps the lists a decoding grew for the next one, emptied so
// that they hold no message alive.
func (it *interner) reuse(states []wireFailedState, errs []wireCompileError, commits []wireCommit) {
	clear(states)
	clear(errs)
	clear(commits)
	it.states, it.errs, it.commits = states[:0], errs[:0], commits[:0]
	it.jobs = [2]wireJob{}
}

var interners = sync.Pool{New: func() any { return new(interner) }}

func (it *interner) string(b []byte) string {
	if it == nil || len(b) > maxInterned || len(b) == 0 {
		return string(b)
	}
	slot := &it.slots[internSlot(b)]
	if *slot == string(b) { // no copy for a compare
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

// internSlot hashes the length and the first and last eight bytes of b:
// what tells apart the values that repeat (commit ids, paths, names).
func internSlot(b []byte) uint {
	n := len(b)
	var x uint64
	if n >= 8 {
		x = binary.LittleEndian.Uint64(b) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[n-8:]), 31)
	} else {
		for _, c := range b {
			x = x<<8 | uint64(c)
		}
	}
	x ^= uint64(n) << 57
	x *= 0x9e3779b97f4a7c15
	return uint(x >> (64 - internBits))
}

func (r *wireReader) fail() bool {
	r.bad = true
	return false
}

func (r *wireReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-blank byte, 0 at the end.
func (r *wireReader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

func (r *wireReader) eat(c byte) bool {
	if r.peek() == c {
		r.i++
		return true
	}
	return false
}

// object reads an object, calling member with each key (unescaped keys
// only: a blame answer's keys have no escapes) and the reader at its value.
func (r *wireReader) object(member func(key []byte) bool) bool {
	if r.bad || !r.eat('{') {
		return r.fail()
	}
	if r.eat('}') {
		return true
	}
	for {
		if r.peek() != '"' {
			return r.fail()
		}
		start := r.i + 1
		end := r.stringEnd()
		if end < 0 {
			return r.fail()
		}
		key := r.b[start:end]
		if control, _ := scanPlain(key); control || bytes.IndexByte(key, '\\') >= 0 {
			return r.fail()
		}
		if !r.eat(':') || !member(key) || r.bad {
			return r.fail()
		}
		if r.eat(',') {
			continue
		}
		if r.eat('}') {
			return true
		}
		return r.fail()
	}
}

// fields refuses a field read twice, as the general decoder does: each
// typed reader numbers its fields and asks first.
type fields uint16

func (f *fields) first(n uint) bool {
	if *f&(1<<n) != 0 {
		return false
	}
	*f |= 1 << n
	return true
}

// array reads a list, calling elem with the reader at each element.
func (r *wireReader) array(elem func() bool) bool {
	if r.bad || !r.eat('[') {
		return r.fail()
	}
	if r.eat(']') {
		return true
	}
	for {
		if !elem() || r.bad {
			return r.fail()
		}
		if r.eat(',') {
			continue
		}
		if r.eat(']') {
			return true
		}
		return r.fail()
	}
}

// stringEnd moves past the string that starts at i (its opening quote) and
// returns the index of its closing quote, or -1.
func (r *wireReader) stringEnd() int {
	i := r.i + 1
	for {
		q := bytes.IndexByte(r.b[i:], '"')
		if q < 0 {
			return -1
		}
		// The quote is escaped when an odd run of backslashes precedes it.
		k := i + q
		bs := 0
		for j := k - 1; j >= i && r.b[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			r.i = k + 1
			return k
		}
		i = k + 1
	}
}

// str reads a string value into a new Go string.
func (r *wireReader) str(dst *string) bool {
	if r.bad || r.peek() != '"' {
		return r.fail()
	}
	start := r.i + 1
	end := r.stringEnd()
	if end < 0 {
		return r.fail()
	}
	s := r.b[start:end]
	if bytes.IndexByte(s, '\\') < 0 {
		control, high := scanPlain(s)
		if control || high && !utf8.Valid(s) {
			return r.fail()
		}
		*dst = r.intern.string(s)
		return true
	}
	out, ok := unescape(s)
	if !ok {
		return r.fail()
	}
	*dst = out
	return true
}

// unescape decodes the body of a JSON string with escapes; false for bad
// escapes, lone surrogates, control characters or bad UTF-8, which the
// general decoder reports.
func unescape(s []byte) (string, bool) {
	// Escapes are ASCII above 0x1f: one scan of the whole says whether a
	// raw control character or bad UTF-8 is there.
	control, high := scanPlain(s)
	if control || high && !utf8.Valid(s) {
		return "", false
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		k := bytes.IndexByte(s[i:], '\\')
		if k < 0 {
			out = append(out, s[i:]...)
			break
		}
		out = append(out, s[i:i+k]...)
		i += k
		if i+1 >= len(s) {
			return "", false
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1, ok := hex4(s, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r1) {
				if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(s, i+2)
				if !ok {
					return "", false
				}
				r1 = utf16.DecodeRune(r1, r2)
				if r1 == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r1)
			continue
		default:
			return "", false
		}
		i += 2
	}
	// out is new and written no more: the string can take it as it is.
	return unsafe.String(unsafe.SliceData(out), len(out)), true
}

// scanPlain reports, eight bytes at a time, whether s holds a byte below
// 0x20 (a raw control character, which JSON strings may not hold) and
// whether it holds one above 0x7f (UTF-8 to check).
func scanPlain(s []byte) (control, high bool) {
	const highs, blanks = 0x8080808080808080, 0x2020202020202020
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		high = high || x&highs != 0
		if (x-blanks)&^x&highs != 0 { // some byte may be below 0x20: look
			for _, c := range s[i : i+8] {
				if c < 0x20 {
					return true, high
				}
			}
		}
	}
	for _, c := range s[i:] {
		if c < 0x20 {
			return true, high
		}
		high = high || c >= utf8.RuneSelf
	}
	return false, high
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

// skip reads any value through.
func (r *wireReader) skip() bool {
	switch c := r.peek(); {
	case c == '"':
		start := r.i + 1
		end := r.stringEnd()
		if end < 0 || !validSkipped(r.b[start:end]) {
			return r.fail()
		}
		return true
	case c == '{':
		return r.object(func([]byte) bool { return r.skip() })
	case c == '[':
		return r.array(r.skip)
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	return r.fail()
}

// number reads a number through, as JSON writes numbers:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (r *wireReader) number() bool {
	digits := func() int {
		n := 0
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.b[r.i] == '-' {
		r.i++
	}
	start := r.i
	if n := digits(); n == 0 || n > 1 && r.b[start] == '0' {
		return r.fail()
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return r.fail()
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return r.fail()
		}
	}
	return true
}

// validSkipped reports whether the body of a string that is not kept is
// one the general decoder reads: no raw control character, no bad escape.
// (Bad UTF-8 and lone surrogates it reads, replaced.)
func validSkipped(s []byte) bool {
	if control, _ := scanPlain(s); control {
		return false
	}
	for i := 0; ; {
		k := bytes.IndexByte(s[i:], '\\')
		if k < 0 {
			return true
		}
		i += k + 1
		if i >= len(s) {
			return false
		}
		switch s[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if _, ok := hex4(s, i+1); !ok {
				return false
			}
			i += 5
		default:
			return false
		}
	}
}

func (r *wireReader) literal(lit string) bool {
	if !bytes.HasPrefix(r.b[r.i:], []byte(lit)) {
		return r.fail()
	}
	r.i += len(lit)
	return true
}

// integer reads a JSON integer that fits an int.
func (r *wireReader) integer(dst *int) bool {
	r.ws()
	neg := false
	if r.i < len(r.b) && r.b[r.i] == '-' {
		neg = true
		r.i++
	}
	start, v := r.i, 0
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		if r.i-start >= 18 {
			return r.fail()
		}
		v = v*10 + int(r.b[r.i]-'0')
		r.i++
	}
	if r.i == start || (r.b[start] == '0' && r.i-start > 1) {
		return r.fail()
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return r.fail()
		}
	}
	if neg {
		v = -v
	}
	*dst = v
	return true
}

func (r *wireReader) strings(dst *[]string) bool {
	out := make([]string, 0, 2)
	ok := r.array(func() bool {
		var s string
		ok := r.str(&s)
		out = append(out, s)
		return ok
	})
	*dst = out
	return ok
}

func (r *wireReader) failedState(s *wireFailedState) bool {
	var seen fields
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "__id__":
			if !seen.first(0) {
				return r.fail()
			}
			return r.str(&s.ID)
		case "__sls__":
			if !seen.first(1) {
				return r.fail()
			}
			return r.str(&s.SLS)
		case "fun":
			if !seen.first(2) {
				return r.fail()
			}
			return r.str(&s.Fun)
		case "name":
			if !seen.first(3) {
				return r.fail()
			}
			return r.str(&s.Name)
		case "comment":
			if !seen.first(4) {
				return r.fail()
			}
			return r.str(&s.Comment)
		}
		return r.skip()
	})
}

func (r *wireReader) compileError(e *wireCompileError) bool {
	var seen fields
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "error_types":
			if !seen.first(0) {
				return r.fail()
			}
			return r.strings(&e.ErrorTypes)
		case "state":
			if !seen.first(1) {
				return r.fail()
			}
			return r.str(&e.State)
		case "message":
			if !seen.first(2) {
				return r.fail()
			}
			return r.str(&e.Message)
		case "urls":
			if !seen.first(3) {
				return r.fail()
			}
			return r.strings(&e.URLs)
		}
		return r.skip()
	})
}

func (r *wireReader) failure(f *wireFailure) bool {
	var seen fields
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "result":
			if !seen.first(0) {
				return r.fail()
			}
			switch r.peek() {
			case 't', 'f':
				v := r.b[r.i] == 't'
				f.Result = &v
				return r.skip()
			}
			return r.fail() // null, or not a boolean: the general decoder decides
		case "status":
			if !seen.first(1) {
				return r.fail()
			}
			return r.str(&f.Status)
		case "message":
			if !seen.first(2) {
				return r.fail()
			}
			return r.str(&f.Message)
		case "window":
			if !seen.first(3) {
				return r.fail()
			}
			return r.str(&f.Window)
		case "commits":
			if !seen.first(4) {
				return r.fail()
			}
			f.Commits = r.intern.commits[:0]
			return r.array(func() bool {
				var c wireCommit
				ok := r.commit(&c)
				f.Commits = append(f.Commits, c)
				return ok
			})
		case "failed_job":
			if !seen.first(5) {
				return r.fail()
			}
			return r.jobOrNull(&f.FailedJob, &r.intern.jobs[0])
		case "last_success_job":
			if !seen.first(6) {
				return r.fail()
			}
			return r.jobOrNull(&f.LastSuccessJob, &r.intern.jobs[1])
		}
		return r.skip()
	})
}

func (r *wireReader) commit(c *wireCommit) bool {
	var seen fields
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "commit_id":
			if !seen.first(0) {
				return r.fail()
			}
			return r.str(&c.ID)
		case "author_name":
			if !seen.first(1) {
				return r.fail()
			}
			return r.str(&c.AuthorName)
		case "author_email":
			if !seen.first(2) {
				return r.fail()
			}
			return r.str(&c.AuthorEmail)
		case "commit_datetime":
			if !seen.first(3) {
				return r.fail()
			}
			return r.str(&c.Datetime)
		case "path":
			if !seen.first(4) {
				return r.fail()
			}
			return r.str(&c.Path)
		case "change":
			if !seen.first(5) {
				return r.fail()
			}
			return r.str(&c.Change)
		}
		return r.skip()
	})
}

// jobOrNull reads a job, or null (no such job).
func (r *wireReader) jobOrNull(dst **wireJob, scratch *wireJob) bool {
	if r.peek() == 'n' {
		*dst = nil
		return r.literal("null")
	}
	*scratch = wireJob{} // a decoding that gave up may have left one
	*dst = scratch
	return r.job(*dst)
}

func (r *wireReader) job(j *wireJob) bool {
	var seen fields
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "jid":
			if !seen.first(0) {
				return r.fail()
			}
			return r.str(&j.JID)
		case "time":
			if !seen.first(1) {
				return r.fail()
			}
			return r.str(&j.Time)
		case "retcode":
			if !seen.first(2) {
				return r.fail()
			}
			return r.integer(&j.Retcode)
		case "commit":
			if !seen.first(3) {
				return r.fail()
			}
			return r.str(&j.Commit)
		case "codebase_version":
			if !seen.first(4) {
				return r.fail()
			}
			return r.str(&j.CodebaseVersion)
		}
		return r.skip()
	})
}

// fastFields are the wire fields decodeFast reads, by wire type: a test
// checks them against the wire types' tags, so that a field added there
// is not dropped here.
var fastFields = map[string][]string{
	"wireFailedState":  {"__id__", "__sls__", "fun", "name", "comment"},
	"wireCompileError": {"error_types", "state", "message", "urls"},
	"wireFailure":      {"result", "status", "message", "window", "commits", "failed_job", "last_success_job"},
	"wireCommit":       {"commit_id", "author_name", "author_email", "commit_datetime", "path", "change"},
	"wireJob":          {"jid", "time", "retcode", "commit", "codebase_version"},
}
