package triage

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"sync"
	"unsafe"
)

// decodeFast decodes a well-formed blame answer by hand: one pass, fields
// it does not need (tracebacks, timings, changes) skipped, no reflection.
// It gives up on anything unusual (a missing function, a value of another
// type, null, a duplicate field, bad UTF-8, deep nesting), and the general
// decoders, which say what is wrong, take over; what it accepts decodes as
// they would decode it.
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
// would give up, and when b ends inside the object. Nothing of b is kept:
// the minion holds copies.
func decodePrefix(m Minion, b []byte) (Minion, int, bool) {
	return decodeIn(m, b, nil)
}

// decodeIn is decodePrefix, what the minion keeps in arena (nil for
// strings of its own): the minion is valid until arena is reset.
func decodeIn(m Minion, b []byte, arena *batchArena) (Minion, int, bool) {
	it := interners.Get().(*interner)
	it.arena = arena
	m, n, ok := it.decode(m, b)
	// Not deferred: a decoding that panics (a mapped file cut short faults
	// under the reader) leaves the interner holding what b lent it, and it
	// must not go back to the pool for the next decoding to read.
	it.arena = nil
	interners.Put(it)
	return m, n, ok
}

// decode is decodePrefix with this interner.
func (it *interner) decode(m Minion, b []byte) (Minion, int, bool) {
	for i := range it.same {
		// An answer remembered, byte for byte; the word at sameAt, in
		// the bytes the reader has just looked at, tells most others
		// apart without a call.
		if s := &it.same[i]; len(s.raw) > 0 && len(b) >= len(s.raw) &&
			binary.LittleEndian.Uint64(b[sameAt:]) == s.word && bytes.Equal(b[:len(s.raw)], s.raw) {
			m.Status, m.Detail = s.status, s.detail
			return m, len(s.raw), true
		}
	}
	n, ok := it.scan(b)
	if ok {
		m = it.classify(m)
		it.remember(m, b[:n])
	}
	it.done()
	return m, n, ok
}

// An interner remembers a few answers, and the comments of a failing
// minion's first failed states, of up to maxSame bytes.
const (
	sameAnswers  = 4
	sameComments = 4
	maxSame      = 4 << 10
)

// sameAnswer is an answer remembered, and what it decoded to.
type sameAnswer struct {
	raw    []byte
	word   uint64 // at sameAt
	status MinionStatus
	detail string
}

// sameAt is where the word that tells answers apart is: past the first
// function's name, at the start of its value.
const sameAt = 24

// remember keeps a copy of an answer that decoded to a status and a
// detail only (healthy, no jobs, a module that is missing or failed): a
// fleet's healthy minions mostly answer the same bytes, the last success
// of one job, and the next such answer is known by a compare. A failing
// minion's answer is not kept: its templates depend on its id.
func (it *interner) remember(m Minion, raw []byte) {
	if m.Status == StatusFailing || len(raw) > maxSame || len(raw) < sameAt+8 || m.FailedStates != nil || m.CompileErrors != nil ||
		m.Commits != nil || m.FailedJob != nil || m.LastSuccessJob != nil || m.Window != "" {
		return
	}
	// The oldest makes room.
	last := it.same[len(it.same)-1].raw
	copy(it.same[1:], it.same[:len(it.same)-1])
	it.same[0] = sameAnswer{append(last[:0], raw...), binary.LittleEndian.Uint64(raw[sameAt:]), m.Status, m.Detail}
}

// interner holds what one decoding needs and reuses: the wire values
// being read, a cache of the short strings that repeat from minion to
// minion, the order keys came in, and the answers and values it
// remembers. Each decoding worker takes one from the pool at a time.
type interner struct {
	a     scanned
	guess keyGuesses
	slots [internSlots]string
	// The answers remembered, the last first.
	same [sameAnswers]sameAnswer
	// The commits and the last success of the last failing minion, as
	// written and with their strings its own: most minions a bad commit
	// broke report the same commits, and the same last success.
	commits      []byte
	commitsOwned []wireCommit
	success      []byte
	successOwned wireJob
	// What classify made of them for a minion, nil before: the next
	// minion that repeats them shares the list and the job.
	commitsMade []Commit
	successMade *Job
	// The comments of the first failed states of the last failing minion,
	// as written and as kept: a failure on many minions often has the same
	// comment on each.
	comments [sameComments]sameComment
	// arena, when set, holds what a failing minion keeps, in place of
	// allocations of its own (decodeIn).
	arena *batchArena
}

// sameComment is a comment remembered, as written and as kept: in an
// arena, generation gen of it, or, when arena is nil, a string of its own.
type sameComment struct {
	raw   []byte
	text  string
	arena *textArena
	gen   uint64
}

// valid reports whether the comment's text can still be handed out by a
// decoding into arena.
func (c *sameComment) valid(arena *batchArena) bool {
	return c.arena == nil || arena != nil && c.arena == &arena.text && c.gen == arena.text.gen
}

// scanned is one answer as the hand decoder reads it. Its lists are
// reused from answer to answer. Its strings are borrowed: they point into
// the input or into scratch, until own (or classify, of the strings it
// only looks at) copies what the minion keeps. A minion that is not
// failing keeps none of them.
type scanned struct {
	states  []wireFailedState
	errs    []wireCompileError
	commits []wireCommit
	strs    []string // the compile errors' types and URLs
	jobs    [2]wireJob
	result  bool
	f       wireFailure
	// A function that answered a string (a traceback, Salt's words for a
	// missing module) in place of its results, by its place in
	// BlameFunctions.
	said    [3]string
	saidSet uint8
	// scratch holds the strings that had escapes, unescaped.
	scratch []byte
	// The commits and the last success as written, when read; or that
	// they are the ones remembered, whose strings are the interner's.
	commitsRaw, successRaw   []byte
	commitsSame, successSame bool
	// Whether the commits and the last success are the ones remembered,
	// having been read again or just made so.
	commitsKept, successKept bool
	// The first failed states' comments as written (quotes included),
	// and which of them are the ones remembered.
	commentRaw  [sameComments][]byte
	commentSame uint8
}

// maxScratch bounds the scratch a pooled interner keeps between answers.
const maxScratch = 64 << 10

// done forgets the answer, so that the pool holds nothing of its input.
func (it *interner) done() {
	a := &it.a
	clear(a.states)
	clear(a.errs)
	clear(a.commits)
	clear(a.strs)
	scratch := a.scratch[:0]
	if cap(scratch) > maxScratch {
		scratch = nil
	}
	*a = scanned{states: a.states[:0], errs: a.errs[:0], commits: a.commits[:0], strs: a.strs[:0], scratch: scratch}
}

var interners = sync.Pool{New: func() any { return new(interner) }}

// scan reads the answer that b starts with into it.a, and returns the
// bytes it took.
func (it *interner) scan(b []byte) (int, bool) {
	r := wireReader{b: b, it: it}
	a := &it.a
	var seen uint8
	if !r.enter('{') {
		return 0, false
	}
	prev := -1
	for fun := r.field(answerKeys, &prev, true); fun != endFields; fun = r.field(answerKeys, &prev, false) {
		bit := uint8(1) << fun
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		if r.peek() == '"' {
			r.str(&a.said[fun])
			a.saidSet |= bit
			continue
		}
		switch fun {
		case 0:
			r.failedStates()
		case 1:
			r.failure(&a.f)
		case 2:
			r.compileErrors()
		}
	}
	if r.bad || seen != 7 {
		return 0, false
	}
	return r.i, true
}

// classify classifies the answer scan read, copying what the minion keeps.
func (it *interner) classify(m Minion) Minion {
	a := &it.a
	// As checkFunctions: the first function, in BlameFunctions' order,
	// that answered a string says what the minion is.
	for k := range a.said {
		if a.saidSet&(1<<k) != 0 {
			return classifyString(m, a.said[k])
		}
	}
	if a.f.Status != "failing" {
		// classify keeps no comment nor compile error of a minion that
		// is not failing: none to copy.
		return classify(m, &a.f, nil, nil)
	}
	it.own()
	var commits []Commit
	var success *Job
	if a.commitsSame {
		commits = it.commitsMade
	}
	if a.successSame {
		success = it.successMade
	}
	m = classifyShared(m, &a.f, a.states, a.errs, commits, success, it.arena)
	if m.Status == StatusFailing {
		if a.commitsKept && it.commitsMade == nil {
			it.commitsMade = m.Commits[:len(m.Commits):len(m.Commits)]
		}
		if a.successKept && it.successMade == nil {
			it.successMade = m.LastSuccessJob
		}
	}
	return m
}

// own copies what a failing minion keeps of the borrowed strings: what
// differs from minion to minion and outlives no minion (comments, compile
// errors' messages, state names, job ids: the aggregator copies what it
// keeps of a message) into one new string, its compile errors' lists
// into one new array (two allocations for the minion, not one per string
// and list), and the short strings, which repeat from minion to minion
// and which the aggregator keeps, through the interner.
func (it *interner) own() {
	a := &it.a
	n, lists := len(a.jobs[0].JID), 0
	for i := range a.states {
		n += len(a.states[i].Name)
		if !a.sameComment(i) {
			n += len(a.states[i].Comment)
		}
	}
	for i := range a.errs {
		n += len(a.errs[i].Message)
		lists += len(a.errs[i].ErrorTypes) + len(a.errs[i].URLs)
	}
	// One string for them all, in the order keep takes them: in the
	// arena, or in an allocation of its own.
	var text string
	if it.arena != nil {
		b := it.arena.text.alloc(n)[:0]
		a.eachKept(func(s string) { b = append(b, s...) })
		text = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		// Made without zeroing it first.
		var sb strings.Builder
		sb.Grow(n)
		a.eachKept(func(s string) { sb.WriteString(s) })
		text = sb.String()
	}
	keep := func(s *string) {
		n := len(*s)
		*s, text = text[:n], text[n:]
	}
	for i := range a.states {
		s := &a.states[i]
		if !a.sameComment(i) {
			keep(&s.Comment)
			if i < sameComments && len(a.commentRaw[i]) <= maxSame {
				// The comment remembered keeps the new string of a
				// minion alive: one per slot.
				c := &it.comments[i]
				c.raw, c.text, c.arena = append(c.raw[:0], a.commentRaw[i]...), s.Comment, nil
				if it.arena != nil {
					c.arena, c.gen = &it.arena.text, it.arena.text.gen
				}
			}
		}
		keep(&s.Name)
		s.ID, s.SLS, s.Fun = it.intern(s.ID), it.intern(s.SLS), it.intern(s.Fun)
	}
	var strs []string
	if lists > 0 {
		strs = it.arena.strings(lists)[:0]
	}
	keepList := func(l *[]string) {
		switch {
		case *l == nil:
		case len(*l) == 0:
			*l = []string{}
		default:
			off := len(strs)
			for _, s := range *l {
				strs = append(strs, it.intern(s))
			}
			*l = strs[off:len(strs):len(strs)]
		}
	}
	for i := range a.errs {
		e := &a.errs[i]
		keep(&e.Message)
		e.State = it.intern(e.State)
		keepList(&e.ErrorTypes)
		keepList(&e.URLs)
	}
	if !a.commitsSame {
		for i := range a.f.Commits {
			c := &a.f.Commits[i]
			c.ID, c.AuthorName, c.AuthorEmail = it.intern(c.ID), it.intern(c.AuthorName), it.intern(c.AuthorEmail)
			c.Datetime, c.Path, c.Change = it.intern(c.Datetime), it.intern(c.Path), it.intern(c.Change)
		}
		if len(a.commitsRaw) <= maxSame {
			it.commits = append(it.commits[:0], a.commitsRaw...)
			it.commitsOwned = append(it.commitsOwned[:0], a.f.Commits...)
			it.commitsMade, a.commitsKept = nil, len(a.commitsRaw) > 0
		}
	} else {
		a.commitsKept = true
	}
	j := &a.jobs[0]
	keep(&j.JID)
	j.Time, j.Commit, j.CodebaseVersion = it.intern(j.Time), it.intern(j.Commit), it.intern(j.CodebaseVersion)
	if j = &a.jobs[1]; !a.successSame {
		j.JID, j.Time, j.Commit, j.CodebaseVersion = it.intern(j.JID), it.intern(j.Time), it.intern(j.Commit), it.intern(j.CodebaseVersion)
		if a.successRaw != nil && len(a.successRaw) <= maxSame {
			it.success, it.successOwned = append(it.success[:0], a.successRaw...), *j
			it.successMade, a.successKept = nil, true
		}
	} else {
		a.successKept = true
	}
}

// eachKept calls f with each string own keeps of the borrowed ones, in
// the order it takes them.
func (a *scanned) eachKept(f func(string)) {
	for i := range a.states {
		if !a.sameComment(i) {
			f(a.states[i].Comment)
		}
		f(a.states[i].Name)
	}
	for i := range a.errs {
		f(a.errs[i].Message)
	}
	f(a.jobs[0].JID)
}

// wireReader reads JSON from b at i. Any surprise sets bad, and every
// method then reads nothing more.
type wireReader struct {
	b   []byte
	i   int
	bad bool
	it  *interner
}

// maxSkipDepth bounds the nesting of a value skipped: deeper, the general
// decoder decides, and the hand decoder's stack stays small.
const maxSkipDepth = 64

const (
	maxInterned = 64 // bytes: longer values rarely repeat
	internBits  = 10
	internSlots = 1 << internBits
)

// intern returns a copy of s: for short values, one that repeats from
// minion to minion (commit ids and authors, state ids, functions, sls,
// versions), with one allocation per value, not per minion. It is a
// direct-mapped cache, not a map: a slot found by a cheap hash of the
// value's ends, one compare, and values that do not repeat (job ids,
// times) just take a slot over.
func (it *interner) intern(s string) string {
	if len(s) > maxInterned || len(s) == 0 {
		return strings.Clone(s)
	}
	slot := &it.slots[internSlot(unsafe.Slice(unsafe.StringData(s), len(s)))]
	if *slot == s {
		return *slot
	}
	c := strings.Clone(s)
	*slot = c
	return c
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

// skipBlanks returns the index of the first byte at or after i that is
// not a blank.
func skipBlanks(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && blankSet>>b[i]&1 != 0 {
		i++
		// Indentation (salt --static, pretty printers) is runs of
		// spaces: eight bytes at a time, then up to the first other.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:]) ^ blanks
			i += bits.TrailingZeros64(x) >> 3
			if x != 0 {
				break
			}
		}
	}
	return i
}

const blankSet = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

// peek returns the next non-blank byte, 0 at the end.
func (r *wireReader) peek() byte {
	if r.i < len(r.b) {
		if c := r.b[r.i]; c > ' ' {
			return c
		}
		return r.blanks()
	}
	return 0
}

// blanks moves past blanks and returns the byte after them, 0 at the end.
func (r *wireReader) blanks() byte {
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// enter moves past c, which opens an object or a list.
func (r *wireReader) enter(c byte) bool {
	if r.bad || r.peek() != c {
		r.bad = true
		return false
	}
	r.i++
	return true
}

// first returns the first key of the object just entered, with the reader
// at its value; false at the object's end or on a surprise. Keys are read
// unescaped: a blame answer's keys have none.
func (r *wireReader) first() ([]byte, bool) {
	if r.peek() == '}' {
		r.i++
		return nil, false
	}
	return r.key()
}

// next returns the next key of the object, as first.
func (r *wireReader) next() ([]byte, bool) {
	if r.bad {
		return nil, false
	}
	switch r.peek() {
	case ',':
		r.i++
		return r.key()
	case '}':
		r.i++
		return nil, false
	}
	r.bad = true
	return nil, false
}

func (r *wireReader) key() ([]byte, bool) {
	if r.peek() != '"' {
		r.bad = true
		return nil, false
	}
	start := r.i + 1
	k, _ := scanString(r.b, start)
	if k >= len(r.b) || r.b[k] != '"' {
		r.bad = true // an escape, a control character or the end
		return nil, false
	}
	r.i = k + 1
	if r.peek() != ':' {
		r.bad = true
		return nil, false
	}
	r.i++
	return r.b[start:k], true
}

// firstElem reports whether the list just entered has an element, with
// the reader at it.
func (r *wireReader) firstElem() bool {
	if r.peek() == ']' {
		r.i++
		return false
	}
	return true
}

// nextElem reports whether the list has another element.
func (r *wireReader) nextElem() bool {
	if r.bad {
		return false
	}
	switch r.peek() {
	case ',':
		r.i++
		return true
	case ']':
		r.i++
		return false
	}
	r.bad = true
	return false
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

// skip reads any value through, at the given depth of nesting.
func (r *wireReader) skip(depth int) {
	switch c := r.peek(); {
	case c == '"':
		r.skipString()
	case (c == '{' || c == '[') && depth >= maxSkipDepth:
		r.bad = true
	case c == '{':
		r.i++
		for _, more := r.first(); more; _, more = r.next() {
			r.skip(depth + 1)
		}
	case c == '[':
		r.i++
		for more := r.firstElem(); more; more = r.nextElem() {
			r.skip(depth + 1)
		}
	case c == 't':
		r.literal("true")
	case c == 'f':
		r.literal("false")
	case c == 'n':
		r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		r.number()
	default:
		r.bad = true
	}
}

// number reads a number through, as JSON writes numbers:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (r *wireReader) number() {
	b, i := r.b, r.i
	if b[i] == '-' {
		i++
	}
	start := i
	i = digits(b, i)
	if i == start || i-start > 1 && b[start] == '0' {
		r.bad = true
		return
	}
	if i < len(b) && b[i] == '.' {
		if i++; digits(b, i) == i {
			r.bad = true
			return
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits(b, i) == i {
			r.bad = true
			return
		}
		i = digits(b, i)
	}
	r.i = i
}

// digits returns the index of the first byte at or after i that is not a
// digit.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (r *wireReader) literal(lit string) {
	if !bytes.HasPrefix(r.b[r.i:], []byte(lit)) {
		r.bad = true
		return
	}
	r.i += len(lit)
}

// integer reads a JSON integer that fits an int.
func (r *wireReader) integer(dst *int) {
	if r.bad {
		return
	}
	r.peek()
	neg := false
	if r.i < len(r.b) && r.b[r.i] == '-' {
		neg = true
		r.i++
	}
	start, v := r.i, 0
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		if r.i-start >= 18 {
			r.bad = true
			return
		}
		v = v*10 + int(r.b[r.i]-'0')
		r.i++
	}
	if r.i == start || (r.b[start] == '0' && r.i-start > 1) {
		r.bad = true
		return
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			r.bad = true
			return
		}
	}
	if neg {
		v = -v
	}
	*dst = v
}

// strings reads a list of strings into the scratch list.
func (r *wireReader) strings(dst *[]string) {
	if !r.enter('[') {
		return
	}
	a := &r.it.a
	start := len(a.strs)
	for more := r.firstElem(); more; more = r.nextElem() {
		a.strs = append(a.strs, "")
		r.str(&a.strs[len(a.strs)-1])
	}
	if *dst = a.strs[start:len(a.strs):len(a.strs)]; *dst == nil {
		*dst = []string{} // given, if empty: not as absent
	}
}

func (r *wireReader) failedStates() {
	if !r.enter('[') {
		return
	}
	a := &r.it.a
	for more := r.firstElem(); more; more = r.nextElem() {
		a.states = append(a.states, wireFailedState{})
		r.failedState(&a.states[len(a.states)-1])
	}
}

func (r *wireReader) failedState(s *wireFailedState) {
	if !r.enter('{') {
		return
	}
	var seen fields
	prev := -1
	for n := r.field(failedStateKeys, &prev, true); n != endFields; n = r.field(failedStateKeys, &prev, false) {
		if !seen.first(uint(n)) {
			r.bad = true
			return
		}
		switch n {
		case 0:
			r.str(&s.ID)
		case 1:
			r.str(&s.SLS)
		case 2:
			r.str(&s.Fun)
		case 3:
			r.str(&s.Name)
		case 4:
			k := len(r.it.a.states) - 1
			if k >= sameComments {
				r.str(&s.Comment)
				break
			}
			if c := &r.it.comments[k]; c.valid(r.it.arena) && r.peek() == '"' && r.repeats(c.raw) {
				s.Comment = r.it.comments[k].text
				r.it.a.commentSame |= 1 << k
				break
			}
			start := r.i
			r.str(&s.Comment)
			r.it.a.commentRaw[k] = r.b[start:r.i]
		}
	}
}

func (r *wireReader) compileErrors() {
	if !r.enter('[') {
		return
	}
	a := &r.it.a
	for more := r.firstElem(); more; more = r.nextElem() {
		a.errs = append(a.errs, wireCompileError{})
		r.compileError(&a.errs[len(a.errs)-1])
	}
}

func (r *wireReader) compileError(e *wireCompileError) {
	if !r.enter('{') {
		return
	}
	var seen fields
	prev := -1
	for n := r.field(compileErrorKeys, &prev, true); n != endFields; n = r.field(compileErrorKeys, &prev, false) {
		if !seen.first(uint(n)) {
			r.bad = true
			return
		}
		switch n {
		case 0:
			r.strings(&e.ErrorTypes)
		case 1:
			r.str(&e.State)
		case 2:
			r.str(&e.Message)
		case 3:
			r.strings(&e.URLs)
		}
	}
}

func (r *wireReader) failure(f *wireFailure) {
	if !r.enter('{') {
		return
	}
	a := &r.it.a
	var seen fields
	prev := -1
	for n := r.field(failureKeys, &prev, true); n != endFields; n = r.field(failureKeys, &prev, false) {
		if !seen.first(uint(n)) {
			r.bad = true
			return
		}
		switch n {
		case 0:
			switch r.peek() {
			case 't':
				a.result = true
				r.literal("true")
			case 'f':
				a.result = false
				r.literal("false")
			default:
				r.bad = true // null, or not a boolean: the general decoder decides
			}
			f.Result = &a.result
		case 1:
			r.str(&f.Status)
		case 2:
			r.str(&f.Message)
		case 3:
			r.str(&f.Window)
		case 4:
			if r.peek() == '[' && r.repeats(r.it.commits) {
				a.commits = append(a.commits, r.it.commitsOwned...)
				f.Commits, a.commitsSame = a.commits, true
				continue
			}
			start := r.i
			if !r.enter('[') {
				return
			}
			for more := r.firstElem(); more; more = r.nextElem() {
				a.commits = append(a.commits, wireCommit{})
				r.commit(&a.commits[len(a.commits)-1])
			}
			f.Commits, a.commitsRaw = a.commits, r.b[start:r.i]
		case 5:
			r.jobOrNull(&f.FailedJob, &a.jobs[0])
		case 6:
			if r.peek() == '{' && r.repeats(r.it.success) {
				a.jobs[1] = r.it.successOwned
				f.LastSuccessJob, a.successSame = &a.jobs[1], true
				continue
			}
			start := r.i
			if r.jobOrNull(&f.LastSuccessJob, &a.jobs[1]); f.LastSuccessJob != nil {
				a.successRaw = r.b[start:r.i]
			}
		}
	}
}

func (r *wireReader) commit(c *wireCommit) {
	if !r.enter('{') {
		return
	}
	var seen fields
	prev := -1
	for n := r.field(commitKeys, &prev, true); n != endFields; n = r.field(commitKeys, &prev, false) {
		if !seen.first(uint(n)) {
			r.bad = true
			return
		}
		switch n {
		case 0:
			r.str(&c.ID)
		case 1:
			r.str(&c.AuthorName)
		case 2:
			r.str(&c.AuthorEmail)
		case 3:
			r.str(&c.Datetime)
		case 4:
			r.str(&c.Path)
		case 5:
			r.str(&c.Change)
		}
	}
}

// sameComment reports whether failed state i's comment is one remembered.
func (a *scanned) sameComment(i int) bool {
	return i < sameComments && a.commentSame&(1<<i) != 0
}

// repeats moves past the value at the reader when its bytes are those of
// raw, a whole value remembered.
func (r *wireReader) repeats(raw []byte) bool {
	if len(raw) == 0 || len(r.b)-r.i < len(raw) || !bytes.Equal(r.b[r.i:r.i+len(raw)], raw) {
		return false
	}
	r.i += len(raw)
	return true
}

// jobOrNull reads a job, or null (no such job).
func (r *wireReader) jobOrNull(dst **wireJob, scratch *wireJob) {
	if r.peek() == 'n' {
		*dst = nil
		r.literal("null")
		return
	}
	*dst = scratch
	r.job(scratch)
}

func (r *wireReader) job(j *wireJob) {
	if !r.enter('{') {
		return
	}
	var seen fields
	prev := -1
	for n := r.field(jobKeys, &prev, true); n != endFields; n = r.field(jobKeys, &prev, false) {
		if !seen.first(uint(n)) {
			r.bad = true
			return
		}
		switch n {
		case 0:
			r.str(&j.JID)
		case 1:
			r.str(&j.Time)
		case 2:
			r.integer(&j.Retcode)
		case 3:
			r.str(&j.Commit)
		case 4:
			r.str(&j.CodebaseVersion)
		}
	}
}

// fastFields are the wire fields decodeFast reads, by wire type: a test
// checks them against the wire types' tags, so that a field added there
// is not dropped here.
var fastFields = map[string][]string{
	"wireFailedState":  failedStateKeys.kept(),
	"wireCompileError": compileErrorKeys.kept(),
	"wireFailure":      failureKeys.kept(),
	"wireCommit":       commitKeys.kept(),
	"wireJob":          jobKeys.kept(),
}
