package triage

import (
	"slices"
	"strings"
	"sync"
)

// requisiteFailed starts the comment Salt gives a state it did not run
// because a state it requires, watches, or has an onchanges or prereq on
// failed. Since Salt 2016.3 the comment names those states, "<sls>.<id>"
// joined by ", ": "One or more requisite failed: webserver.webserver-index".
// (The onchanges, onfail and prereq outcomes that are not failures, such as
// "State was not run because none of the onchanges reqs changed", have
// result True and never reach the failed states.)
const requisiteFailed = "One or more requisite failed"

// maxIDCommas bounds how many ", " a state id may hold and still be found
// in a requisite comment, which joins names with the same ", ".
const maxIDCommas = 3

// requisiteFold is what a requisite failure of a minion folds into.
type requisiteFold struct {
	// roots are the indices of the states it failed because of: the named
	// states, or what those failed because of in turn.
	roots []int
	// unknown are the names it gives that are not among the minion's
	// failed states.
	unknown []string
}

// foldScratch is what folding a minion's requisites works in, kept from
// one minion to the next (foldScratches) so that folding allocates nothing
// but the names no state has.
type foldScratch struct {
	folds                      []*requisiteFold
	all                        []requisiteFold
	named, reached, dependents [][]int
	seen                       []bool
	queue                      []int
	// refs hold the dependents of the minion's failures (stateFailure).
	refs []stateRef
}

var foldScratches = sync.Pool{New: func() any { return new(foldScratch) }}

// reset sizes the scratch for n states, keeping what it allocated before.
func (sc *foldScratch) reset(n int) {
	grow := func(s [][]int) [][]int {
		s = slices.Grow(s[:0], n)[:n]
		for i := range s {
			s[i] = s[i][:0]
		}
		return s
	}
	sc.folds = slices.Grow(sc.folds[:0], n)[:n]
	clear(sc.folds)
	sc.all = slices.Grow(sc.all[:0], n)[:n]
	for i := range sc.all {
		sc.all[i] = requisiteFold{roots: sc.all[i].roots[:0], unknown: sc.all[i].unknown[:0]}
	}
	sc.named, sc.reached, sc.dependents = grow(sc.named), grow(sc.reached), grow(sc.dependents)
	sc.seen = slices.Grow(sc.seen[:0], n)[:n]
	sc.refs = sc.refs[:0]
}

// isRequisiteFailure reports whether s failed because a state it
// requires did.
func isRequisiteFailure(s FailedState) bool { return strings.HasPrefix(s.Comment, requisiteFailed) }

// foldRequisites finds the requisite failures among a minion's failed
// states, in sc. folds[i] is set for each state i whose comment is a
// requisite failure; dependents[r] lists the states that failed only
// because state r did. A requisite failure whose named states are not
// among the failures has no roots: it is shown itself. Both are nil when no
// state is a requisite failure; else both are sc's, good until sc is used
// again.
func foldRequisites(states []FailedState, sc *foldScratch) (dependents [][]int, folds []*requisiteFold) {
	for i, s := range states {
		if isRequisiteFailure(s) {
			if folds == nil {
				sc.reset(len(states))
				folds = sc.folds
			}
			folds[i] = &sc.all[i]
		}
	}
	if folds == nil {
		return nil, nil
	}
	names := newStateNames(states)
	named := sc.named
	for i, f := range folds {
		if f != nil {
			named[i], f.unknown = requisiteNames(states[i].Comment, names, i, named[i], f.unknown)
		}
	}

	// A requisite failure's roots are the failures of their own it reaches
	// through the names: what it failed because of in the end.
	reached := sc.reached // the requisite failures it reaches
	seen := sc.seen
	queue := sc.queue
	for i, f := range folds {
		if f == nil {
			continue
		}
		clear(seen)
		seen[i] = true
		queue = append(queue[:0], named[i]...)
		for q := 0; q < len(queue); q++ {
			k := queue[q]
			if seen[k] {
				continue
			}
			seen[k] = true
			if folds[k] == nil {
				f.roots = append(f.roots, k)
				continue
			}
			reached[i] = append(reached[i], k)
			queue = append(queue, named[k]...)
		}
		slices.Sort(f.roots)
	}
	sc.queue = queue
	// Those that reach no failure of its own end in requisite failures
	// whose roots the minion did not send: in each group that reach one
	// another and nothing further, the first is shown and the others, and
	// whatever leads to them, fold into it.
	shown := func(j int) (int, bool) {
		rep := j
		for _, k := range reached[j] {
			if !slices.Contains(reached[k], j) {
				return 0, false // j leads further
			}
			rep = min(rep, k)
		}
		return rep, true
	}
	for i, f := range folds {
		if f == nil || len(f.roots) > 0 {
			continue
		}
		for n, j := -1, i; n < len(reached[i]); n++ {
			if n >= 0 {
				j = reached[i][n]
			}
			if rep, ok := shown(j); ok && rep != i && !slices.Contains(f.roots, rep) {
				f.roots = append(f.roots, rep)
			}
		}
		slices.Sort(f.roots)
	}
	dependents = sc.dependents
	for i, f := range folds {
		if f == nil {
			continue
		}
		for _, r := range f.roots {
			dependents[r] = append(dependents[r], i)
		}
	}
	return dependents, folds
}

// stateNames finds a minion's failed state by the name a requisite comment
// gives it, "<sls>.<id>": the first state of that name. A minion fails few
// states: they are looked through without building the names, unless
// there are many.
type stateNames struct {
	states []FailedState
	byName map[string]int
}

// stateNamesScanned is how many states are looked through rather than
// mapped by name.
const stateNamesScanned = 16

func newStateNames(states []FailedState) stateNames {
	n := stateNames{states: states}
	if len(states) > stateNamesScanned {
		n.byName = make(map[string]int, len(states))
		for i, s := range states {
			if _, dup := n.byName[s.SLS+"."+s.ID]; !dup {
				n.byName[s.SLS+"."+s.ID] = i
			}
		}
	}
	return n
}

func (n stateNames) index(name string) (int, bool) {
	if n.byName != nil {
		i, ok := n.byName[name]
		return i, ok
	}
	for i, s := range n.states {
		if len(name) == len(s.SLS)+1+len(s.ID) && name[len(s.SLS)] == '.' &&
			strings.HasPrefix(name, s.SLS) && strings.HasSuffix(name, s.ID) {
			return i, true
		}
	}
	return 0, false
}

// requisiteNames appends to found the failed states a requisite comment
// names (by index, never self), and to unknown the names it gives that are
// not among them. A
// state id may itself hold ", ", so up to maxIDCommas+1 pieces are joined
// back to find it: pieces i to j joined are the text from the start of i to
// the end of j.
func requisiteNames(comment string, names stateNames, self int, found []int, unknown []string) ([]int, []string) {
	list := strings.TrimSpace(strings.TrimPrefix(comment, requisiteFailed))
	list, ok := strings.CutPrefix(list, ":")
	if !ok {
		return found, unknown
	}
	list = strings.TrimSpace(list)
	// The pieces split at ", ": piece k is list[start(k):ends[k]].
	var buf [8]int
	ends := buf[:0]
	for at := 0; ; {
		k := strings.Index(list[at:], ", ")
		if k < 0 {
			ends = append(ends, len(list))
			break
		}
		ends = append(ends, at+k)
		at += k + 2
	}
	start := func(k int) int {
		if k == 0 {
			return 0
		}
		return ends[k-1] + 2
	}
	for i := 0; i < len(ends); {
		match := -1
		for j := i; j < len(ends) && j <= i+maxIDCommas; j++ {
			if k, ok := names.index(list[start(i):ends[j]]); ok {
				match = j
				if k != self {
					found = append(found, k)
				}
				break
			}
		}
		if match < 0 {
			if name := strings.TrimSpace(list[start(i):ends[i]]); name != "" {
				unknown = append(unknown, name)
			}
			i++
			continue
		}
		i = match + 1
	}
	return found, unknown
}
