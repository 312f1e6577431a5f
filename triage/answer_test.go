package triage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeMinion(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		want       MinionStatus
		wantDetail string
	}{
		{"false is unreachable", `false`, StatusUnreachable, "did not answer in time"},
		{"null is unreachable", `null`, StatusUnreachable, "did not answer in time"},
		{"not accepted", `"Minion did not return. [No response]\nThe minions may not have all finished running"`, StatusUnreachable, "did not return (no response)"},
		{"function not available", `"'blame.last_failed_states' is not available."`, StatusModuleMissing, "blame module not loaded"},
		{"virtual refused", `"'blame' __virtual__ returned False: blame: the minion job cache returner is not configured"`, StatusModuleMissing, "refused to load: blame: the minion job cache returner is not configured"},
		{"multi-function module missing", string(moduleMissingAnswer()), StatusModuleMissing, "blame module not loaded"},
		{"full_return wrapped", `{"ret": "'blame' __virtual__ returned False: no cache", "out": "nested", "retcode": 1, "jid": "20261128035725211434"}`, StatusModuleMissing, "no cache"},
		{"full_return wrapped healthy", `{"ret": ` + string(healthyAnswer()) + `, "retcode": 0, "jid": "1"}`, StatusHealthy, ""},
		{"traceback from inside the module", `"Traceback (most recent call last):\n  File x\nKeyError: 'jid'"`, StatusBlameError, "KeyError: 'jid'"},
		{"healthy", string(healthyAnswer()), StatusHealthy, ""},
		{"no jobs", string(noJobsAnswer()), StatusNoJobs, ""},
		{"failing", string(commitAnswer("web-1")), StatusFailing, ""},
		{"result false", `{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"result": false, "message": "no git history at /srv/salt"}}`, StatusBlameError, "no git history at /srv/salt"},
		{"unknown status", `{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"result": true, "status": "weird"}}`, StatusBlameError, `unknown status "weird"`},
		{"function missing", `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"status": "healthy"}}`, StatusBlameError, "lacks blame.last_compile_errors"},
		{"wrong type of commits", `{"blame.last_failed_states": [], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"status": "failing", "commits": "abc"}}`, StatusBlameError, "commits is string"},
		{"wrong type of states", `{"blame.last_failed_states": {"a": 1}, "blame.last_compile_errors": [], "blame.last_highstate_failure": {"status": "failing"}}`, StatusBlameError, "blame.last_failed_states"},
		{"docstring dict for a prefix", `{"ret": {"state.highstate": "Retrieve the state data", "state.highstat": "'state.highstat' is not available."}, "retcode": 1, "jid": "1"}`, StatusBlameError, "lacks blame.last_failed_states"},
		{"a list", `[1,2]`, StatusBlameError, "a list"},
		{"true from test.ping", `true`, StatusBlameError, "a boolean"},
		{"broken JSON", `{"blame.last_failed_states": [`, StatusBlameError, "not valid JSON"},
		{"unknown fields tolerated", `{"extra": 1, "blame.last_failed_states": [{"__id__": "x", "fun": "file.managed", "retcode": 2, "_stamp": "t", "success": false}], "blame.last_compile_errors": [], "blame.last_highstate_failure": {"status": "failing", "new_field": {}}}`, StatusFailing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := DecodeMinion("web-1", []byte(tc.raw))
			if m.Status != tc.want {
				t.Fatalf("status = %s (%s), want %s", m.Status, m.Detail, tc.want)
			}
			if !strings.Contains(m.Detail, tc.wantDetail) {
				t.Errorf("detail = %q, want it to contain %q", m.Detail, tc.wantDetail)
			}
			if m.ID != "web-1" {
				t.Errorf("id = %q", m.ID)
			}
		})
	}
}

func TestDecodeMinionFields(t *testing.T) {
	m := DecodeMinion("web-1", commitAnswer("web-1"))
	if len(m.FailedStates) != 1 || m.FailedStates[0].Fun != "file.managed" || m.FailedStates[0].ID != "/etc/nginx/nginx.conf" || m.FailedStates[0].SLS != "webserver" {
		t.Errorf("failed states = %+v", m.FailedStates)
	}
	if len(m.Commits) != 2 || m.Commits[0].ID != badCommit || m.Commits[0].AuthorName != "John Doe" || m.Commits[1].Path != "/srv/salt/webserver/files/nginx.conf" {
		t.Errorf("commits = %+v", m.Commits)
	}
	if m.FailedJob == nil || m.FailedJob.CodebaseVersion != "2025.10.22-3" || m.LastSuccessJob == nil || m.LastSuccessJob.CodebaseVersion != "2025.10.22-1" {
		t.Errorf("jobs = %+v %+v", m.FailedJob, m.LastSuccessJob)
	}
	v := DecodeMinion("web-2", vaultAnswer())
	if len(v.CompileErrors) != 1 || v.CompileErrors[0].State != "secrets" || v.CompileErrors[0].URLs[0] != "https://vault.example.com:8200/v1/secret/data/app" {
		t.Errorf("compile errors = %+v", v.CompileErrors)
	}
}

// TestDecodeFixtures decodes the blame module's real output, kept by the
// Salt side's tests, so both sides of the contract read the same bytes.
func TestDecodeFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "blame-answers", "*.json"))
	if len(files) == 0 {
		t.Fatal("no fixtures under testdata/blame-answers")
	}
	want := map[string]MinionStatus{
		"healthy": StatusHealthy, "no-jobs": StatusNoJobs, "failed-state-commit": StatusFailing,
		"compile-error-vault": StatusFailing, "pillar-error": StatusFailing, "release": StatusFailing,
		"no-git-history": StatusBlameError,
	}
	seen := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := DecodeMinion("web-1", raw)
		if w, ok := want[name]; ok {
			seen++
			if m.Status != w {
				t.Errorf("%s: status %s (%s), want %s", name, m.Status, m.Detail, w)
			}
		}
		if m.Status == StatusBlameError && want[name] != StatusBlameError {
			t.Errorf("%s: module output not understood: %s", name, m.Detail)
		}
	}
	if seen < 5 {
		t.Errorf("only %d of the expected fixtures found", seen)
	}
}

func FuzzDecodeMinion(f *testing.F) {
	for _, seed := range [][]byte{commitAnswer("web-1"), vaultAnswer(), releaseAnswer(), healthyAnswer(), moduleMissingAnswer(),
		[]byte(`false`), []byte(`"x"`), []byte(`{"ret": {"ret": false}}`), []byte(`{}`), []byte(`[`)} {
		f.Add(seed)
	}
	valid := map[MinionStatus]bool{StatusHealthy: true, StatusFailing: true, StatusNoJobs: true, StatusUnreachable: true, StatusModuleMissing: true, StatusBlameError: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := DecodeMinion("m", raw)
		if !valid[m.Status] {
			t.Fatalf("status %q not a class", m.Status)
		}
		if m.Status == StatusBlameError && m.Detail == "" {
			t.Fatal("blame_error without a detail")
		}
		agg := NewAggregator("")
		agg.Add(m)
		agg.Finish()
	})
}

// TestDecodeMinionNestedWrapping guards against an answer nested in
// full_return wrappers thousands deep: one level is Salt's, more is refused
// without decoding every level again.
func TestDecodeMinionNestedWrapping(t *testing.T) {
	deep := strings.Repeat(`{"ret":`, 5000) + "false" + strings.Repeat("}", 5000)
	m := DecodeMinion("web-1", []byte(deep))
	if m.Status != StatusBlameError || !strings.Contains(m.Detail, "more than once") {
		t.Errorf("status %s (%s)", m.Status, m.Detail)
	}
}
