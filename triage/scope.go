// Package triage is Sift's domain: scopes, the inventory of datacenters and
// groups, the Blamer that asks minions for their last failure, the parallel
// fan-out over datacenters, and the aggregation of minion answers into ranked
// causes.
package triage

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// ScopeKind is what an SRE asked to triage.
type ScopeKind string

// The three scopes a triage can cover.
const (
	ScopeMinion     ScopeKind = "minion"
	ScopeDatacenter ScopeKind = "datacenter"
	ScopeGroup      ScopeKind = "group"
)

// Scope names what to triage: one minion, one datacenter or a group of them.
type Scope struct {
	Kind ScopeKind `json:"kind"`
	Name string    `json:"name"`
}

func (s Scope) String() string { return string(s.Kind) + " " + s.Name }

// maxMinionIDLen is Salt's own limit on a minion id (it is a file name on the master).
const maxMinionIDLen = 255

// minionIDPattern is the set of characters Sift accepts in a minion id: what
// Salt's key names use in practice, and nothing that a target expression
// could read as a glob, a list separator or a compound operator.
var minionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// MinionIDRule describes, for error messages, the characters a minion id may use.
const MinionIDRule = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 255 characters"

// ValidateMinionID reports whether id can be sent to Salt as one entry of a
// list target. Globs, commas and spaces are refused here, before any call.
func ValidateMinionID(id string) error {
	if id == "" {
		return fmt.Errorf("minion id: empty (use %s)", MinionIDRule)
	}
	if len(id) > maxMinionIDLen || !minionIDPattern.MatchString(id) {
		return fmt.Errorf("minion id %q: not a minion id (use %s)", truncate(id, 80), MinionIDRule)
	}
	return nil
}

// Datacenter is one datacenter of the inventory and the master that serves it.
type Datacenter struct {
	Name   string
	Master string
	// Target is the compound expression that selects the datacenter's minions,
	// from configuration only, never from what a person typed.
	Target string
	// Minions, when set, are the minions expected to answer even when the
	// master does not list them.
	Minions []string
}

// Inventory is what Sift knows of the fleet: datacenters and groups of them.
type Inventory struct {
	Datacenters []Datacenter
	Groups      map[string][]string
}

// Datacenter returns the datacenter called name.
func (inv Inventory) Datacenter(name string) (Datacenter, bool) {
	for _, dc := range inv.Datacenters {
		if dc.Name == name {
			return dc, true
		}
	}
	return Datacenter{}, false
}

// DatacenterOf returns the datacenter whose inventory lists minion id.
func (inv Inventory) DatacenterOf(id string) (Datacenter, bool) {
	for _, dc := range inv.Datacenters {
		if slices.Contains(dc.Minions, id) {
			return dc, true
		}
	}
	return Datacenter{}, false
}

// UnknownScopeError is a scope name that the inventory does not hold; it
// carries the closest known names so that the person can correct a typo.
type UnknownScopeError struct {
	Kind    ScopeKind
	Name    string
	Closest []string
	Known   []string
}

func (e *UnknownScopeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown %s %q", e.Kind, truncate(e.Name, 80))
	switch {
	case len(e.Closest) > 0:
		fmt.Fprintf(&b, " (did you mean %s?)", strings.Join(e.Closest, ", "))
	case len(e.Known) > 0:
		fmt.Fprintf(&b, " (known: %s)", strings.Join(firstN(e.Known, 20), ", "))
	default:
		fmt.Fprintf(&b, " (no %ss are configured)", e.Kind)
	}
	return b.String()
}

// Resolve checks a scope against the inventory and returns the datacenters it
// covers. A minion scope returns no datacenter: the minion is asked on every
// master.
func (inv Inventory) Resolve(s Scope) ([]Datacenter, error) {
	switch s.Kind {
	case ScopeMinion:
		if err := ValidateMinionID(s.Name); err != nil {
			return nil, err
		}
		return nil, nil
	case ScopeDatacenter:
		if dc, ok := inv.Datacenter(s.Name); ok {
			return []Datacenter{dc}, nil
		}
		names := make([]string, 0, len(inv.Datacenters))
		for _, dc := range inv.Datacenters {
			names = append(names, dc.Name)
		}
		return nil, unknown(s, names)
	case ScopeGroup:
		members, ok := inv.Groups[s.Name]
		if !ok {
			names := make([]string, 0, len(inv.Groups))
			for g := range inv.Groups {
				names = append(names, g)
			}
			return nil, unknown(s, names)
		}
		out := make([]Datacenter, 0, len(members))
		for _, name := range members {
			dc, ok := inv.Datacenter(name)
			if !ok {
				return nil, fmt.Errorf("group %q: datacenter %q is not in the inventory", s.Name, name)
			}
			out = append(out, dc)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("scope kind %q: unknown (use minion, datacenter or group)", s.Kind)
	}
}

func unknown(s Scope, known []string) error {
	slices.Sort(known)
	return &UnknownScopeError{Kind: s.Kind, Name: s.Name, Closest: closest(s.Name, known, 3), Known: known}
}

// closest returns up to n names of known that are within a small edit
// distance of name, nearest first.
func closest(name string, known []string, n int) []string {
	type scored struct {
		name string
		d    int
	}
	var cands []scored
	lname := strings.ToLower(name)
	for _, k := range known {
		lk := strings.ToLower(k)
		d := levenshtein(lname, lk)
		limit := max(2, len(lk)/3)
		if d <= limit || (len(lname) >= 3 && strings.Contains(lk, lname)) {
			cands = append(cands, scored{k, d})
		}
	}
	slices.SortStableFunc(cands, func(a, b scored) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, 0, min(n, len(cands)))
	for _, c := range cands[:min(n, len(cands))] {
		out = append(out, c.name)
	}
	return out
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// truncate keeps the first n runes of s. It runs under the aggregator's
// lock on long messages: no conversion of the whole text to runes.
func truncate(s string, n int) string {
	if len(s) <= n { // no more runes than bytes
		return s
	}
	runes := 0
	for i := range s {
		if runes == n {
			if head := s[:i]; !utf8.ValidString(head) {
				return string([]rune(head)) + "…" // bad bytes shown as U+FFFD
			}
			return s[:i] + "…"
		}
		runes++
	}
	return s
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
