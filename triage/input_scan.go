package triage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Limits that keep the memory of reading saved evidence flat whatever the
// input holds: a gigabyte of whitespace, one huge string, one huge answer.
const (
	// MaxAnswerBytes bounds one minion's answer. A larger answer is read
	// through without being kept, and the minion counts as a blame error
	// that names the limit. Real answers are a few KB; a highstate with
	// thousands of failed states is well under this.
	MaxAnswerBytes = 4 << 20
	// maxIDBytes bounds a minion id (a key of the input's objects).
	maxIDBytes = 1 << 10
	// scanBuffer is what is read from the input at a time.
	scanBuffer = 256 << 10
	// arenaBlock is the size of the blocks answers are copied into: one
	// allocation for many answers.
	arenaBlock = 1 << 20
)

// inputAnswer is one answer read from saved evidence. Size is the answer's
// length in the input; Raw is nil when Size is over MaxAnswerBytes.
type inputAnswer struct {
	MinionAnswer
	Size int64
}

// TooLarge reports an answer that was read through, not kept.
func (a inputAnswer) TooLarge() bool { return a.Raw == nil && a.Size > MaxAnswerBytes }

// scanner reads saved evidence: a stream of JSON documents whose values are
// copied out one at a time, never the whole input. It checks the structure
// it needs (objects, lists, strings, the end of each value); each answer's
// own JSON is checked when it is decoded.
type scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	off      int64 // input offset of buf[0]
	err      error // sticky read error, io.EOF at the end
	// arena holds the answers handed out; scratch what is read and let go.
	arena, scratch []byte
	// unwanted, when set, names minions whose answers are read through
	// and not handed out.
	unwanted func(id string) bool

	// Set when a part of the input is read by the parallel reader
	// (input_parallel.go): its blocks in place of r, and the part that
	// decides at each minion where to stop and how to decode.
	src  func(i int) ([]byte, error) // block i of the input
	blk  int                         // the index of buf among the blocks
	part partHooks
	// noFill makes fill fail with errPark rather than read on.
	noFill bool
	// transient hands out answers in scratch, valid until the next read.
	transient bool
	// docs counts the documents begun; resumed is set when the scanner
	// starts inside one.
	docs    int
	resumed bool
}

// partHooks is what a part of a parallel reading does at each minion's
// key, and with each answer (input_parallel.go).
type partHooks interface {
	member(s *scanner, top bool) error
	answer(s *scanner, id string) (bool, error)
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, scanBuffer)}
}

// offset is the input offset of the next byte.
func (s *scanner) offset() int64 { return s.off + int64(s.pos) }

// fill reads more input when the buffer is used up; false at the end or on
// an error (in s.err).
func (s *scanner) fill() bool {
	if s.pos < s.end {
		return true
	}
	if s.err != nil {
		return false
	}
	if s.noFill {
		s.err = errPark
		return false
	}
	if s.src != nil {
		b, err := s.src(s.blk + 1)
		if err != nil {
			s.err = err
			return false
		}
		s.off += int64(s.end)
		s.blk++
		s.buf, s.pos, s.end = b, 0, len(b)
		return s.end > 0 || s.fill()
	}
	s.off += int64(s.end)
	s.pos, s.end = 0, 0
	for s.end == 0 && s.err == nil {
		var n int
		n, s.err = s.r.Read(s.buf)
		s.end = n
	}
	return s.end > 0
}

// readErr is the error for input that ended early: the read error, or
// "unexpected end of input".
func (s *scanner) readErr() error {
	if s.err != nil && s.err != io.EOF {
		return s.err
	}
	return fmt.Errorf("unexpected end of input at byte %d", s.offset())
}

// peek skips whitespace and returns the next byte; false at the end.
func (s *scanner) peek() (byte, bool) {
	for s.fill() {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos += spanOf(s.buf[s.pos:s.end], c)
			default:
				return c, true
			}
		}
	}
	return 0, false
}

// expect consumes the next non-blank byte if it is c.
func (s *scanner) expect(c byte) bool {
	if b, ok := s.peek(); ok && b == c {
		s.pos++
		return true
	}
	return false
}

// unexpected describes the next byte for an error: "invalid character 'g'
// at byte 16", or the end of input.
func (s *scanner) unexpected(want string) error {
	c, ok := s.peek()
	if !ok {
		return fmt.Errorf("%w (want %s)", s.readErr(), want)
	}
	return fmt.Errorf("invalid character %s at byte %d (want %s)", quoteByte(c), s.offset(), want)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// key reads an object key, at most maxIDBytes long.
func (s *scanner) key() (string, error) {
	if c, ok := s.peek(); !ok || c != '"' {
		return "", s.unexpected("a quoted minion id")
	}
	// Most keys are plain and in the buffer: taken as they are.
	if q := bytes.IndexByte(s.buf[s.pos+1:s.end], '"'); q >= 0 && q+2 <= maxIDBytes {
		if k := s.buf[s.pos+1 : s.pos+1+q]; bytes.IndexByte(k, '\\') < 0 {
			s.pos += q + 2
			return string(k), nil
		}
	}
	at := s.offset()
	raw, size, err := s.value(maxIDBytes, false)
	if err != nil {
		return "", err
	}
	if raw == nil {
		return "", fmt.Errorf("a key of %d bytes at byte %d, over the %d-byte limit of a minion id", size, at, maxIDBytes)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", fmt.Errorf("key at byte %d is not a valid JSON string", at)
	}
	return k, nil
}

// value reads the next value through. It returns the value's bytes when it
// is at most limit bytes long (in the arena when keep, where they stay
// valid; else in a scratch buffer that the next read reuses), or nil when
// it is longer; and its size in the input either way.
func (s *scanner) value(limit int, keep bool) ([]byte, int64, error) {
	first, ok := s.peek()
	if !ok {
		return nil, 0, s.readErr()
	}
	switch first {
	case ',', ':', '}', ']':
		return nil, 0, s.unexpected("a value")
	}
	dst := &s.scratch
	if keep {
		dst = &s.arena
	} else {
		s.scratch = s.scratch[:0]
	}
	var (
		start    = len(*dst)
		size     int64
		depth    int
		inString bool
		escaped  bool
		over     bool
	)
	save := func(seg []byte) {
		size += int64(len(seg))
		if over {
			return
		}
		if size > int64(limit) {
			over = true
			*dst = (*dst)[:start]
			return
		}
		if len(*dst)+len(seg) > cap(*dst) {
			// A new block: the value so far moves into it; earlier
			// answers keep the old block alive as long as they need it.
			have := len(*dst) - start
			n := max(2*(have+len(seg)), 4<<10)
			if keep {
				n = max(n, arenaBlock)
			}
			*dst, start = append(make([]byte, 0, n), (*dst)[start:]...), 0
		}
		*dst = append(*dst, seg...)
	}
	for done := false; !done; {
		if !s.fill() {
			return nil, size, s.readErr()
		}
		i := s.pos
		// quote is where the next quote is in the buffer (s.end for
		// none), found once for all the escapes before it: a traceback
		// has an escape a line.
		quote := -1
	scan:
		for i < s.end {
			if inString {
				if escaped {
					escaped = false
					i++
					continue
				}
				// Strings are most of the input: find their end with the
				// vectorised byte search, not byte by byte.
				if quote < i {
					quote = s.end
					if q := bytes.IndexByte(s.buf[i:s.end], '"'); q >= 0 {
						quote = i + q
					}
				}
				if b := bytes.IndexByte(s.buf[i:quote], '\\'); b >= 0 {
					escaped = true
					i += b + 1
					continue
				}
				if quote == s.end {
					i = s.end
					continue
				}
				i = quote + 1
				inString = false
				if depth == 0 {
					done = true
					break scan
				}
				continue
			}
			switch c := s.buf[i]; c {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth == 0 { // the end of a number or literal
					done = true
					break scan
				}
				depth--
				if depth == 0 {
					i++
					done = true
					break scan
				}
			case ',', ':':
				if depth == 0 {
					done = true
					break scan
				}
			case ' ', '\t', '\n', '\r':
				if depth == 0 {
					done = true
					break scan
				}
				i += spanOf(s.buf[i:s.end], c)
				continue
			}
			i++
		}
		save(s.buf[s.pos:i])
		s.pos = i
	}
	if over {
		return nil, size, nil
	}
	return (*dst)[start:], size, nil
}

// skip reads a value through without keeping it.
func (s *scanner) skip() error {
	_, _, err := s.value(0, false)
	return err
}

// readInput reads saved evidence and calls emit for each minion's answer,
// in input order. See ReadAnswers for the formats.
func readInput(r io.Reader, emit func(inputAnswer) error) error {
	return newScanner(r).read(emit)
}

func (s *scanner) read(emit func(inputAnswer) error) error {
	for {
		c, ok := s.peek()
		if !ok {
			if s.err != nil && s.err != io.EOF {
				return fmt.Errorf("input: %w", s.err)
			}
			if s.docs == 0 && !s.resumed {
				return errors.New("input: empty (want the JSON that salt --out json or salt-api prints)")
			}
			return nil
		}
		if c != '{' {
			if s.docs == 0 && !s.resumed {
				return fmt.Errorf("input: document 1 starts with %s, want an object of minion answers", kindOf(c))
			}
			return &afterDocError{c: c, at: s.offset(), docs: s.docs}
		}
		s.pos++
		s.docs++
		if err := s.minions(emit, true); err != nil {
			return err
		}
	}
}

// afterDocError is input that goes on after a document with something
// other than another document. docs counts the documents before it: a
// part of the input read on its own counts from where it starts, and the
// count is made whole when the part is known to be where it thought.
type afterDocError struct {
	c    byte
	at   int64
	docs int
}

func (e *afterDocError) Error() string {
	return fmt.Sprintf("input: invalid character %s at byte %d after document %d (want another object of minion answers, or the end)", quoteByte(e.c), e.at, e.docs)
}

// resumeTop reads on from a minion's key in a document's object of
// answers, as read would have from there.
func (s *scanner) resumeTop(emit func(inputAnswer) error) error {
	s.resumed = true
	if err := s.members(emit, true); err != nil {
		return err
	}
	return s.read(emit)
}

// resumeReturn reads on from a minion's key in an object of answers in
// salt-api's "return" list, as read would have from there.
func (s *scanner) resumeReturn(emit func(inputAnswer) error) error {
	s.resumed = true
	if err := s.members(emit, false); err != nil {
		return err
	}
	if err := s.entries(emit); err != nil {
		return err
	}
	// The rest of the document that holds "return".
	more, err := s.memberEnd("return")
	if err != nil {
		return err
	}
	if more {
		if err := s.members(emit, true); err != nil {
			return err
		}
	}
	return s.read(emit)
}

// kindOf names the JSON value a byte starts.
func kindOf(c byte) string {
	switch c {
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if c == '-' || c >= '0' && c <= '9' {
		return "a number"
	}
	return "invalid character " + quoteByte(c)
}

// minions reads the members of an object whose brace has been read:
// minion id → answer. At the top level, "return" (salt-api's wrapper) and
// "info" (/jobs metadata) are recognised.
func (s *scanner) minions(emit func(inputAnswer) error, top bool) error {
	if s.expect('}') {
		return nil
	}
	return s.members(emit, top)
}

// members reads the members of an object of answers from a key on, to
// the object's end.
func (s *scanner) members(emit func(inputAnswer) error, top bool) error {
	for {
		if s.part != nil {
			if err := s.part.member(s, top); err != nil {
				return err
			}
		}
		id, err := s.key()
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		if !s.expect(':') {
			return fmt.Errorf("input: after %q: %w", truncate(id, 80), s.unexpected("':'"))
		}
		switch {
		case top && id == "return":
			if err := s.wrapped(emit); err != nil {
				return err
			}
		case top && id == "info":
			if err := s.skip(); err != nil {
				return fmt.Errorf("input: \"info\": %w", err)
			}
		case s.unwanted != nil && s.unwanted(validID(id)):
			if err := s.skip(); err != nil {
				return fmt.Errorf("input: minion %q: %w", truncate(id, 80), err)
			}
		default:
			if s.part != nil {
				done, err := s.part.answer(s, id)
				if err != nil {
					return err
				}
				if done {
					id = validID(id)
					break
				}
			}
			raw, size, err := s.value(MaxAnswerBytes, !s.transient)
			if err != nil {
				return fmt.Errorf("input: minion %q: %w", truncate(id, 80), err)
			}
			id = validID(id)
			if err := emit(inputAnswer{MinionAnswer{ID: id, Raw: raw}, size}); err != nil {
				return err
			}
		}
		more, err := s.memberEnd(id)
		if err != nil || !more {
			return err
		}
	}
}

// memberEnd reads what follows a member: true after a comma, false at the
// object's end.
func (s *scanner) memberEnd(id string) (bool, error) {
	if s.expect(',') {
		return true, nil
	}
	if s.expect('}') {
		return false, nil
	}
	return false, fmt.Errorf("input: after minion %q: %w", truncate(id, 80), s.unexpected("',' or '}'"))
}

// validID is a minion id as it is reported: bad UTF-8 replaced.
func validID(id string) string {
	if utf8.ValidString(id) {
		return id
	}
	return string(bytes.ToValidUTF8([]byte(id), []byte("\uFFFD")))
}

// wrapped reads salt-api's `"return": [{minion: answer, …}]`.
func (s *scanner) wrapped(emit func(inputAnswer) error) error {
	if !s.expect('[') {
		return errors.New(`input: "return" is not a list (want salt-api's {"return": [{…}]})`)
	}
	if s.expect(']') {
		return nil
	}
	if err := s.entry(emit); err != nil {
		return err
	}
	return s.entries(emit)
}

// entry reads one entry of "return": an object of answers.
func (s *scanner) entry(emit func(inputAnswer) error) error {
	if !s.expect('{') {
		return errors.New(`input: an entry of "return" is not an object of minion answers`)
	}
	return s.minions(emit, false)
}

// entries reads the entries of "return" that follow one, to the list's end.
func (s *scanner) entries(emit func(inputAnswer) error) error {
	for {
		if s.expect(']') {
			return nil
		}
		if !s.expect(',') {
			return fmt.Errorf(`input: in "return": %w`, s.unexpected("',' or ']'"))
		}
		if err := s.entry(emit); err != nil {
			return err
		}
	}
}

// spanOf returns how many bytes at the start of b are c: indentation, and
// inputs padded with whitespace, are long runs, compared a block at a time.
func spanOf(b []byte, c byte) int {
	i := 0
	if block := blankBlocks[c]; block != nil && len(b) >= len(block) {
		for i+len(block) <= len(b) && bytes.Equal(b[i:i+len(block)], block) {
			i += len(block)
		}
	}
	pattern := uint64(c) * 0x0101010101010101
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != pattern {
			break
		}
	}
	for i < len(b) && b[i] == c {
		i++
	}
	return i
}

// blankBlocks are runs of each whitespace byte to compare input against.
var blankBlocks = func() (blocks [256][]byte) {
	for _, c := range []byte(" \t\n\r") {
		blocks[c] = bytes.Repeat([]byte{c}, 1024)
	}
	return blocks
}()
