package triage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The aggregator's sets and maps are keyed by hashes the caller works out:
// here the hashes are chosen to collide, all or in their upper half (which
// places an id), to show that keys of one hash stay apart.
func TestIDSetCollisions(t *testing.T) {
	hashes := map[string]func(i int) uint64{
		"real":             func(i int) uint64 { return hashString(fmt.Sprint(i)) },
		"one hash":         func(int) uint64 { return 42 },
		"one upper half":   func(i int) uint64 { return 7<<32 | uint64(i) },
		"one place":        func(i int) uint64 { return uint64(i)<<50 | 3<<32 },
		"zero":             func(int) uint64 { return 0 },
		"few upper halves": func(i int) uint64 { return uint64(i%3) << 32 },
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			var s idSet
			const n = 2*idChunk + 300
			for i := range n {
				if !s.add(hash(i), fmt.Sprint("id", i)) {
					t.Fatalf("id%d not new", i)
				}
			}
			for i := range n {
				if s.add(hash(i), fmt.Sprint("id", i)) {
					t.Fatalf("id%d added twice", i)
				}
				if !s.has(hash(i), fmt.Sprint("id", i)) {
					t.Fatalf("id%d not found", i)
				}
				if s.has(hash(i), fmt.Sprint("other", i)) {
					t.Fatalf("other%d found", i)
				}
			}
			var all []string
			s.all(func(id string) { all = append(all, id) })
			if s.len() != n || len(all) != n || !slices.Equal(all[:3], []string{"id0", "id1", "id2"}) {
				t.Errorf("%d ids, %d listed, first %q", s.len(), len(all), all[:3])
			}
		})
	}
	var empty idSet
	if empty.has(0, "") || empty.len() != 0 {
		t.Error("the empty set has an id")
	}
}

func TestHashMapCollisions(t *testing.T) {
	var m hashMap[string, int]
	const n = 50
	for i := range n {
		if _, added := m.insert(uint64(i%2), fmt.Sprint("k", i), i); !added {
			t.Fatalf("k%d not new", i)
		}
	}
	for i := range n {
		if v, ok := m.get(uint64(i%2), fmt.Sprint("k", i)); !ok || v != i {
			t.Fatalf("k%d = %d %v", i, v, ok)
		}
		if v, added := m.insert(uint64(i%2), fmt.Sprint("k", i), -1); added || v != i {
			t.Fatalf("k%d inserted again: %d %v", i, v, added)
		}
		if _, ok := m.get(uint64(i%2), fmt.Sprint("x", i)); ok {
			t.Fatalf("x%d found", i)
		}
	}
	c := m.clone()
	*c.ref(1, "k1") = 100 // the clone's values are its own
	if v, _ := m.get(1, "k1"); v != 1 {
		t.Errorf("k1 = %d after its clone changed", v)
	}
	if m.ref(0, "k1") != nil {
		t.Error("k1 found under another hash")
	}
	var listed []int
	m.each(func(h uint64, k string, v int) {
		if h != uint64(v%2) || k != fmt.Sprint("k", v) {
			t.Errorf("entry %d %q %d", h, k, v)
		}
		listed = append(listed, v)
	})
	if m.len() != n || c.len() != n || len(listed) != n || !slices.IsSorted(listed) {
		t.Errorf("len %d, clone %d, listed %v; want %d in the order added", m.len(), c.len(), listed, n)
	}
}

func TestDCSet(t *testing.T) {
	order := make([]string, 130)
	for i := range order {
		order[i] = fmt.Sprintf("dc%03d", 129-i)
	}
	var a, b dcSet
	if a.names(order) != nil {
		t.Error("an empty set names datacenters")
	}
	a.add(0)
	a.add(64)
	b.add(129)
	b.add(0)
	a.merge(b)
	if got, want := a.names(order), []string{"dc000", "dc065", "dc129"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

// TestTextMapFilter: a filtered map finds every text it holds, whatever
// their hashes, and its clone does too.
func TestTextMapFilter(t *testing.T) {
	for _, spread := range []uint64{1, 1 << 51, 0x9e3779b97f4a7c15} {
		var m textMap
		const n = 3 * textFilterFrom
		for i := range uint64(n) {
			m.insert(i*spread, fmt.Sprint("t", i), textCount{n: int(i)})
		}
		if m.filter == nil {
			t.Fatalf("spread %x: %d texts unfiltered", spread, m.len())
		}
		c := m.clone()
		for _, m := range []*textMap{&m, &c} {
			for i := range uint64(n) {
				if tc := m.ref(i*spread, fmt.Sprint("t", i)); tc == nil || tc.n != int(i) {
					t.Fatalf("spread %x: t%d not found", spread, i)
				}
				if tc := m.ref(i*spread, fmt.Sprint("u", i)); tc != nil {
					t.Fatalf("spread %x: u%d found", spread, i)
				}
			}
		}
	}
}

// TestTemplateHash: a template remembered by where it is hashes as its
// text does, as does another copy of the text.
func TestTemplateHash(t *testing.T) {
	for _, n := range []int{0, 1, templateHashMin - 1, templateHashMin, templateHashMax, templateHashMax + 1} {
		a := strings.Repeat("salt://web/files/nginx.conf <n> ", n/32+1)[:n]
		b := strings.Clone(a)
		for range 3 {
			if ha, hb, want := hashTemplate(a), hashTemplate(b), hashString(a); ha != want || hb != want {
				t.Fatalf("len %d: %x and %x, want %x", n, ha, hb, want)
			}
		}
	}
	// Many texts, more than are remembered: each is hashed as itself.
	buf := make([]byte, 200)
	for i := range 50 {
		for k := range buf {
			buf[k] = byte('a' + (i+k)%26)
		}
		s := string(buf)
		if hashTemplate(s) != hashString(s) {
			t.Fatalf("text %d hashed as another", i)
		}
	}
}
