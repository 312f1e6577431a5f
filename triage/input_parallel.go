package triage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Saved evidence is read in parallel, in parts. The input is read in
// blocks; the part of block j starts at the first minion whose key begins
// in block j and reads on to the first minion at or past the start of
// block j+1, where the next part starts. Where a minion begins cannot be
// known without reading from the start (a quote may open or close a
// string), so each part guesses: it tries each place in its block that
// looks like a minion's key, in order, until the reading from there
// decodes a blame answer. The guess is checked when the part before it
// ends: that part, read from a place already checked, stops at the first
// minion at or past the start of block j, in a state (an object of
// answers, in a document or in "return") that the guess must match.
// Reading from the same place in the same state reads the same, so a
// part whose guess matches read what a reading from the start would have.
// A part whose guess does not match is dropped, and the part before reads
// on in its place. Only checked parts hand minions on, in input order
// part by part, and only a checked part reads an answer that is not in
// its block or not of the usual shape, so that guesses hold no more than
// their blocks and what they decoded.
const (
	partBlock  = 2 << 20 // bytes
	partWindow = 4       // blocks read and not yet passed by a checked part
	// partTrials bounds, in blocks, what a part reads trying places
	// that turn out not to be a minion's key.
	partTrials = 2
)

// Reasons a part stops reading, inside the reader only.
var (
	errPark   = errors.New("input: the answer goes on past the block")
	errReject = errors.New("input: not where a minion begins")
	errStop   = errors.New("input: the next part reads on from here")
	errDrop   = errors.New("input: the part did not start where it guessed")
)

// readOptions configure a parallel reading; zero sizes take the defaults.
type readOptions struct {
	unwanted func(id string) bool
	block    int // bytes
	window   int // blocks
	workers  int // parts decoding at once
}

// readParallel reads saved evidence as readInput does, decoding each
// minion's answer and handing it to prep with the part's arena (where
// prep may keep lists, as the minion does), in the parts, in parallel; and
// calls add with what prep made, in input order, one call at a time (from
// the parts' goroutines), so that the first of two answers of one minion
// is the one kept. add must not keep the list, nor the minions' lists and
// text (failed states, compile errors, comments, messages, names, job
// ids), which the part's arena holds only until add returns: it copies
// what it keeps. It returns readInput's error for the same input.
func readParallel[T any](ctx context.Context, in io.Reader, opt readOptions, prep func(Minion, *batchArena) T, add func([]T)) error {
	if opt.block <= 0 {
		opt.block = partBlock
	}
	if opt.window < 2 {
		opt.window = partWindow
	}
	if opt.workers <= 0 {
		opt.workers = 1
	}
	src := newBlockSource(in, opt.block)
	defer src.close()
	g, gctx := errgroup.WithContext(ctx)
	ps := &parts[T]{
		src:     src,
		prep:    prep,
		ctx:     gctx,
		g:       g,
		opt:     opt,
		add:     add,
		top:     true,
		cpu:     semaphore.NewWeighted(int64(opt.workers)),
		window:  semaphore.NewWeighted(int64(opt.window)),
		changed: make(chan struct{}),
	}
	stop := context.AfterFunc(gctx, func() {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.notify()
	})
	defer stop()
	first := ps.newPart(0)
	ps.all = append(ps.all, first)
	g.Go(first.run)
	g.Go(ps.read)
	return g.Wait()
}

// parts is one parallel reading.
type parts[T any] struct {
	ctx    context.Context
	g      *errgroup.Group
	opt    readOptions
	prep   func(Minion, *batchArena) T
	add    func([]T)
	top    bool // the guess: answers are directly in documents, not in "return"
	cpu    *semaphore.Weighted
	window *semaphore.Weighted

	mu sync.Mutex
	// blocks are the blocks read; those before released are given back
	// and, once no part reads them, to src.
	src      blockSource
	blocks   []inputBlock
	released int
	done     bool // the input is read to its end, or err
	err      error
	all      []*part[T] // by block
	changed  chan struct{}
	// lists are the parts' lists of decoded minions, and arenas their
	// text, passed on from the parts done to the parts begun.
	lists  sync.Pool
	arenas sync.Pool
	// visits are the parts' sets of places read trying places: a block
	// of keys inside answers holds thousands.
	visits sync.Pool
}

// list returns an empty list of decoded minions, room for a block's.
func (ps *parts[T]) list() []T {
	if l, ok := ps.lists.Get().([]T); ok {
		return l
	}
	return make([]T, 0, 1024)
}

type inputBlock struct {
	b    []byte
	refs int // parts reading it
}

// notify wakes the parts waiting for a block; ps.mu is held.
func (ps *parts[T]) notify() {
	close(ps.changed)
	ps.changed = make(chan struct{})
}

// read reads the input into blocks, and starts the part of each block.
func (ps *parts[T]) read() (err error) {
	defer faultIsError(&err)
	debug.SetPanicOnFault(true)
	for j := 0; ; j++ {
		if err := ps.window.Acquire(ps.ctx, 1); err != nil {
			return err
		}
		b, end, err := ps.src.next()
		n := len(b)
		if j == 0 {
			ps.top = !inReturn(b)
		}
		ps.mu.Lock()
		if n > 0 {
			ps.blocks = append(ps.blocks, inputBlock{b: b})
			if j > 0 {
				p := ps.newPart(j)
				ps.all = append(ps.all, p)
				ps.g.Go(p.run)
			}
		}
		if end || err != nil {
			ps.done, ps.err = true, err
		}
		ps.notify()
		ps.mu.Unlock()
		if end || err != nil {
			return nil
		}
	}
}

// inReturn guesses from the input's first block that its answers are in
// salt-api's "return" list: the first key is "return" or "info".
func inReturn(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\n\r")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	b = bytes.TrimLeft(b[1:], " \t\n\r")
	return bytes.HasPrefix(b, []byte(`"return"`)) || bytes.HasPrefix(b, []byte(`"info"`))
}

// block returns block i, or, when it is not read yet, a channel closed
// once more is read; io.EOF past the end.
func (ps *parts[T]) block(i int) ([]byte, <-chan struct{}, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	switch {
	case i < ps.released:
		return nil, nil, errDrop
	case i < len(ps.blocks):
		ps.blocks[i].refs++
		return ps.blocks[i].b, nil, nil
	case ps.done:
		if ps.err != nil {
			return nil, nil, ps.err
		}
		return nil, nil, io.EOF
	}
	return nil, ps.changed, nil
}

// release gives back the blocks before block i: the reading from a
// checked place is past them.
func (ps *parts[T]) release(i int) {
	ps.mu.Lock()
	var done [][]byte
	for ; ps.released < i && ps.released < len(ps.blocks); ps.released++ {
		done = ps.recycle(done, ps.released)
		ps.window.Release(1)
	}
	ps.mu.Unlock()
	ps.giveBack(done)
}

// unref tells that a part no longer reads block i.
func (ps *parts[T]) unref(i int) {
	ps.mu.Lock()
	var done [][]byte
	ps.blocks[i].refs--
	if i < ps.released {
		done = ps.recycle(done, i)
	}
	ps.mu.Unlock()
	ps.giveBack(done)
}

// recycle adds to done the buffer of block i, released, once no part
// reads it; ps.mu is held.
func (ps *parts[T]) recycle(done [][]byte, i int) [][]byte {
	if blk := &ps.blocks[i]; blk.refs == 0 && blk.b != nil {
		done = append(done, blk.b)
		blk.b = nil
	}
	return done
}

// giveBack hands buffers no part reads back to the source, without the
// lock: unmapping a block is a system call.
func (ps *parts[T]) giveBack(done [][]byte) {
	for _, b := range done {
		ps.src.done(b)
	}
}

// part returns the part of block j, which exists once block j is read.
func (ps *parts[T]) part(j int) *part[T] {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if j < len(ps.all) {
		return ps.all[j]
	}
	return nil
}

// dropFrom drops the parts from block j on: the reading ended before them.
func (ps *parts[T]) dropFrom(j int) {
	ps.mu.Lock()
	rest := append([]*part[T](nil), ps.all[min(j, len(ps.all)):]...)
	ps.mu.Unlock()
	for _, p := range rest {
		p.drop()
	}
}

func (ps *parts[T]) newPart(j int) *part[T] {
	return &part[T]{
		ps:      ps,
		j:       j,
		found:   make(chan struct{}),
		verdict: make(chan struct{}, 1),
		held:    -1,
		next:    j + 1,
		limit:   int64(j+1) * int64(ps.opt.block),
	}
}

// part is the reading of one block's minions.
type part[T any] struct {
	ps *parts[T]
	j  int
	// start is the offset where the part's minions begin, and top whether
	// they are directly in a document; set once found is closed, start is
	// -1 when the part found no place to start.
	start int64
	top   bool
	found chan struct{}
	// verdict gets a value when the part is checked (base is then set),
	// and is closed when it is dropped.
	verdict chan struct{}
	base    int // documents begun before the part
	dropped atomic.Bool
	settled atomic.Bool // checked or dropped: verdict written to
	cur     atomic.Int64

	// Owned by the part's goroutine.
	held    int // the block the part's scanner reads, -1 for none
	hasCPU  bool
	trial   bool // trying a place: nothing decoded from it yet
	checked bool
	next    int   // the part the reading hands over to
	limit   int64 // the start of block next
	out     []T
	pending []inputAnswer // read while trying a place, not decoded yet
	arena   *batchArena   // what out's and pending's minions hold
	begin   int64         // where the place being tried is
	tried   int64         // bytes read trying places
	visited map[visit]bool
}

// visit is a minion's key read while trying places, and whether its
// object of answers was directly in a document.
type visit struct {
	at  int64
	top bool
}

// check hands the reading over to p from a checked part that has begun
// base documents.
func (p *part[T]) check(base int) {
	if p.settled.Swap(true) {
		return
	}
	p.base = base
	// The blocks p is past are done with; p may be waiting for the
	// reader, which waits for them, and gives back the next ones itself.
	p.ps.release(int(p.cur.Load()))
	p.verdict <- struct{}{}
}

// drop tells p that it did not start where it guessed.
func (p *part[T]) drop() {
	if p.settled.Swap(true) {
		return
	}
	p.dropped.Store(true)
	close(p.verdict)
}

// idle runs wait without holding a decoding slot.
func (p *part[T]) idle(wait func()) error {
	if p.hasCPU {
		p.ps.cpu.Release(1)
		p.hasCPU = false
	}
	wait()
	if err := p.ps.cpu.Acquire(p.ps.ctx, 1); err != nil {
		return err
	}
	p.hasCPU = true
	return nil
}

// await waits until the part is checked (true) or dropped.
func (p *part[T]) await() (bool, error) {
	ok := false
	err := p.idle(func() {
		select {
		case _, ok = <-p.verdict:
		case <-p.ps.ctx.Done():
		}
	})
	if err != nil || !ok {
		return false, err
	}
	p.confirm()
	return true, nil
}

// confirm is what a part does once checked: hand on what it decoded, and
// give back the blocks it is past.
func (p *part[T]) confirm() {
	p.checked = true
	p.ps.release(int(p.cur.Load()))
	p.flush()
}

func (p *part[T]) flush() {
	if len(p.out) > 0 {
		p.ps.add(p.out)
		p.forget()
	}
}

// batch returns the arena of the part's minions.
func (p *part[T]) batch() *batchArena {
	if p.arena == nil {
		p.arena, _ = p.ps.arenas.Get().(*batchArena)
		if p.arena == nil {
			p.arena = newBatchArena()
		}
	}
	return p.arena
}

// forgetVisits hands the set of places visited on to the next part.
func (p *part[T]) forgetVisits() {
	if p.visited != nil {
		clear(p.visited)
		p.ps.visits.Put(p.visited)
		p.visited = nil
	}
}

// forget lets go of the minions decoded and not handed on, and of their
// text.
func (p *part[T]) forget() {
	clear(p.out) // no decoded minion kept alive by the list
	p.out = p.out[:0]
	clear(p.pending)
	p.pending = p.pending[:0]
	if p.arena != nil {
		p.arena.reset()
	}
}

func (p *part[T]) take(m Minion) {
	if p.out == nil {
		p.out = p.ps.list()
	}
	p.out = append(p.out, p.ps.prep(m, p.batch()))
	if p.checked && len(p.out) >= inputBatch {
		p.flush()
	}
}

// collect decodes an answer read by the scanner's general path. While
// the part tries a place, the answer waits, copied, for the place to turn
// out to be a minion's key: most places tried are not, and what a wrong
// place reads (an author's name, a job) would cost the general decoder's
// time to be found not to be an answer.
func (p *part[T]) collect(a inputAnswer) error {
	if p.trial {
		if a.Raw != nil {
			raw := p.batch().text.alloc(len(a.Raw))
			copy(raw, a.Raw)
			a.Raw = raw
		}
		p.pending = append(p.pending, a)
		return nil
	}
	p.decode(a)
	return nil
}

// decode decodes an answer read by the scanner's general path.
func (p *part[T]) decode(a inputAnswer) {
	if a.TooLarge() {
		p.take(blameError(Minion{ID: a.ID}, tooLarge(a.Size)))
	} else {
		p.take(DecodeMinion(a.ID, a.Raw))
	}
}

// hold makes block i, taken from ps.block, the one the part reads.
func (p *part[T]) hold(i int) {
	if p.held >= 0 {
		p.ps.unref(p.held)
	}
	p.held = i
}

// src is the scanner's source of blocks.
func (p *part[T]) src(i int) ([]byte, error) {
	if p.trial && i != p.j {
		return nil, errReject
	}
	if p.dropped.Load() {
		return nil, errDrop
	}
	for {
		b, more, err := p.ps.block(i)
		if err != nil {
			return nil, err
		}
		if more == nil {
			p.hold(i)
			p.cur.Store(int64(i))
			if p.checked {
				p.ps.release(i)
			}
			return b, nil
		}
		// Waiting for the reader, which may wait for a checked part to
		// be past a block: without the decoding slot.
		if err := p.idle(func() {
			select {
			case <-more:
			case <-p.ps.ctx.Done():
			}
		}); err != nil {
			return nil, err
		}
		if err := p.ps.ctx.Err(); err != nil {
			return nil, err
		}
		if p.dropped.Load() {
			return nil, errDrop
		}
	}
}

// errFileChanged is a fault reading a mapped block: the file was cut
// shorter while it was read.
var errFileChanged = errors.New("input: the file changed while it was read; triage a copy that nothing writes to")

// faultIsError makes a fault on a mapped block, in the goroutine that
// defers it, an error and not a crash.
func faultIsError(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if _, ok := r.(interface{ Addr() uintptr }); ok {
		*err = errFileChanged
		return
	}
	panic(r)
}

func (p *part[T]) run() (err error) {
	defer faultIsError(&err)
	debug.SetPanicOnFault(true)
	defer func() {
		p.forget()
		p.forgetVisits()
		if cap(p.out) > 0 {
			p.ps.lists.Put(p.out)
		}
		if p.arena != nil {
			p.ps.arenas.Put(p.arena)
		}
		p.hold(-1)
		if p.hasCPU {
			p.ps.cpu.Release(1)
		}
		select {
		case <-p.found:
		default:
			p.start = -1
			close(p.found)
		}
	}()
	if err := p.ps.cpu.Acquire(p.ps.ctx, 1); err != nil {
		return err
	}
	p.hasCPU = true
	s := p.scanner()
	if p.j == 0 {
		p.checked, p.start, p.top = true, 0, true
		close(p.found)
		s.blk = -1
		return p.finish(s, s.read(p.collect))
	}
	b, _, err := p.ps.block(p.j)
	if err != nil || b == nil {
		return nil
	}
	p.hold(p.j)
	p.visited, _ = p.ps.visits.Get().(map[visit]bool)
	if p.visited == nil {
		p.visited = map[visit]bool{}
	}
	off := int64(p.j) * int64(p.ps.opt.block)
	for c := nextStart(b, 0); c >= 0 && p.tried < partTrials*int64(p.ps.opt.block); c = nextStart(b, c+1) {
		if p.dropped.Load() {
			return nil
		}
		if p.visited[visit{off + int64(c), p.ps.top}] {
			continue
		}
		p.forget()
		p.trial, p.begin = true, off+int64(c)
		s.buf, s.pos, s.end, s.off, s.blk, s.err, s.docs = b, c, len(b), off, p.j, nil, 0
		var err error
		if p.ps.top {
			err = s.resumeTop(p.collect)
		} else {
			err = s.resumeReturn(p.collect)
		}
		if !p.trial {
			return p.finish(s, err)
		}
		p.tried += s.offset() - p.begin
	}
	return nil
}

func (p *part[T]) scanner() *scanner {
	return &scanner{src: p.src, part: p, transient: true, unwanted: p.ps.opt.unwanted}
}

// nextStart returns the first place in b from i on that may begin a
// minion's key: a quote after '{' or ',' and blanks; -1 for none.
func nextStart(b []byte, i int) int {
	for i < len(b) {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		q += i
		k := q - 1
		for k >= 0 && (b[k] == ' ' || b[k] == '\n' || b[k] == '\t' || b[k] == '\r') {
			k--
		}
		if k >= 0 && (b[k] == ',' || b[k] == '{') {
			return q
		}
		i = q + 1
	}
	return -1
}

// finish ends a part whose reading returned err.
func (p *part[T]) finish(s *scanner, err error) error {
	switch {
	case errors.Is(err, errStop), errors.Is(err, errDrop):
		return nil
	case p.ps.ctx.Err() != nil:
		return p.ps.ctx.Err()
	}
	if !p.checked {
		ok, werr := p.await()
		if werr != nil || !ok {
			return werr
		}
	}
	p.flush()
	if err != nil {
		var de *afterDocError
		if errors.As(err, &de) {
			de.docs += p.base
		}
		return err
	}
	// The reading is at the end: no part after it starts anywhere.
	p.ps.dropFrom(p.next)
	return nil
}

// member is called by the scanner at each minion's key: the part stops
// there once it is past the start of the next part's block.
func (p *part[T]) member(s *scanner, top bool) error {
	if p.dropped.Load() {
		return errDrop
	}
	if _, ok := s.peek(); !ok {
		return nil // the scanner says what is wrong
	}
	x := s.offset()
	if p.trial {
		// A place an earlier try read in the same state reads the same.
		k := visit{x, top}
		if p.visited[k] && x != p.begin {
			return errReject
		}
		p.visited[k] = true
		return nil
	}
	if !p.checked {
		select {
		case _, ok := <-p.verdict:
			if !ok {
				return errDrop
			}
			p.confirm()
		default:
		}
	}
	if x < p.limit {
		return nil
	}
	if !p.checked {
		ok, err := p.await()
		if err != nil {
			return err
		}
		if !ok {
			return errDrop
		}
	}
	for {
		n := p.ps.part(p.next)
		if n == nil {
			p.limit = math.MaxInt64
			return nil
		}
		if err := p.idle(func() {
			select {
			case <-n.found:
			case <-p.ps.ctx.Done():
			}
		}); err != nil {
			return err
		}
		if p.ps.ctx.Err() != nil {
			return p.ps.ctx.Err()
		}
		if n.start == x && n.top == top {
			p.flush()
			n.check(p.base + s.docs)
			return errStop
		}
		n.drop()
		p.next++
		p.limit = int64(p.next) * int64(p.ps.opt.block)
		if x < p.limit {
			return nil
		}
	}
}

// answer decodes a minion's answer where it lies in the block when it
// can: a well-formed blame answer with the hand decoder, another answer
// that ends in the block with DecodeMinion. A part not yet checked waits
// to be before it reads on past its block for an answer (the reading that
// keeps what it reads is for checked parts); false leaves the answer to
// the scanner.
func (p *part[T]) answer(s *scanner, id string) (bool, error) {
	c, ok := s.peek()
	if !ok {
		return false, nil
	}
	if c == '{' {
		if m, n, ok := decodeIn(Minion{ID: validID(id)}, s.buf[s.pos:s.end], p.batch()); ok {
			s.pos += n
			if p.trial {
				p.trial, p.start, p.top = false, p.begin, p.ps.top
				p.forgetVisits()
				close(p.found)
				for _, a := range p.pending {
					p.decode(a)
				}
				clear(p.pending)
				p.pending = p.pending[:0]
			}
			p.take(m)
			return true, nil
		}
	}
	if p.checked {
		return false, nil
	}
	start := s.pos
	s.noFill = true
	raw, size, err := s.value(MaxAnswerBytes, false)
	s.noFill = false
	switch {
	case errors.Is(err, errPark):
		s.pos, s.err = start, nil
	case err != nil:
		return false, fmt.Errorf("input: minion %q: %w", truncate(id, 80), err)
	default:
		return true, p.collect(inputAnswer{MinionAnswer{ID: validID(id), Raw: raw}, size})
	}
	if p.trial {
		return false, errReject
	}
	ok, err = p.await()
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errDrop
	}
	return false, nil
}
