package triage

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// renderAggregate is everything Finish returns, as JSON.
func renderAggregate(t *testing.T, agg *Aggregator) string {
	t.Helper()
	counts, causes, perDC := agg.Finish()
	out, err := json.Marshal(struct {
		Counts Counts
		Causes []Cause
		PerDC  map[string]Counts
	}{counts, causes, perDC})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestPreparedCountsAsAdd: minions prepared on several goroutines, all of
// them before any is counted, and then counted in order, give the report
// Add gives; requisite folds included, whose lists Prepare works out in
// scratch it hands on to the next minion.
func TestPreparedCountsAsAdd(t *testing.T) {
	minions := realisticMinions(t, fleetgen.RealisticOptions{Minions: 3000, Datacenters: 3, Seed: 5})
	gone := requires("app-gone", "app", "cmd.run", FailedState{ID: "missing", SLS: "app.none"})
	minions = slices.Concat(minions,
		minionsWith("a", 40, pkgRoot, requires("app-reload", "app", "cmd.run", pkgRoot)),
		minionsWith("b", 30, confRoot, requires("app-reload", "app", "cmd.run", confRoot), gone),
		minionsWith("c", 20, pkgRoot, confRoot, requires("app-reload", "app", "cmd.run", pkgRoot, confRoot),
			requires("app-ready", "app", "cmd.run", FailedState{ID: "app-reload", SLS: "app"})),
		minions[:100], // answers twice
	)

	agg := NewAggregator("https://git.example.com/salt/-/commit/{commit}")
	agg.Expect("dc00", []string{"web-dc00-999999"})
	for _, m := range minions {
		agg.Add(m)
	}
	want := renderAggregate(t, agg)

	agg = NewAggregator("https://git.example.com/salt/-/commit/{commit}")
	agg.Expect("dc00", []string{"web-dc00-999999"})
	prepared := make([]Prepared, len(minions))
	var wg sync.WaitGroup
	for part := range 3 {
		wg.Go(func() {
			for i := part; i < len(minions); i += 3 {
				prepared[i] = agg.Prepare(minions[i])
			}
		})
	}
	wg.Wait()
	added := 0
	for _, p := range prepared {
		if agg.AddPrepared(p) {
			added++
		}
	}
	if added != len(minions)-100 {
		t.Errorf("AddPrepared took %d minions, want %d", added, len(minions)-100)
	}
	if got := renderAggregate(t, agg); got != want {
		t.Fatalf("prepared differs:\n%s\nwant\n%s", got, want)
	}
}

// TestAddPreparesOnItsStack: Add works a failing minion out on its stack,
// as its comment says: a second answer, checked and refused, allocates
// nothing.
func TestAddPreparesOnItsStack(t *testing.T) {
	m := failingMinion("web-001", "ams01", pkgRoot, confRoot, requires("app-reload", "app", "cmd.run", pkgRoot))
	m.FailedStates = m.FailedStates[:2] // no requisite: no scratch from the pool
	agg := NewAggregator("")
	if !agg.Add(m) {
		t.Fatal("first answer refused")
	}
	if n := testing.AllocsPerRun(100, func() {
		if agg.Add(m) {
			t.Fatal("second answer counted")
		}
	}); n != 0 {
		t.Errorf("a refused second answer allocates %v times", n)
	}
}
