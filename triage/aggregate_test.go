package triage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

type minionSpec struct {
	dc  string
	n   int
	raw func(id string) json.RawMessage
}

func aggregate(t *testing.T, specs ...minionSpec) (Counts, []Cause) {
	t.Helper()
	agg := NewAggregator("https://git.example.com/salt/-/commit/{commit}")
	for k, s := range specs {
		for i := range s.n {
			id := fmt.Sprintf("web%d-%s-%03d", k, s.dc, i)
			if s.raw == nil {
				agg.Expect(s.dc, []string{id})
				continue
			}
			m := DecodeMinion(id, s.raw(id))
			m.Datacenter = s.dc
			agg.Add(m)
		}
	}
	counts, causes, _ := agg.Finish()
	return counts, causes
}

func constant(raw json.RawMessage) func(string) json.RawMessage {
	return func(string) json.RawMessage { return raw }
}

func TestEachCauseKindWins(t *testing.T) {
	tests := []struct {
		name         string
		specs        []minionSpec
		wantKind     CauseKind
		wantKey      string
		wantMinions  int
		wantHeadline string
	}{
		{
			name: "commit",
			specs: []minionSpec{
				{"ams01", 200, commitAnswer}, {"fra02", 87, commitAnswer},
				{"fra02", 13, stateAnswer}, {"ams01", 50, constant(healthyAnswer())},
			},
			wantKind: CauseCommit, wantKey: badCommit, wantMinions: 287,
			wantHeadline: "commit e4a91b2 by John Doe explains 287 of 300 failing minions in 2 datacenters",
		},
		{
			name:     "release",
			specs:    []minionSpec{{"ams01", 30, constant(releaseAnswer())}, {"ams01", 5, commitAnswer}},
			wantKind: CauseRelease, wantKey: "2025.10.22-3", wantMinions: 30,
			wantHeadline: "release 2025.10.22-3 explains 30 of 35 failing minions in 1 datacenter",
		},
		{
			name:     "external service",
			specs:    []minionSpec{{"lon03", 40, constant(vaultAnswer())}, {"lon03", 3, stateAnswer}},
			wantKind: CauseExternalService, wantKey: "https://vault.example.com:8200", wantMinions: 40,
			wantHeadline: "external service https://vault.example.com:8200 explains 40 of 43 failing minions in 1 datacenter",
		},
		{
			name:     "failed state, normalised across minions",
			specs:    []minionSpec{{"ams01", 25, stateAnswer}, {"fra02", 25, stateAnswer}, {"ams01", 10, constant(healthyAnswer())}},
			wantKind: CauseFailedState, wantMinions: 50,
			wantHeadline: "failed state service.running ntp-service explains 50 of 50 failing minions in 2 datacenters",
		},
		{
			name:     "unreachable",
			specs:    []minionSpec{{"ams01", 30, nil}, {"ams01", 5, constant(json.RawMessage(`false`))}, {"ams01", 10, stateAnswer}},
			wantKind: CauseUnreachable, wantKey: "unreachable", wantMinions: 35,
			wantHeadline: "35 of 45 minions unreachable in 1 datacenter; 10 failing",
		},
		{
			name:     "module missing",
			specs:    []minionSpec{{"ams01", 20, constant(moduleMissingAnswer())}, {"ams01", 5, constant(healthyAnswer())}},
			wantKind: CauseModuleMissing, wantKey: "module_missing", wantMinions: 20,
			wantHeadline: "blame module missing on 20 of 25 minions in 1 datacenter; no failing highstates among the others",
		},
		{
			name:     "blame error",
			specs:    []minionSpec{{"ams01", 8, constant(json.RawMessage(`{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"result": false, "message": "cache unreadable"}}`))}},
			wantKind: CauseBlameError, wantKey: "blame_error", wantMinions: 8,
			wantHeadline: "blame module errors on 8 of 8 minions in 1 datacenter; no failing highstates among the others",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts, causes := aggregate(t, tc.specs...)
			if len(causes) == 0 {
				t.Fatal("no causes")
			}
			top := causes[0]
			if top.Kind != tc.wantKind || (tc.wantKey != "" && top.Key != tc.wantKey) || top.Minions != tc.wantMinions {
				t.Fatalf("top cause = %s %q (%d minions), want %s %q (%d)", top.Kind, top.Key, top.Minions, tc.wantKind, tc.wantKey, tc.wantMinions)
			}
			if len(top.MinionIDs) != top.Minions || !slices.IsSorted(top.MinionIDs) {
				t.Errorf("minion ids: %d, sorted %v", len(top.MinionIDs), slices.IsSorted(top.MinionIDs))
			}
			if got := Headline(counts, causes); got != tc.wantHeadline {
				t.Errorf("headline = %q\nwant       %q", got, tc.wantHeadline)
			}
			for i := 1; i < len(causes); i++ {
				if causes[i].Minions > causes[i-1].Minions {
					t.Errorf("causes not ranked: %d after %d", causes[i].Minions, causes[i-1].Minions)
				}
			}
		})
	}
}

func TestCommitEvidence(t *testing.T) {
	_, causes := aggregate(t, minionSpec{"ams01", 3, commitAnswer})
	c := causes[0]
	ev := c.Evidence
	if ev.AuthorName != "John Doe" || ev.AuthorEmail != "jdoe@example.com" || ev.CommitID != badCommit {
		t.Errorf("evidence = %+v", ev)
	}
	if want := []string{"/srv/salt/webserver/files/nginx.conf", "/srv/salt/webserver/init.sls"}; !slices.Equal(ev.Paths, want) {
		t.Errorf("paths = %v, want %v", ev.Paths, want)
	}
	if ev.CommitURL != "https://git.example.com/salt/-/commit/"+badCommit {
		t.Errorf("url = %q", ev.CommitURL)
	}
	if len(ev.FailedStates) != 1 || ev.FailedStates[0].Fun != "file.managed" || ev.FailedStates[0].StateID != "/etc/nginx/nginx.conf" {
		t.Errorf("failed states = %v", ev.FailedStates)
	}
	if ev.LastSuccess != "2025-10-22T09:45:12+00:00" || ev.FirstFailure != "2025-10-22T10:00:16+00:00" {
		t.Errorf("window = %s .. %s", ev.LastSuccess, ev.FirstFailure)
	}
	if c.Minions != 3 {
		t.Errorf("a commit with two paths counted a minion twice: %d", c.Minions)
	}
}

func TestReleaseEvidence(t *testing.T) {
	_, causes := aggregate(t, minionSpec{"ams01", 2, constant(releaseAnswer())})
	ev := causes[0].Evidence
	if ev.Version != "2025.10.22-3" || ev.PreviousVersion != "2025.10.22-1" {
		t.Errorf("evidence = %+v", ev)
	}
	if want := "release 2025.10.22-3 (from 2025.10.22-1) with no commit touching the failed states"; causes[0].Summary != want {
		t.Errorf("summary = %q", causes[0].Summary)
	}
}

func TestServiceFromFailedStateComment(t *testing.T) {
	raw := answerSpec{status: "failing", states: []map[string]any{{
		"__id__": "repo", "__sls__": "pkgrepo", "fun": "pkgrepo.managed", "result": false,
		"comment": "Failed to fetch http://mirror.example.net:8080/debian/dists/bookworm/Release 503 Service Unavailable",
	}}}.raw()
	_, causes := aggregate(t, minionSpec{"ams01", 4, constant(raw)})
	if causes[0].Kind != CauseExternalService || causes[0].Key != "http://mirror.example.net:8080" {
		t.Fatalf("top = %s %s", causes[0].Kind, causes[0].Key)
	}
	if len(causes) != 1 {
		t.Errorf("an explained failed state was also counted as its own cause: %d causes", len(causes))
	}
}

func TestHeadlineNothingFails(t *testing.T) {
	tests := []struct {
		name  string
		specs []minionSpec
		want  string
	}{
		{"all healthy", []minionSpec{{"ams01", 12, constant(healthyAnswer())}}, "no failing highstates: 12 minions checked, all healthy"},
		{"some never ran", []minionSpec{{"ams01", 12, constant(healthyAnswer())}, {"ams01", 2, constant(noJobsAnswer())}}, "no failing highstates: 14 minions checked, 2 with no cached highstate yet"},
		{"nothing matched", nil, "no minions matched: nothing to triage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts, causes := aggregate(t, tc.specs...)
			if got := Headline(counts, causes); got != tc.want {
				t.Errorf("headline = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDuplicateAnswerCountsOnce(t *testing.T) {
	agg := NewAggregator("")
	m := DecodeMinion("web-1", commitAnswer("web-1"))
	m.Datacenter = "ams01"
	if !agg.Add(m) || agg.Add(m) {
		t.Fatal("second Add of the same minion was not refused")
	}
	counts, causes, _ := agg.Finish()
	if counts.Failing != 1 || causes[0].Minions != 1 {
		t.Errorf("counts %+v, cause minions %d", counts, causes[0].Minions)
	}
}

// TestRealisticFleetOrderFree: the realistic fleet's report, every cause
// with its evidence and examples, is the same whatever the order its
// minions are added in, from one goroutine or several, with some minions
// answering twice. Its largest causes hold more distinct messages than
// are kept, so which are kept differs from order to order.
func TestRealisticFleetOrderFree(t *testing.T) {
	minions := realisticMinions(t, fleetgen.RealisticOptions{Minions: 5000, Datacenters: 4, Seed: 3})
	render := func(agg *Aggregator) string { return renderAggregate(t, agg) }
	agg := NewAggregator("https://git.example.com/salt/-/commit/{commit}")
	agg.Expect("dc00", []string{"web-dc00-999999"})
	for _, m := range minions {
		agg.Add(m)
	}
	want := render(agg)
	for run := range 3 {
		shuffled := slices.Concat(minions, minions[:500]) // answers twice
		rand.New(rand.NewPCG(uint64(run), 11)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		agg := NewAggregator("https://git.example.com/salt/-/commit/{commit}")
		var wg sync.WaitGroup
		for part := range 3 {
			wg.Go(func() {
				if part == 0 {
					agg.Expect("dc00", []string{"web-dc00-999999"})
				}
				for i := part; i < len(shuffled); i += 3 {
					agg.Add(shuffled[i])
				}
			})
		}
		wg.Wait()
		if got := render(agg); got != want {
			t.Fatalf("run %d differs:\n%s\nwant\n%s", run, got, want)
		}
	}
}

// realisticMinions decodes a realistic fleet, each minion in the
// datacenter its id names.
func realisticMinions(t *testing.T, o fleetgen.RealisticOptions) []Minion {
	t.Helper()
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, o); err != nil {
		t.Fatal(err)
	}
	var minions []Minion
	err := ReadAnswers(&in, func(a MinionAnswer) error {
		m := DecodeMinion(a.ID, a.Raw)
		m.Datacenter = a.ID[4:8]
		minions = append(minions, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return minions
}
