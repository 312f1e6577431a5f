package triage

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// The template cache holds the templates of messages seen before. In an
// incident most minions send one of a few messages that differ only in
// their values (ids, pids, addresses, times), so the cache is keyed by the
// message with those values reduced to marks (templateKey): one failure on
// many minions is masked once.
//
// It is an open-addressed table of immutable entries, each found by a
// 64-bit hash of its key and checked against the key itself, so a hash
// collision costs a miss, never a wrong template. Readers take no lock:
// every decoding worker looks up every message, mostly the same few keys,
// and a lock would bounce between the cores on each one. Writers, one per
// miss, claim an empty slot with a compare-and-swap. The table is bounded
// in bytes, not entries (messages can be long tracebacks): once full, a new
// empty table replaces it, rather than the first messages being kept
// forever, so a new incident's messages find room.
const (
	templateSlots    = 1 << 12
	templateProbes   = 4
	templateMaxBytes = 2 << 20
	// templateEntryCost is what an entry costs besides its key and
	// template: the entry, its slot and the strings' headers.
	templateEntryCost = 64
)

type templateEntry struct {
	hash      uint64
	key, tmpl string
}

type templateTable struct {
	slots [templateSlots]atomic.Pointer[templateEntry]
	bytes atomic.Int64
}

var (
	templateSeed  = maphash.MakeSeed()
	templateCache atomic.Pointer[templateTable]
)

func init() { templateCache.Store(new(templateTable)) }

// lookup returns the template of key, if the table holds it.
func (t *templateTable) lookup(h uint64, key []byte) (string, bool) {
	for p := range uint64(templateProbes) {
		e := t.slots[(h+p)%templateSlots].Load()
		if e == nil {
			return "", false
		}
		if e.hash == h && e.key == string(key) { // no copy of the key to compare
			return e.tmpl, true
		}
	}
	return "", false
}

// store puts an entry in the first empty slot of its probe sequence, or in
// place of its first slot's entry when none is empty. It reports false
// when the table has no room left for the entry's bytes.
func (t *templateTable) store(e *templateEntry) bool {
	size := int64(len(e.key) + len(e.tmpl) + templateEntryCost)
	if t.bytes.Add(size) > templateMaxBytes {
		t.bytes.Add(-size)
		return false
	}
	for p := range uint64(templateProbes) {
		if t.slots[(e.hash+p)%templateSlots].CompareAndSwap(nil, e) {
			return true
		}
	}
	t.slots[e.hash%templateSlots].Store(e)
	return true
}

// TemplateOf returns Mask(msg, minionID), from the cache when a message
// with the same key was masked before. It is safe for concurrent use; the
// decoding workers call it, so that no template is made under the
// aggregator's lock.
func TemplateOf(msg, minionID string) string {
	if msg == "" {
		return ""
	}
	t, first, ok := lineKeys.wholeTemplate(msg, minionID)
	if ok {
		return t
	}
	t = templateOf(msg, minionID, first)
	lineKeys.keepWhole(first.e, msg, minionID, t)
	return t
}

func templateOf(msg, minionID string, first leadLookup) string {
	kb := keyBuffers.Get().(*[]byte)
	key, h, ok := templateKeyFirst((*kb)[:0], msg, minionID, first)
	if !ok {
		keyBuffers.Put(kb)
		return Mask(msg, minionID)
	}
	*kb = key
	table := templateCache.Load()
	if t, ok := table.lookup(h, key); ok {
		keyBuffers.Put(kb)
		return t
	}
	t := Mask(msg, minionID)
	if len(key)+len(t) <= templateMaxBytes/64 {
		e := &templateEntry{hash: h, key: string(key), tmpl: t}
		if !table.store(e) {
			// Full: a new table takes its place, unless another worker's
			// already did.
			fresh := new(templateTable)
			fresh.store(e)
			templateCache.CompareAndSwap(table, fresh)
		}
	}
	keyBuffers.Put(kb)
	return t
}

// keyBuffers hold the keys being built, one per decoding worker at a time.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// resetTemplateCache empties the template cache.
func resetTemplateCache() { templateCache.Store(new(templateTable)) }
