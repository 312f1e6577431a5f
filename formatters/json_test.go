package formatters

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/sift-chatops/sift/triage"
)

func decodeJSON(t *testing.T, r *triage.Report) (map[string]any, []byte) {
	t.Helper()
	b, err := JSON(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) {
		t.Errorf("JSON does not end in a newline: %q", b[max(0, len(b)-10):])
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, b
}

func checkKeys(t *testing.T, where string, v any, want ...string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %T, want an object", where, v)
	}
	got := slices.Sorted(maps.Keys(m))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", where, got, want)
	}
	return m
}

var countKeys = []string{"expected", "answered", "healthy", "failing", "no_jobs", "unreachable", "module_missing", "blame_error"}

// TestJSONShape pins the field names other tools parse.
func TestJSONShape(t *testing.T) {
	m, _ := decodeJSON(t, commitReport())
	checkKeys(t, "report", m, "scope", "outcome", "headline", "started_at", "duration_ms", "counts", "causes", "datacenters")
	scope := checkKeys(t, "scope", m["scope"], "kind", "name")
	if scope["kind"] != "group" || scope["name"] != "eu-web" {
		t.Errorf("scope = %v", scope)
	}
	if _, err := time.Parse(time.RFC3339, m["started_at"].(string)); err != nil {
		t.Errorf("started_at: %v", err)
	}
	if m["duration_ms"] != float64(41234) {
		t.Errorf("duration_ms = %v, want 41234", m["duration_ms"])
	}
	checkKeys(t, "counts", m["counts"], countKeys...)

	causes := m["causes"].([]any)
	if len(causes) != 3 {
		t.Fatalf("%d causes, want 3", len(causes))
	}
	c := checkKeys(t, "cause", causes[0], "kind", "key", "summary", "minions", "minion_ids", "datacenters", "evidence")
	if c["kind"] != "commit" || c["key"] != "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a" || c["minions"] != float64(287) {
		t.Errorf("cause = kind %v key %v minions %v", c["kind"], c["key"], c["minions"])
	}
	ids := c["minion_ids"].([]any)
	if len(ids) != maxJSONMinionIDs || ids[0] != "web-0001.ams01" || ids[49] != "web-0050.ams01" {
		t.Errorf("minion_ids has %d ids (%v … %v), want the first 50", len(ids), ids[0], ids[len(ids)-1])
	}
	checkKeys(t, "evidence", c["evidence"], "commit_id", "author_name", "author_email", "commit_datetime",
		"paths", "commit_url", "messages", "failed_states", "last_success", "first_failure")

	dcs := m["datacenters"].([]any)
	dc := checkKeys(t, "datacenter", dcs[0], "name", "master", "counts", "duration_ms", "error", "notes")
	checkKeys(t, "datacenter counts", dc["counts"], countKeys...)
	if dc["name"] != "ams01" || dc["master"] != "salt-eu" || dc["duration_ms"] != float64(38912) || dc["error"] != "" {
		t.Errorf("datacenter = %v", dc)
	}
}

// TestJSONOutcomeAndNotes checks that the report says how far the triage
// got, derived from the datacenters for a report made without an outcome,
// and carries each datacenter's notes.
func TestJSONOutcomeAndNotes(t *testing.T) {
	tests := []struct {
		name string
		r    *triage.Report
		want string
	}{
		{"complete", commitReport(), "complete"},
		{"partial, derived", partialGroupReport(), "partial"},
		{"stopped", &triage.Report{Outcome: triage.OutcomeStopped, Datacenters: partialGroupReport().Datacenters}, "stopped"},
		{"failed", &triage.Report{Outcome: triage.OutcomeFailed}, "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := decodeJSON(t, tc.r)
			if m["outcome"] != tc.want {
				t.Errorf("outcome = %v, want %s", m["outcome"], tc.want)
			}
		})
	}
	r := commitReport()
	note := "presence not available on salt-eu: waited out Salt's timeout"
	r.Datacenters[0].Notes = []string{note}
	m, _ := decodeJSON(t, r)
	dcs := m["datacenters"].([]any)
	if notes := dcs[0].(map[string]any)["notes"].([]any); len(notes) != 1 || notes[0] != note {
		t.Errorf("notes = %#v", notes)
	}
	if notes, ok := dcs[1].(map[string]any)["notes"].([]any); !ok || len(notes) != 0 {
		t.Errorf("notes of a datacenter without any = %#v, want []", dcs[1].(map[string]any)["notes"])
	}
}

// TestJSONEmptyLists checks that absent lists are [] and never null, so
// that readers can iterate without checking.
func TestJSONEmptyLists(t *testing.T) {
	r := &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeMinion, Name: "web-0001.ams01"},
		StartedAt: started,
		Causes:    []triage.Cause{{Kind: triage.CauseBlameError, Key: "blame_error", Minions: 1}},
	}
	m, b := decodeJSON(t, r)
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("JSON holds null:\n%s", b)
	}
	if dcs, ok := m["datacenters"].([]any); !ok || len(dcs) != 0 {
		t.Errorf("datacenters = %#v, want []", m["datacenters"])
	}
	c := m["causes"].([]any)[0].(map[string]any)
	for _, k := range []string{"minion_ids", "datacenters"} {
		if l, ok := c[k].([]any); !ok || len(l) != 0 {
			t.Errorf("cause %s = %#v, want []", k, c[k])
		}
	}
	checkKeys(t, "evidence", c["evidence"])

	r.Causes = nil
	m, _ = decodeJSON(t, r)
	if causes, ok := m["causes"].([]any); !ok || len(causes) != 0 {
		t.Errorf("causes = %#v, want []", m["causes"])
	}
}

// TestJSONKeepsText checks that text is carried as is: no HTML escaping of
// the '<' and '&' that Jinja errors are full of.
func TestJSONKeepsText(t *testing.T) {
	_, b := decodeJSON(t, failedStateReport())
	if !bytes.Contains(b, []byte(`not found & <no candidate>`)) {
		t.Errorf("comment was escaped:\n%s", b)
	}
}
