package formatters

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/triage"
)

// TestJSONRollbackAndRequisites pins the fields rollbacks, requisite
// folding and typed signatures add to the document.
func TestJSONRollbackAndRequisites(t *testing.T) {
	r := &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"},
		StartedAt: started,
		Causes: []triage.Cause{
			{
				Kind: triage.CauseRollback, Key: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", Minions: 14,
				Summary: "rollback to 1a2b3c4 from 9f8e7d6, taking out 1 commit touching /srv/salt/app/files/config.yml.j2",
				Evidence: triage.Evidence{
					CommitID: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", RolledBackFrom: "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c",
					RemovedCommits: []triage.RemovedCommit{{ID: "5c3e8a1f", AuthorName: "Carol Ops", AuthorEmail: "carol@example.com",
						Datetime: "2025-10-22T08:12:40.000+00:00", Paths: []string{"/srv/salt/app/files/config.yml.j2"}}},
					// A state id holding "|" stays whole in its own field.
					FailedStates: []triage.Signature{{Fun: "cmd.run", StateID: "grep -q ok | wc -l", SLS: "app", Template: "Command exited <n>"}},
				},
			},
			{
				Kind: triage.CauseFailedState, Key: "pkg.installed postgres-pkg 0123456789ab", Minions: 9,
				Evidence: triage.Evidence{Fun: "pkg.installed", StateID: "postgres-pkg", SLS: "postgres", Dependents: 2},
			},
			{
				Kind: triage.CauseFailedState, Key: "service.running app 0123456789ab", Minions: 3,
				Evidence: triage.Evidence{Fun: "service.running", StateID: "app", SLS: "app", Requisites: []string{"app./etc/app/config.yml"}},
			},
		},
	}
	_, b := decodeJSON(t, r)
	var doc struct {
		Causes []struct {
			Key      string
			Evidence map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{
			"rolled_back_from": `"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c"`,
			"removed_commits":  `[{"author_email":"carol@example.com","author_name":"Carol Ops","commit_datetime":"2025-10-22T08:12:40.000+00:00","commit_id":"5c3e8a1f","paths":["/srv/salt/app/files/config.yml.j2"]}]`,
			"failed_states":    `["cmd.run|grep -q ok | wc -l|Command exited <n>"]`,
			"dependents":       "",
		},
		{"dependents": "2", "requisites": ""},
		{"dependents": "0", "requisites": `["app./etc/app/config.yml"]`},
	}
	for i, w := range want {
		ev := doc.Causes[i].Evidence
		for k, v := range w {
			got := compact(ev[k])
			if got != v {
				t.Errorf("cause %d %s = %s, want %s", i, k, got, v)
			}
		}
	}
}

// compact re-encodes a value with sorted keys and no HTML escaping.
func compact(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid: " + string(raw)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "invalid: " + string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
