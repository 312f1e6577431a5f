package triage

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "blame-answers", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRollbackFromTheModule reads the blame module's own answers for a
// rollback and for diverged branches (salt/tests/scenarios.py).
func TestRollbackFromTheModule(t *testing.T) {
	const (
		johns = "2862cb5e33cfc21f1c2f9c47c64d5d682ab080ca" // served by the failed job
		carol = "0a0dddd22efe4b894828dd6ecf925a88b4cd9e6a" // the last success's, taken out
	)
	m := DecodeMinion("web-1", fixture(t, "rollback"))
	if m.Status != StatusFailing || m.Window != WindowRollback || len(m.Commits) != 1 || m.Commits[0].Change != ChangeRemoved {
		t.Fatalf("decoded %s %q, commits %+v", m.Status, m.Window, m.Commits)
	}
	m.Datacenter = "ams01"
	agg := NewAggregator("https://git.example.com/c/{commit}")
	agg.Add(m)
	counts, causes, _ := agg.Finish()
	if len(causes) != 1 {
		t.Fatalf("causes = %+v", causes)
	}
	c := causes[0]
	if c.Kind != CauseRollback || c.Key != johns || c.Evidence.RolledBackFrom != carol {
		t.Fatalf("cause = %s %q from %q", c.Kind, c.Key, c.Evidence.RolledBackFrom)
	}
	want := []RemovedCommit{{ID: carol, AuthorName: "Carol Ops", AuthorEmail: "carol@example.com",
		Datetime: "2026-11-27T11:00:00.000+00:00", Paths: []string{"/srv/salt/webserver/files/index.html.j2"}}}
	if !slicesEqualFunc(c.Evidence.RemovedCommits, want) {
		t.Errorf("removed = %+v\nwant %+v", c.Evidence.RemovedCommits, want)
	}
	if want := "rollback to 2862cb5 from 0a0dddd, taking out 1 commit touching /srv/salt/webserver/files/index.html.j2"; c.Summary != want {
		t.Errorf("summary = %q\nwant      %q", c.Summary, want)
	}
	if want := "rollback to 2862cb5 from 0a0dddd explains 1 of 1 failing minion in 1 datacenter"; Headline(counts, causes) != want {
		t.Errorf("headline = %q", Headline(counts, causes))
	}
	if c.Evidence.CommitURL != "https://git.example.com/c/"+johns {
		t.Errorf("url = %q", c.Evidence.CommitURL)
	}
	// The requisite failure of the same answer folds into its root.
	if fs := c.Evidence.FailedStates; len(fs) != 1 || fs[0].StateID != "webserver-index" {
		t.Errorf("failed states = %+v", fs)
	}

	// Diverged: John's hotfix is a commit cause, Carol's change that the
	// branch lacks a rollback cause.
	m = DecodeMinion("web-1", fixture(t, "diverged"))
	if m.Window != WindowDiverged {
		t.Fatalf("window %q", m.Window)
	}
	_, causes = causesOfDecoded(m)
	kinds := []CauseKind{}
	for _, c := range causes {
		kinds = append(kinds, c.Kind)
	}
	if !slices.Equal(kinds, []CauseKind{CauseCommit, CauseRollback}) {
		t.Fatalf("kinds = %v", kinds)
	}
	if causes[0].Evidence.AuthorName != "John Doe" || causes[1].Evidence.RemovedCommits[0].AuthorName != "Carol Ops" ||
		!slices.Equal(causes[1].Evidence.RemovedCommits[0].Paths, []string{"/srv/salt/webserver/files/index.html.j2", "/srv/salt/webserver/init.sls"}) {
		t.Errorf("commit %+v\nrollback %+v", causes[0].Evidence, causes[1].Evidence)
	}
}

func causesOfDecoded(ms ...Minion) (Counts, []Cause) {
	agg := NewAggregator("")
	for _, m := range ms {
		agg.Add(m)
	}
	counts, causes, _ := agg.Finish()
	return counts, causes
}

func slicesEqualFunc(a, b []RemovedCommit) bool {
	return slices.EqualFunc(a, b, func(x, y RemovedCommit) bool {
		return x.ID == y.ID && x.AuthorName == y.AuthorName && x.AuthorEmail == y.AuthorEmail && x.Datetime == y.Datetime && slices.Equal(x.Paths, y.Paths)
	})
}

func TestRollbackCauses(t *testing.T) {
	removed := Commit{ID: "9f8e7d6c", AuthorName: "Carol Ops", Datetime: "2025-10-21T10:00:00.000+00:00", Path: "webserver/init.sls", Change: ChangeRemoved}
	added := Commit{ID: badCommit, AuthorName: "John Doe", Path: "webserver/init.sls", Change: ChangeAdded}
	minion := func(id, window, served, version string, commits ...Commit) Minion {
		m := failingMinion(id, "ams01", FailedState{ID: "nginx", SLS: "webserver", Fun: "service.running", Comment: "Service nginx failed"})
		m.Window, m.Commits = window, commits
		m.FailedJob.Commit, m.FailedJob.CodebaseVersion = served, version
		m.LastSuccessJob.Commit, m.LastSuccessJob.CodebaseVersion = "9f8e7d6c", "v2"
		return m
	}
	tests := []struct {
		name    string
		minions []Minion
		want    []string // kind key minions, ranked
		summary string   // of the first
	}{
		{
			name:    "a rollback explains its minions, with what it took out",
			minions: []Minion{minion("a", WindowRollback, "1a2b3c4d", "v1", removed), minion("b", WindowRollback, "1a2b3c4d", "v1", removed)},
			want:    []string{"rollback 1a2b3c4d 2"},
			summary: "rollback to 1a2b3c4 from 9f8e7d6, taking out 1 commit touching webserver/init.sls",
		},
		{
			name:    "a rollback that took out nothing relevant still explains, before a release",
			minions: []Minion{minion("a", WindowRollback, "1a2b3c4d", "v1")},
			want:    []string{"rollback 1a2b3c4d 1"},
			summary: "rollback to 1a2b3c4 from 9f8e7d6, taking out no commit that touched the failed states",
		},
		{
			name:    "diverged with nothing relevant taken out is its added commits",
			minions: []Minion{minion("a", WindowDiverged, "5d6e7f8a", "v3", added)},
			want:    []string{"commit " + badCommit + " 1"},
		},
		{
			name:    "forward windows are unchanged: a release when no commit matched",
			minions: []Minion{minion("a", WindowForward, "5d6e7f8a", "v3")},
			want:    []string{"release v3 1"},
		},
		{
			name: "each served commit is its own rollback",
			minions: []Minion{minion("a", WindowRollback, "1a2b3c4d", "v1", removed), minion("b", WindowRollback, "1a2b3c4d", "v1", removed),
				minion("c", WindowRollback, "77c0d1a4", "v0", removed)},
			want: []string{"rollback 1a2b3c4d 2", "rollback 77c0d1a4 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, causes := causesOfDecoded(tc.minions...)
			var got []string
			for _, c := range causes {
				got = append(got, strings.Join([]string{string(c.Kind), c.Key, string(rune('0' + c.Minions))}, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("causes = %q, want %q", got, tc.want)
			}
			if tc.summary != "" && causes[0].Summary != tc.summary {
				t.Errorf("summary = %q\nwant      %q", causes[0].Summary, tc.summary)
			}
		})
	}
}

func TestUnknownWindowOrChangeIsABlameError(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"result": true, "status": "failing", "window": "sideways", "commits": []}}`,
			`blame.last_highstate_failure: unknown window "sideways" (want forward, rollback or diverged)`},
		{`{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"result": true, "status": "failing", "window": "rollback", "commits": [{"commit_id": "abc", "change": "gone"}]}}`,
			`blame.last_highstate_failure: commit abc: unknown change "gone" (want added or removed)`},
	} {
		m := DecodeMinion("web-1", []byte(tc.raw))
		if m.Status != StatusBlameError || m.Detail != tc.want {
			t.Errorf("%s: %q, want %q", m.Status, m.Detail, tc.want)
		}
	}
}
