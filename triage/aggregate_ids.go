package triage

import (
	"cmp"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// sortCauseIDs returns the minion ids of each of causes sorted, each once.
// Finish runs at the end of every triage, on one goroutine, and sorting
// the ids is most of it: the lists are sorted at the same time, on as many
// goroutines as there are cores, the longest first.
func sortCauseIDs(causes []*causeAcc) [][]string {
	out := make([][]string, len(causes))
	order := make([]int, len(causes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(len(causes[y].ids), len(causes[x].ids)) })
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, i := range order {
		if len(causes[i].ids) < minIDsSortedApart {
			out[i] = sortedIDs(causes[i].ids)
			continue
		}
		g.Go(func() error {
			out[i] = sortedIDs(causes[i].ids)
			return nil
		})
	}
	g.Wait() // no goroutine fails
	return out
}

// minIDsSortedApart is how many ids a list holds before it is sorted on a
// goroutine of its own: fewer are sorted sooner than handed over.
const minIDsSortedApart = 512

// keyedID is an id, by its place in its list, with the 8 bytes after the
// prefix every id of the list shares, big-endian: comparing keys orders
// most ids without reading them, and ids of equal keys are compared whole.
// It holds no pointer, so that the collector neither scans nor tracks
// what is sorted.
type keyedID struct {
	key uint64
	i   int
}

// sortedIDs returns a sorted copy of ids, each once. Ids of one fleet
// share a long prefix ("web-dc01-0…") that every string comparison would
// read again.
func sortedIDs(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	// The prefix is guessed from three ids, and checked as each id is keyed:
	// each id's bytes are read once, most of them out of the caches.
	prefix := idPrefix(idPrefix(ids[0], ids[len(ids)/2]), ids[len(ids)-1])
	keyed := make([]keyedID, len(ids))
	for i := 0; i < len(ids); i++ {
		id := ids[i]
		if !strings.HasPrefix(id, prefix) {
			prefix = idPrefix(prefix, id)
			i = -1 // key them all again after the shorter prefix
			continue
		}
		var k uint64
		for j := range 8 {
			k <<= 8
			if at := len(prefix) + j; at < len(id) {
				k |= uint64(id[at])
			}
		}
		keyed[i] = keyedID{k, i}
	}
	keyed = sortKeyed(keyed, ids)
	out := make([]string, 0, len(ids))
	for i, k := range keyed {
		// One minion can fail one state twice (names:, or two compile
		// errors of an sls) and be merged into one cluster. Ids of two keys
		// differ without being read.
		if i > 0 && k.key == keyed[i-1].key && ids[k.i] == out[len(out)-1] {
			continue
		}
		out = append(out, ids[k.i])
	}
	return out
}

// minIDsRadix is how many ids a list holds before it is sorted by radix:
// fewer are sorted sooner by comparing them.
const minIDsRadix = 256

// sortKeyed sorts ids by key, then ids of one key by id. A long list is
// sorted by its keys' bytes, least significant first (skipping a byte
// every key has the same), which moves each id a few times and compares
// none; then only the runs of one key are compared.
func sortKeyed(ids []keyedID, of []string) []keyedID {
	compare := func(x, y keyedID) int {
		if x.key != y.key {
			return cmp.Compare(x.key, y.key)
		}
		return strings.Compare(of[x.i], of[y.i])
	}
	if len(ids) < minIDsRadix {
		slices.SortFunc(ids, compare)
		return ids
	}
	var counts [8][256]int
	for _, x := range ids {
		for b := range 8 {
			counts[b][byte(x.key>>(8*b))]++
		}
	}
	tmp := make([]keyedID, len(ids))
	for b := range 8 {
		c := &counts[b]
		if c[byte(ids[0].key>>(8*b))] == len(ids) {
			continue // every key has this byte
		}
		sum := 0
		for i, n := range c {
			c[i] = sum
			sum += n
		}
		for _, x := range ids {
			d := byte(x.key >> (8 * b))
			tmp[c[d]] = x
			c[d]++
		}
		ids, tmp = tmp, ids
	}
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j].key == ids[i].key {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(ids[i:j], compare)
		}
		i = j
	}
	return ids
}

func idPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}
