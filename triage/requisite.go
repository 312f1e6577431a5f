package triage

import (
	"slices"
	"strings"
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

// foldRequisites finds the requisite failures among a minion's failed
// states. folds[i] is set for each state i whose comment is a requisite
// failure; dependents[r] lists the states that failed only because state r
// did. A requisite failure whose named states are not among the failures
// has no roots: it is shown itself. Both are nil when no state is a
// requisite failure, the common case, which costs one prefix test a state.
func foldRequisites(states []FailedState) (dependents map[int][]int, folds []*requisiteFold) {
	for i, s := range states {
		if strings.HasPrefix(s.Comment, requisiteFailed) {
			if folds == nil {
				folds = make([]*requisiteFold, len(states))
			}
			folds[i] = &requisiteFold{}
		}
	}
	if folds == nil {
		return nil, nil
	}
	byName := make(map[string]int, len(states))
	for i, s := range states {
		if _, dup := byName[s.SLS+"."+s.ID]; !dup {
			byName[s.SLS+"."+s.ID] = i
		}
	}
	named := make([][]int, len(states))
	for i, f := range folds {
		if f != nil {
			named[i], f.unknown = requisiteNames(states[i].Comment, byName, i)
		}
	}

	// A requisite failure's roots are the failures of their own it reaches
	// through the names: what it failed because of in the end.
	reached := make([][]int, len(states)) // the requisite failures it reaches
	for i, f := range folds {
		if f == nil {
			continue
		}
		seen := map[int]bool{i: true}
		queue := slices.Clone(named[i])
		for len(queue) > 0 {
			k := queue[0]
			queue = queue[1:]
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
		for _, j := range append([]int{i}, reached[i]...) {
			if rep, ok := shown(j); ok && rep != i && !slices.Contains(f.roots, rep) {
				f.roots = append(f.roots, rep)
			}
		}
		slices.Sort(f.roots)
	}
	dependents = map[int][]int{}
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

// requisiteNames returns the failed states a requisite comment names (by
// index, never self) and the names it gives that are not among them. A
// state id may itself hold ", ", so up to maxIDCommas+1 pieces are joined
// back to find it.
func requisiteNames(comment string, byName map[string]int, self int) (found []int, unknown []string) {
	list := strings.TrimSpace(strings.TrimPrefix(comment, requisiteFailed))
	list, ok := strings.CutPrefix(list, ":")
	if !ok {
		return nil, nil
	}
	pieces := strings.Split(strings.TrimSpace(list), ", ")
	for i := 0; i < len(pieces); {
		match := -1
		for j := i; j < len(pieces) && j <= i+maxIDCommas; j++ {
			if k, ok := byName[strings.Join(pieces[i:j+1], ", ")]; ok {
				match = j
				if k != self {
					found = append(found, k)
				}
				break
			}
		}
		if match < 0 {
			if name := strings.TrimSpace(pieces[i]); name != "" {
				unknown = append(unknown, name)
			}
			i++
			continue
		}
		i = match + 1
	}
	return found, unknown
}
