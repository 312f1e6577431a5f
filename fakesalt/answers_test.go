package fakesalt_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
)

func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

func functions(t *testing.T, ans json.RawMessage) (states []json.RawMessage, failure, compile json.RawMessage) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ans, &m); err != nil || len(m) != 3 {
		t.Fatalf("answer %s: %v", ans, err)
	}
	if err := json.Unmarshal(m[fakesalt.FunFailedStates], &states); err != nil {
		t.Fatalf("failed states %s: %v", m[fakesalt.FunFailedStates], err)
	}
	return states, m[fakesalt.FunHighstateFailure], m[fakesalt.FunCompileErrors]
}

// TestFailedStateFollowsTheContract checks the builder field by field
// against the blame contract's examples.
func TestFailedStateFollowsTheContract(t *testing.T) {
	states, failure, compile := functions(t, fakesalt.FailedState(fakesalt.Failure{}))
	if len(states) != 1 {
		t.Fatalf("states %v", states)
	}
	wantState := []string{"__id__", "__run_num__", "__sls__", "changes", "comment", "duration", "finish_time_stamp", "fun", "name", "result", "start_time", "start_time_stamp"}
	if got := keys(t, states[0]); !slices.Equal(got, wantState) {
		t.Errorf("state keys %v, want %v", got, wantState)
	}
	var st struct {
		ID      string `json:"__id__"`
		Fun     string `json:"fun"`
		Result  bool   `json:"result"`
		Comment string `json:"comment"`
		Stamp   string `json:"start_time_stamp"`
	}
	_ = json.Unmarshal(states[0], &st)
	if st.ID != "/etc/nginx/nginx.conf" || st.Fun != "file.managed" || st.Result || !strings.Contains(st.Comment, "salt://webserver/files/nginx.conf") {
		t.Errorf("state %s", states[0])
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Stamp); err != nil {
		t.Errorf("start_time_stamp %q: %v", st.Stamp, err)
	}

	if got, want := keys(t, failure), []string{"commits", "failed_job", "last_success_job", "message", "result", "status"}; !slices.Equal(got, want) {
		t.Errorf("failure keys %v, want %v", got, want)
	}
	var f struct {
		Result  bool   `json:"result"`
		Status  string `json:"status"`
		Commits []struct {
			CommitID, AuthorName, CommitDatetime, Path string
		} `json:"commits"`
		FailedJob map[string]any `json:"failed_job"`
	}
	dec := json.NewDecoder(strings.NewReader(strings.NewReplacer("commit_id", "CommitID", "author_name", "AuthorName", "commit_datetime", "CommitDatetime").Replace(string(failure))))
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if !f.Result || f.Status != "failing" || len(f.Commits) != 1 || f.Commits[0].CommitID != fakesalt.ExampleCommit.ID || f.Commits[0].AuthorName != "John Doe" || f.Commits[0].CommitDatetime != "2025-06-30T15:29:26.000+00:00" {
		t.Errorf("failure %s", failure)
	}
	for _, k := range []string{"jid", "time", "retcode", "commit", "codebase_version"} {
		if _, ok := f.FailedJob[k]; !ok {
			t.Errorf("failed_job lacks %s: %v", k, f.FailedJob)
		}
	}
	if string(compile) != "[]" {
		t.Errorf("compile errors of a state failure: %s", compile)
	}
}

func TestCompileErrorNamesTheService(t *testing.T) {
	states, failure, compile := functions(t, fakesalt.CompileError(fakesalt.Failure{}))
	if len(states) != 0 {
		t.Errorf("a compile error has no failed states: %v", states)
	}
	var errs []map[string]any
	if err := json.Unmarshal(compile, &errs); err != nil || len(errs) != 1 {
		t.Fatalf("compile errors %s: %v", compile, err)
	}
	if got, want := slices.Sorted(maps.Keys(errs[0])), []string{"error_types", "job_timestamp", "message", "state", "traceback", "urls"}; !slices.Equal(got, want) {
		t.Errorf("compile error keys %v, want %v", got, want)
	}
	if urls, _ := errs[0]["urls"].([]any); len(urls) != 1 || urls[0] != "https://vault.example.com:8200" {
		t.Errorf("urls %v", errs[0]["urls"])
	}
	if !strings.Contains(string(failure), `"retcode": 1`) {
		t.Errorf("failed job retcode of a compile error: %s", failure)
	}
}

func TestSmallAnswers(t *testing.T) {
	cases := []struct {
		name   string
		answer json.RawMessage
		want   string // in blame.last_highstate_failure
	}{
		{"healthy", fakesalt.Healthy(), `"status": "healthy"`},
		{"no jobs", fakesalt.NoJobs(), `"status": "no_jobs"`},
		{"blame failed", fakesalt.BlameFailed("no git history"), `{"result": false, "status": "failing", "message": "no git history", "commits": []}`},
		{"release", fakesalt.Release("2025.10.22-1", "2025.10.22-2"), `"commits": []`},
	}
	for _, c := range cases {
		_, failure, _ := functions(t, c.answer)
		if !strings.Contains(string(failure), c.want) {
			t.Errorf("%s: %s lacks %s", c.name, failure, c.want)
		}
	}
	_, failure, _ := functions(t, fakesalt.Release("2025.10.22-1", "2025.10.22-2"))
	if !strings.Contains(string(failure), `"codebase_version": "2025.10.22-2"`) || !strings.Contains(string(failure), `"codebase_version": "2025.10.22-1"`) {
		t.Errorf("release jobs %s", failure)
	}
}

func TestModuleMissingIsSample48(t *testing.T) {
	var sample struct {
		Return []map[string]json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(fakesalt.Sample("48-local-multi-fun-module-missing.json"), &sample); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(fakesalt.ModuleMissing(), sample.Return[0]["web-1"]) {
		t.Errorf("ModuleMissing() = %.300s", fakesalt.ModuleMissing())
	}
}

func TestDemoFleet(t *testing.T) {
	f := fakesalt.DemoFleet()
	seen := map[string]bool{}
	total := 0
	for _, m := range f.Masters {
		for _, mn := range m.Minions {
			total++
			if seen[mn.ID] {
				t.Errorf("minion %s twice", mn.ID)
			}
			seen[mn.ID] = true
			if !mn.Unreachable && (mn.Delay < 200*time.Millisecond || mn.Delay > 1500*time.Millisecond) {
				t.Errorf("%s delay %v", mn.ID, mn.Delay)
			}
		}
	}
	if total < 200 || total > 500 {
		t.Errorf("%d minions, want a few hundred", total)
	}
	// A few minions are disconnected, and their masters say so.
	for _, m := range f.Masters {
		var down []string
		for _, mn := range m.Minions {
			if mn.Disconnected {
				down = append(down, mn.ID)
			}
		}
		slices.Sort(down)
		srv := fakesalt.NewServer(m)
		token := loginAs(t, srv, m)
		a := do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": "manage.not_present"}})
		srv.Close()
		var v struct{ Return [][]string }
		if len(down) < 2 || json.Unmarshal(a.body, &v) != nil || len(v.Return) != 1 || !slices.Equal(v.Return[0], down) {
			t.Errorf("%s: disconnected %v, manage.not_present %s", m.Name, down, a.body)
		}
	}
	for _, dcs := range f.Inventory.Groups {
		for _, name := range dcs {
			if !slices.ContainsFunc(f.Inventory.Datacenters, func(d fakesalt.DemoDatacenter) bool { return d.Name == name }) {
				t.Errorf("group names unknown datacenter %s", name)
			}
		}
	}
	if got := f.Inventory.Groups["europe"]; len(got) != 3 {
		t.Errorf("europe = %v", got)
	}

	// Each datacenter's target selects its minions on its master, and the
	// incident is there: the bad commit, the Vault outage, the missing
	// module, the rollback, the requisite chain.
	count := func(dc fakesalt.DemoDatacenter, needle string) (matched, with int) {
		m := f.Master(dc.Master)
		if m == nil {
			t.Fatalf("%s: no master %s", dc.Name, dc.Master)
		}
		// The content is under test here, not the timing.
		fast := *m
		fast.TimeScale = 0
		fast.Minions = nil
		for _, mn := range m.Minions {
			quick := *mn
			quick.Delay = 0
			fast.Minions = append(fast.Minions, &quick)
		}
		srv := fakesalt.NewServer(&fast)
		defer srv.Close()
		token := loginAs(t, srv, m)
		ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local", dc.Target, "compound")))
		for _, v := range ret {
			if strings.Contains(string(v), needle) {
				with++
			}
		}
		return len(ret), with
	}
	for _, c := range []struct {
		dc      int
		needle  string
		atLeast int
	}{
		{0, "e4a91b2c9f7d3b6f84d12a9f0e62a58c3c7d9b5a", 60},
		{1, "e4a91b2c9f7d3b6f84d12a9f0e62a58c3c7d9b5a", 50},
		{1, "TypeError: 'str' object is not callable", 5},
		{2, "https://vault.example.com:8200", 40},
		{0, `"window": "rollback"`, 14},
		{0, `"change": "removed"`, 14},
		{2, "One or more requisite failed: postgres.postgres-service", 9},
		{3, `"status": "healthy"`, 30},
	} {
		dc := f.Inventory.Datacenters[c.dc]
		matched, with := count(dc, c.needle)
		if matched < 40 || with < c.atLeast {
			t.Errorf("%s: %d minions, %d with %q", dc.Name, matched, with, c.needle)
		}
	}
}

func loginAs(t *testing.T, srv *fakesalt.Server, m *fakesalt.Master) string {
	t.Helper()
	a := do(t, "POST", srv.URL()+"/login", "", map[string]string{"username": m.Username, "password": m.Password, "eauth": m.Eauth})
	var v struct {
		Return []struct{ Token string } `json:"return"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || len(v.Return) != 1 {
		t.Fatalf("login %d %s", a.status, a.body)
	}
	return v.Return[0].Token
}
