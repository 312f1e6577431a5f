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

	const (
		fresh = iota
		resolving
		resolved
	)
	mark := make([]uint8, len(states))
	var resolve func(i int) []int
	resolve = func(i int) []int {
		switch mark[i] {
		case resolving: // a cycle: Salt refuses those, but a comment is data
			return nil
		case resolved:
			return folds[i].roots
		}
		mark[i] = resolving
		var roots []int
		for _, j := range named[i] {
			if folds[j] == nil {
				roots = append(roots, j)
			} else if r := resolve(j); len(r) > 0 {
				roots = append(roots, r...)
			} else {
				// Its own root is not here: it is shown, and what
				// failed because of it folds into it.
				roots = append(roots, j)
			}
		}
		roots = slices.DeleteFunc(roots, func(r int) bool { return r == i })
		slices.Sort(roots)
		folds[i].roots = slices.Compact(roots)
		mark[i] = resolved
		return folds[i].roots
	}
	dependents = map[int][]int{}
	for i, f := range folds {
		if f == nil {
			continue
		}
		for _, r := range resolve(i) {
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
