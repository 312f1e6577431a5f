package triage

import (
	"hash/maphash"
	"maps"
	"math/bits"
	"slices"
	"sync/atomic"
	"unsafe"
)

// The aggregator's maps are keyed by 64-bit hashes that a minion's Add
// works out before it takes the lock: under the lock a lookup costs one
// integer key and one comparison, not the hashing of an id, a template or
// a thousand bytes of evidence, and a map that grows moves integers
// without reading the keys behind them.

// hashSeed is the seed of every hash the aggregator counts by; one per
// process, so no input can aim at collisions.
var hashSeed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(hashSeed, s) }

// hashSignature hashes the four fields of s, each told apart from the next
// by mixing: moving a "|" from the state id into the template changes it.
func hashSignature(s Signature) uint64 {
	h := hashString(s.Fun)
	h = mixHash(h) ^ hashString(s.StateID)
	h = mixHash(h) ^ hashString(s.SLS)
	return mixHash(h) ^ hashTemplate(s.Template)
}

// templateHashes remembers the hashes of recent templates by where their
// bytes are. Templates come from the template cache, one string for every
// minion of a failure, so most are found by their address without reading
// (or hashing) their hundreds of bytes again. An entry holds its template,
// which keeps that memory from being freed and reused for another text
// while the address is remembered; so templates over templateHashMax are
// not remembered, and the entries hold at most 2 MiB.
var templateHashes [templateHashSlots]atomic.Pointer[templateHash]

const (
	templateHashSlots = 1 << 9
	templateHashMax   = 4 << 10
)

type templateHash struct {
	tmpl string
	hash uint64
}

// templateHashMin is how long a template is before its hash is
// remembered: a short one is hashed sooner than found.
const templateHashMin = 64

func hashTemplate(t string) uint64 {
	if len(t) < templateHashMin || len(t) > templateHashMax {
		return hashString(t)
	}
	at := unsafe.StringData(t)
	slot := &templateHashes[(uint64(uintptr(unsafe.Pointer(at)))^uint64(len(t)))*0x9e3779b97f4a7c15>>55]
	if e := slot.Load(); e != nil && unsafe.StringData(e.tmpl) == at && len(e.tmpl) == len(t) {
		return e.hash
	}
	h := hashString(t)
	slot.Store(&templateHash{tmpl: t, hash: h})
	return h
}

func mixHash(h uint64) uint64 { return bits.RotateLeft64(h*0x9e3779b97f4a7c15, 31) }

// hashMap maps keys to values by a hash of the key the caller works out
// (hashString, hashSignature); the key is kept and compared, so two keys
// of one hash stay apart, chained. Entries are kept in the order they were
// added, which is the order each lists them in, and in place: ref points
// at a value until the next insert.
type hashMap[K comparable, V any] struct {
	index   map[uint64]int32 // the last entry added of each hash
	entries []hashEntry[K, V]
}

type hashEntry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
	next int32 // the entry of the same hash added before, or -1
}

func (h *hashMap[K, V]) len() int { return len(h.entries) }

func (h *hashMap[K, V]) find(hash uint64, key K) int32 {
	i, ok := h.index[hash]
	if !ok {
		return -1
	}
	for ; i >= 0; i = h.entries[i].next {
		if h.entries[i].key == key {
			return i
		}
	}
	return -1
}

func (h *hashMap[K, V]) get(hash uint64, key K) (V, bool) {
	if i := h.find(hash, key); i >= 0 {
		return h.entries[i].val, true
	}
	var zero V
	return zero, false
}

// ref returns where key's value is, nil when it has none.
func (h *hashMap[K, V]) ref(hash uint64, key K) *V {
	if i := h.find(hash, key); i >= 0 {
		return &h.entries[i].val
	}
	return nil
}

// insert adds key with val unless it is there: then it returns the value
// it has and false.
func (h *hashMap[K, V]) insert(hash uint64, key K, val V) (V, bool) {
	if h.index == nil {
		h.index = map[uint64]int32{}
	}
	next, ok := h.index[hash]
	if ok {
		for i := next; i >= 0; i = h.entries[i].next {
			if h.entries[i].key == key {
				return h.entries[i].val, false
			}
		}
	} else {
		next = -1
	}
	h.index[hash] = int32(len(h.entries))
	h.entries = append(h.entries, hashEntry[K, V]{hash: hash, key: key, val: val, next: next})
	return val, true
}

// each calls f for every key, in the order they were added.
func (h *hashMap[K, V]) each(f func(hash uint64, key K, val V)) {
	for i := range h.entries {
		e := &h.entries[i]
		f(e.hash, e.key, e.val)
	}
}

// clone returns a copy of h holding the same values.
func (h *hashMap[K, V]) clone() hashMap[K, V] {
	return hashMap[K, V]{index: maps.Clone(h.index), entries: slices.Clone(h.entries)}
}

// dcSet is a set of datacenters by the order the aggregator first saw
// them in.
type dcSet []uint64

func (s *dcSet) add(i int) {
	for len(*s) <= i/64 {
		*s = append(*s, 0)
	}
	(*s)[i/64] |= 1 << (i % 64)
}

func (s *dcSet) merge(o dcSet) {
	for i, w := range o {
		if i < len(*s) {
			(*s)[i] |= w
		} else {
			*s = append(*s, w)
		}
	}
}

// names returns the set's datacenters sorted, nil for none.
func (s dcSet) names(order []string) []string {
	var out []string
	for i, w := range s {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			out = append(out, order[i*64+b])
		}
	}
	slices.Sort(out)
	return out
}

// idSet is a set of minion ids by hash (hashString), laid out for the
// largest sets the aggregator keeps: a slot of 8 bytes an id, found by
// open addressing with linear probing, so that an id new to the set (every
// answer but a repeated one) costs about one cache line. A slot holds the
// upper half of the id's hash, which also places it, and the id's number:
// the id itself is read only when that half matches, to tell a repeat from
// a collision.
type idSet struct {
	slots []uint64 // a power of two, at most half full; 0 is empty
	// ids in the order they were added, in chunks that never move: a set
	// that grows copies no strings.
	ids [][]string
	n   int
}

const idChunk = 1024

func (s *idSet) len() int { return s.n }

// id returns the id numbered i (from 1).
func (s *idSet) id(i uint32) string { return s.ids[(i-1)/idChunk][(i-1)%idChunk] }

// all calls f for every id, in the order they were added.
func (s *idSet) all(f func(id string)) {
	for _, chunk := range s.ids {
		for _, id := range chunk {
			f(id)
		}
	}
}

// find returns the slot of id, or the empty slot where it would go.
func (s *idSet) find(hash uint64, id string) *uint64 {
	top := hash >> 32
	mask := uint64(len(s.slots) - 1)
	for i := top & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if *sl == 0 || *sl>>32 == top && s.id(uint32(*sl)) == id {
			return sl
		}
	}
}

func (s *idSet) has(hash uint64, id string) bool {
	return len(s.slots) > 0 && *s.find(hash, id) != 0
}

// add adds id and reports whether it is new to the set.
func (s *idSet) add(hash uint64, id string) bool {
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	sl := s.find(hash, id)
	if *sl != 0 {
		return false
	}
	if s.n%idChunk == 0 {
		var chunk []string // the first grows as a small set needs
		if s.n > 0 {
			chunk = make([]string, 0, idChunk)
		}
		s.ids = append(s.ids, chunk)
	}
	last := &s.ids[len(s.ids)-1]
	*last = append(*last, id)
	s.n++
	*sl = hash>>32<<32 | uint64(s.n)
	return true
}

func (s *idSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	// A large table is fresh memory from the system, and probing reads a
	// slot before it writes one: each page would be mapped to the zero
	// page on the read, then copied on the write, a fault and a flush of
	// every core's TLB a page. Writing it all first maps it once.
	clear(s.slots)
	mask := uint64(len(s.slots) - 1)
	for _, sl := range old {
		if sl == 0 {
			continue
		}
		i := sl >> 32 & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = sl
	}
}

// textMap is an example's texts by hash (exampleAcc), with a filter of the
// hashes it holds once it holds many: a minion's text is mostly new to it,
// and the filter says so without a lookup.
type textMap struct {
	hashMap[string, textCount]
	filter *[textFilterBits / 64]uint64
}

const (
	// textFilterBits holds maxDistinctMessages texts with one in eight
	// other texts let through to the lookup.
	textFilterBits = 8192
	// textFilterFrom is how many texts a map holds before it is filtered.
	textFilterFrom = 64
)

func textBit(h uint64) (word int, bit uint64) {
	b := h >> (64 - 13) // 13 bits: textFilterBits
	return int(b / 64), 1 << (b % 64)
}

// ref returns where the count of key is, nil when it has none.
func (t *textMap) ref(h uint64, key string) *textCount {
	if t.filter != nil {
		if w, b := textBit(h); t.filter[w]&b == 0 {
			return nil
		}
	}
	return t.hashMap.ref(h, key)
}

func (t *textMap) insert(h uint64, key string, tc textCount) (textCount, bool) {
	tc, added := t.hashMap.insert(h, key, tc)
	switch {
	case t.filter != nil:
		w, b := textBit(h)
		t.filter[w] |= b
	case t.len() >= textFilterFrom:
		t.filter = new([textFilterBits / 64]uint64)
		t.each(func(h uint64, _ string, _ textCount) {
			w, b := textBit(h)
			t.filter[w] |= b
		})
	}
	return tc, added
}

func (t *textMap) clone() textMap {
	out := textMap{hashMap: t.hashMap.clone()}
	if t.filter != nil {
		f := *t.filter
		out.filter = &f
	}
	return out
}
