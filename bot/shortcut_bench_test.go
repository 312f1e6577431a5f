package bot

import (
	"fmt"
	"slices"
	"testing"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/triage"
)

// BenchmarkSuggestions is the worst case of the minion type-ahead, which
// runs before its envelope is acknowledged: every held report is of
// 100 000 minions, and what was typed matches none of them.
func BenchmarkSuggestions(b *testing.B) {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("web-dc%02d-%06d.prod.example.com", i%40, i)
	}
	bot := &Bot{deps: Deps{Parser: commands.Parser{Inventory: triage.Inventory{Datacenters: []triage.Datacenter{{Name: "ams01"}}}}}}
	for i := range maxHeldReports {
		bot.reports.put(fmt.Sprint(i), &triage.Report{Causes: []triage.Cause{{MinionIDs: ids}}})
	}
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockSuggestion, ActionID: actionMinion, Value: "DB-NOPE"}
	b.ResetTimer()
	for b.Loop() {
		if got := bot.suggestions(cb); len(got.Options) != 1 {
			b.Fatalf("%d options", len(got.Options))
		}
	}
	b.ReportMetric(float64(len(ids)), "distinct_ids")
	b.ReportMetric(float64(maxHeldReports), "reports")
}

func TestReportStoreSearch(t *testing.T) {
	var s reportStore
	report := func(ids ...string) *triage.Report {
		return &triage.Report{Causes: []triage.Cause{{MinionIDs: ids}, {MinionIDs: ids[:1]}}}
	}
	s.put("a", report("Web-AMS01-001", "web-ams01-002", "db-fra02-001"))
	s.put("b", report("web-ams01-002", "cache-ams01-001"))
	tests := []struct {
		lower string
		n     int
		want  []string
	}{
		{"ams01", 10, []string{"Web-AMS01-001", "cache-ams01-001", "web-ams01-002"}},
		{"ams01", 2, []string{"Web-AMS01-001", "cache-ams01-001"}},
		{"-001", 10, []string{"Web-AMS01-001", "cache-ams01-001", "db-fra02-001"}},
		{"nope", 10, nil},
	}
	for _, tc := range tests {
		if got := s.search(tc.lower, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("search(%q, %d) = %q, want %q", tc.lower, tc.n, got, tc.want)
		}
	}
	// Reports past the bound are forgotten, and so are their minions.
	for i := range maxHeldReports {
		s.put(fmt.Sprint(i), report(fmt.Sprintf("n-%d", i)))
	}
	if got := s.search("ams01", 10); got != nil {
		t.Errorf("minions of forgotten reports still offered: %q", got)
	}
	if _, ok := s.get("a"); ok {
		t.Error("report a still held")
	}
}
