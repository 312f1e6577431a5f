package triage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Failed states as Salt 3006 returns them when a state and those that
// require it fail.
var (
	pkgRoot = FailedState{ID: "app-pkg", SLS: "app.packages", Fun: "pkg.installed",
		Comment: "The following packages failed to install/update: app=2.3.1"}
	confRoot = FailedState{ID: "/etc/app/app.conf", SLS: "app.config", Fun: "file.managed",
		Comment: "Source file salt://app/files/app.conf not found in saltenv 'base'"}
)

func requires(id, sls, fun string, roots ...FailedState) FailedState {
	names := make([]string, len(roots))
	for i, r := range roots {
		names[i] = r.SLS + "." + r.ID
	}
	return FailedState{ID: id, SLS: sls, Fun: fun, Comment: requisiteFailed + ": " + strings.Join(names, ", ")}
}

func minionsWith(prefix string, n int, states ...FailedState) []Minion {
	out := make([]Minion, n)
	for i := range n {
		out[i] = failingMinion(fmt.Sprintf("%s-%03d", prefix, i), "ams01", states...)
	}
	return out
}

type causeWant struct {
	fun, id    string
	minions    int
	dependents int
	requisites []string
	summary    string // a part of it
}

func TestRequisitesFoldIntoTheirRoot(t *testing.T) {
	service := requires("app-service", "app.service", "service.running", pkgRoot)
	tests := []struct {
		name    string
		minions []Minion
		want    []causeWant // every failed-state cause, ranked
	}{
		{
			name:    "a dependent counts its minion once, under its root",
			minions: minionsWith("app", 20, pkgRoot, service),
			want: []causeWant{{fun: "pkg.installed", id: "app-pkg", minions: 20, dependents: 1,
				summary: "failed state pkg.installed app-pkg (sls app.packages): The following packages failed to install/update: app=2.3.1; also broke 1 dependent state"}},
		},
		{
			// On a real master Salt names, per minion, only the requisites
			// that failed there; the dependent spans both roots' minions.
			name: "one dependent of two roots does not outrank them",
			minions: slices.Concat(
				minionsWith("a", 60, pkgRoot, requires("app-reload", "app", "cmd.run", pkgRoot)),
				minionsWith("b", 50, confRoot, requires("app-reload", "app", "cmd.run", confRoot)),
				minionsWith("c", 10, pkgRoot, confRoot, requires("app-reload", "app", "cmd.run", pkgRoot, confRoot)),
			),
			want: []causeWant{
				{fun: "pkg.installed", id: "app-pkg", minions: 70, dependents: 1},
				{fun: "file.managed", id: "/etc/app/app.conf", minions: 60, dependents: 1},
			},
		},
		{
			name: "a chain folds into the state at its end",
			minions: minionsWith("app", 8, pkgRoot, service,
				requires("app-ready", "app.service", "http.wait_for_successful_query", FailedState{ID: "app-service", SLS: "app.service"})),
			want: []causeWant{{fun: "pkg.installed", id: "app-pkg", minions: 8, dependents: 2, summary: "also broke 2 dependent states"}},
		},
		{
			name:    "a requisite whose root the minion did not send is shown, marked",
			minions: minionsWith("app", 5, service),
			want: []causeWant{{fun: "service.running", id: "app-service", minions: 5, requisites: []string{"app.packages.app-pkg"},
				summary: "failed state service.running app-service (sls app.service): requisite failure; app.packages.app-pkg failed but is not among the failed states the minions sent"}},
		},
		{
			name: "what depends on a marked requisite folds into it",
			minions: minionsWith("app", 5, service,
				requires("app-ready", "app.service", "cmd.run", FailedState{ID: "app-service", SLS: "app.service"})),
			want: []causeWant{{fun: "service.running", id: "app-service", minions: 5, dependents: 1, requisites: []string{"app.packages.app-pkg"}}},
		},
		{
			name: "state ids holding ', ' and '|' are found",
			minions: minionsWith("app", 3,
				FailedState{ID: "grep a, b | sort", SLS: "app", Fun: "cmd.run", Comment: "Command exited 1"},
				requires("after", "app", "cmd.run", pkgRoot, FailedState{ID: "grep a, b | sort", SLS: "app"})),
			want: []causeWant{{fun: "cmd.run", id: "grep a, b | sort", minions: 3, dependents: 1}},
		},
		{
			name: "a requisite cycle still shows one state",
			minions: minionsWith("app", 2,
				requires("x", "app", "cmd.run", FailedState{ID: "y", SLS: "app"}),
				requires("y", "app", "cmd.run", FailedState{ID: "x", SLS: "app"})),
			want: []causeWant{{fun: "cmd.run", id: "x", minions: 2, dependents: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Cause
			for _, c := range causesOf(t, tc.minions) {
				if c.Kind == CauseFailedState {
					got = append(got, c)
				}
			}
			if len(got) != len(tc.want) {
				for _, c := range got {
					t.Logf("cause %q: %d minions: %s", c.Key, c.Minions, c.Summary)
				}
				t.Fatalf("%d failed-state causes, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				c, ev := got[i], got[i].Evidence
				if ev.Fun != w.fun || ev.StateID != w.id || c.Minions != w.minions || ev.Dependents != w.dependents || !slices.Equal(ev.Requisites, w.requisites) {
					t.Errorf("cause %d = %s %q: %d minions, %d dependents, requisites %v; want %s %q: %d, %d, %v",
						i, ev.Fun, ev.StateID, c.Minions, ev.Dependents, ev.Requisites, w.fun, w.id, w.minions, w.dependents, w.requisites)
				}
				if !strings.Contains(c.Summary, w.summary) {
					t.Errorf("summary %q lacks %q", c.Summary, w.summary)
				}
			}
		})
	}
}

// TestRequisitesLeftOutOfCommitEvidence: a commit's failed states are its
// roots, not what failed because of them.
func TestRequisitesLeftOutOfCommitEvidence(t *testing.T) {
	minions := minionsWith("app", 4, pkgRoot, requires("app-service", "app.service", "service.running", pkgRoot))
	for i := range minions {
		minions[i].Commits = []Commit{{ID: badCommit, AuthorName: "John Doe", Path: "app/packages.sls"}}
	}
	causes := causesOf(t, minions)
	if len(causes) != 1 || causes[0].Kind != CauseCommit {
		t.Fatalf("causes = %+v", causes)
	}
	if fs := causes[0].Evidence.FailedStates; len(fs) != 1 || fs[0].StateID != "app-pkg" {
		t.Errorf("failed states = %+v", fs)
	}
}

func TestRequisiteNames(t *testing.T) {
	states := []FailedState{{SLS: "web", ID: "nginx"}, {SLS: "web", ID: "a, b"}, {SLS: "web", ID: "x"}, {SLS: "base", ID: "pkgs"},
		{SLS: "web.x", ID: "y"}, {SLS: "web", ID: "x.y"}} // one name, the first found
	// Many states are mapped by name, few looked through: both find the same.
	many := slices.Clone(states)
	for i := len(many); i <= stateNamesScanned; i++ {
		many = append(many, FailedState{SLS: "pad", ID: fmt.Sprint(i)})
	}
	tests := []struct {
		comment string
		self    int
		found   []int
		unknown []string
	}{
		{"One or more requisite failed: web.nginx", 9, []int{0}, nil},
		{"One or more requisite failed: web.nginx, base.pkgs", 9, []int{0, 3}, nil},
		{"One or more requisite failed: web.a, b, web.x", 9, []int{1, 2}, nil},
		{"One or more requisite failed: web.gone, web.nginx", 9, []int{0}, []string{"web.gone"}},
		{"One or more requisite failed: web.x, web.nginx", 2, []int{0}, nil}, // itself
		{"One or more requisite failed", 9, nil, nil},                        // Salt before 2016.3 named none
		{"One or more requisite failed: web.x.y, web.a, b, c", 9, []int{4, 1}, []string{"c"}},
		{"One or more requisite failed:  web.nginx, , web.x ", 9, []int{0, 2}, nil},
		{"One or more requisite failed: web.a, b, web.a, b", 9, []int{1, 1}, nil},
	}
	for _, tc := range tests {
		for _, names := range []stateNames{newStateNames(states), newStateNames(many)} {
			found, unknown := requisiteNames(tc.comment, names, tc.self, nil, nil)
			if !slices.Equal(found, tc.found) || !slices.Equal(unknown, tc.unknown) {
				t.Errorf("%q (%d states): found %v unknown %v, want %v %v", tc.comment, len(names.states), found, unknown, tc.found, tc.unknown)
			}
		}
	}
}

// FuzzFoldRequisites: whatever the comments name, folding ends, no state is
// its own root, and every dependent is a requisite failure whose roots are
// shown (not folded away themselves).
func FuzzFoldRequisites(f *testing.F) {
	f.Add("a", "s", "One or more requisite failed: s.b", "b", "One or more requisite failed: s.a, s.c", "c", "x")
	f.Add("a, b", "s", "One or more requisite failed: s.a, b, s.c", "c", "One or more requisite failed: s.c", "d", "")
	f.Add("a", "s", "One or more requisite failed: s.b, s.c", "b", "One or more requisite failed: s.c, s.a", "c", "One or more requisite failed: s.a")
	// A scratch used before, for a minion with other states, folds as a
	// new one does.
	used := new(foldScratch)
	f.Fuzz(func(t *testing.T, id1, sls, c1, id2, c2, id3, c3 string) {
		states := []FailedState{{ID: id1, SLS: sls, Comment: c1}, {ID: id2, SLS: sls, Comment: c2}, {ID: id3, SLS: sls, Comment: c3}}
		dependents, folds := foldRequisites(states, new(foldScratch))
		usedDependents, usedFolds := foldRequisites(states, used)
		if !slices.EqualFunc(dependents, usedDependents, slices.Equal) || !slices.EqualFunc(folds, usedFolds, func(a, b *requisiteFold) bool {
			return (a == nil) == (b == nil) && (a == nil || slices.Equal(a.roots, b.roots) && slices.Equal(a.unknown, b.unknown))
		}) {
			t.Errorf("a used scratch folds %v %v, a new one %v %v", usedDependents, usedFolds, dependents, folds)
		}
		foldRequisites(append(slices.Clone(states), FailedState{ID: "x", SLS: sls, Comment: requisiteFailed + ": " + sls + "." + id1}), used)
		for r, deps := range dependents {
			if len(deps) == 0 {
				continue
			}
			if folds != nil && folds[r] != nil && len(folds[r].roots) > 0 {
				t.Errorf("state %d has dependents but is folded itself", r)
			}
			for _, d := range deps {
				if d == r || folds == nil || folds[d] == nil || !slices.Contains(folds[d].roots, r) {
					t.Errorf("dependent %d of %d is not folded into it", d, r)
				}
			}
		}
		agg := NewAggregator("")
		agg.Add(failingMinion("m", "dc", states...))
		agg.Finish()
	})
}
