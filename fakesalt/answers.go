package fakesalt

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// The blame module's functions, as Salt names them on the wire (the triage
// package holds the same names; the fake does not import the domain).
const (
	FunFailedStates     = "blame.last_failed_states"
	FunHighstateFailure = "blame.last_highstate_failure"
	FunCompileErrors    = "blame.last_compile_errors"
)

// State is one failed state of a highstate.
type State struct {
	// ID is the state's __id__; Name its name (the ID when empty).
	ID, Name string
	// SLS is the state's __sls__.
	SLS string
	// Fun is the state function, e.g. file.managed.
	Fun     string
	Comment string
	RunNum  int
	// Duration is in milliseconds, as Salt reports it.
	Duration float64
}

// Commit is one (commit, path) row of a failure's suspects.
type Commit struct {
	ID, AuthorName, AuthorEmail string
	Time                        time.Time
	Path                        string
	// Change is "added" or "removed" (a commit a rollback took out); empty
	// leaves the field out, as modules from before windows do.
	Change string
}

// Job is a highstate job of the minion's cache.
type Job struct {
	JID             string
	Time            time.Time
	Retcode         int
	Commit          string
	CodebaseVersion string
}

// CompileErr is one compile error of a highstate.
type CompileErr struct {
	// Types are the error_types: render, pillar, requisite, ...
	Types     []string
	Time      time.Time
	Message   string
	State     string
	Traceback string
	// URLs are the external services the error names (a Vault server, a mirror).
	URLs []string
}

// Failure scripts a failing minion's answer. Zero fields take the values of
// the contract's examples: John Doe's commit e4a91b2 that broke
// /etc/nginx/nginx.conf.
type Failure struct {
	States         []State
	CompileErrors  []CompileErr
	Commits        []Commit
	FailedJob      Job
	LastSuccessJob Job
	// Message is the module's summary; a default counts the rows.
	Message string
	// Window is "forward", "rollback" or "diverged"; empty leaves it out.
	Window string
}

// The incident of the contract's examples.
var (
	exampleFailedTime  = time.Date(2025, 10, 22, 10, 0, 16, 0, time.UTC)
	exampleSuccessTime = time.Date(2025, 10, 22, 9, 45, 12, 0, time.UTC)
	// ExampleCommit is the bad commit of the contract's examples.
	ExampleCommit = Commit{
		ID:         "e4a91b2c9f7d3b6f84d12a9f0e62a58c3c7d9b5a",
		AuthorName: "John Doe", AuthorEmail: "jdoe@example.com",
		Time: time.Date(2025, 6, 30, 15, 29, 26, 0, time.UTC),
		Path: "/srv/salt/webserver/init.sls",
	}
	// ExampleState is the failed state of the contract's examples.
	ExampleState = State{
		ID: "/etc/nginx/nginx.conf", SLS: "webserver", Fun: "file.managed",
		Comment: "Source file salt://webserver/files/nginx.conf not found in saltenv 'base'",
		RunNum:  5221, Duration: 367.233,
	}
)

const (
	stampLayout  = "2006-01-02T15:04:05.000000-07:00"
	jobLayout    = "2006-01-02T15:04:05-07:00"
	commitLayout = "2006-01-02T15:04:05.000-07:00"
)

// FailedState answers a highstate that failed on states (retcode 2), with
// the commits that touched them.
func FailedState(f Failure) json.RawMessage {
	if len(f.States) == 0 {
		f.States = []State{ExampleState}
	}
	if f.Commits == nil {
		f.Commits = []Commit{ExampleCommit}
	}
	f = f.withJobs(2, ExampleCommit.ID, "2025.10.22-3")
	if f.Message == "" {
		f.Message = fmt.Sprintf("reviewed %d change(s) over %d commit(s) looking for %d state failure(s)", len(f.Commits), distinctCommits(f.Commits), len(f.States))
	}
	return f.answer()
}

// CompileError answers a highstate that did not compile (retcode 1): no
// failed states, compile errors naming their external services.
func CompileError(f Failure) json.RawMessage {
	if len(f.CompileErrors) == 0 {
		f.CompileErrors = []CompileErr{VaultDown("https://vault.example.com:8200")}
	}
	if f.Commits == nil {
		f.Commits = []Commit{}
	}
	f.States = nil
	f = f.withJobs(1, "77c0d1a4e5b6f7a8b9c0d1e2f3a4b5c6d7e8f9a0", "2025.10.22-1")
	if f.Message == "" {
		// The module counts a compile error as one failure, in its own words.
		f.Message = fmt.Sprintf("reviewed %d change(s) over %d commit(s) looking for %d state failure(s)", len(f.Commits), distinctCommits(f.Commits), len(f.CompileErrors))
	}
	return f.answer()
}

// VaultDown is the compile error of a pillar or state that could not read a
// secret from the Vault server at url.
func VaultDown(url string) CompileErr {
	return CompileErr{
		Types:   []string{"render"},
		Time:    exampleFailedTime,
		Message: fmt.Sprintf("Rendering SLS 'base:webserver.tls' failed: Jinja error: VaultException: Failed to connect to %s: Connection refused", url),
		State:   "webserver.tls",
		Traceback: "Traceback (most recent call last):\n  File \"salt/utils/templates.py\", line 498, in render_jinja_tmpl\n    output = template.render(**decoded_context)\n" +
			fmt.Sprintf("salt.exceptions.VaultException: Failed to connect to %s: Connection refused\n", url),
		URLs: []string{url},
	}
}

// Release answers a failure whose window holds a change of the codebase
// version from → to and no matching commit: a release broke the minion.
func Release(from, to string) json.RawMessage {
	f := Failure{
		States: []State{{
			ID: "openssl", SLS: "base.packages", Fun: "pkg.installed",
			Comment: "The following packages failed to install/update: openssl=3.0.15-1~deb12u1",
			RunNum:  42, Duration: 5120.4,
		}},
		Commits:        []Commit{},
		FailedJob:      Job{Commit: "9b1f3c7d2e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c", CodebaseVersion: to},
		LastSuccessJob: Job{Commit: "9b1f3c7d2e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c", CodebaseVersion: from},
		Message:        "reviewed 0 change(s) over 0 commit(s) looking for 1 state failure(s)",
	}
	return FailedState(f)
}

// withJobs fills the jobs' zero fields.
func (f Failure) withJobs(retcode int, commit, version string) Failure {
	if f.FailedJob.JID == "" {
		f.FailedJob.JID = "20251022100016123456"
	}
	if f.FailedJob.Time.IsZero() {
		f.FailedJob.Time = exampleFailedTime
	}
	if f.FailedJob.Retcode == 0 {
		f.FailedJob.Retcode = retcode
	}
	if f.FailedJob.Commit == "" {
		f.FailedJob.Commit = commit
	}
	if f.FailedJob.CodebaseVersion == "" {
		f.FailedJob.CodebaseVersion = version
	}
	if f.LastSuccessJob.JID == "" {
		f.LastSuccessJob.JID = "20251022094512000001"
	}
	if f.LastSuccessJob.Time.IsZero() {
		f.LastSuccessJob.Time = exampleSuccessTime
	}
	if f.LastSuccessJob.Commit == "" {
		f.LastSuccessJob.Commit = "77c0d1a4e5b6f7a8b9c0d1e2f3a4b5c6d7e8f9a0"
	}
	if f.LastSuccessJob.CodebaseVersion == "" {
		f.LastSuccessJob.CodebaseVersion = "2025.10.22-1"
	}
	return f
}

// answer encodes the failure as the three functions' answers, field by
// field as the blame contract has them.
func (f Failure) answer() json.RawMessage {
	states := make([]any, 0, len(f.States))
	start := f.FailedJob.Time.Add(900 * time.Millisecond)
	for _, s := range f.States {
		name := s.Name
		if name == "" {
			name = s.ID
		}
		dur := time.Duration(s.Duration * float64(time.Millisecond))
		states = append(states, object{
			{"__id__", s.ID}, {"__run_num__", s.RunNum}, {"__sls__", s.SLS},
			{"changes", object{}}, {"comment", s.Comment}, {"duration", s.Duration},
			{"fun", s.Fun}, {"name", name}, {"result", false},
			{"start_time", start.Format("15:04:05.000000")},
			{"start_time_stamp", start.Format(stampLayout)},
			{"finish_time_stamp", start.Add(dur).Format(stampLayout)},
		})
	}
	commits := make([]any, 0, len(f.Commits))
	for _, c := range f.Commits {
		row := object{
			{"commit_id", c.ID}, {"author_name", c.AuthorName}, {"author_email", c.AuthorEmail},
			{"commit_datetime", c.Time.UTC().Format(commitLayout)}, {"path", c.Path},
		}
		if c.Change != "" {
			row = append(row, field{"change", c.Change})
		}
		commits = append(commits, row)
	}
	compileErrors := make([]any, 0, len(f.CompileErrors))
	for _, e := range f.CompileErrors {
		urls := e.URLs
		if urls == nil {
			urls = []string{}
		}
		at := e.Time
		if at.IsZero() {
			at = f.FailedJob.Time
		}
		compileErrors = append(compileErrors, object{
			{"error_types", e.Types}, {"job_timestamp", at.UTC().Format(stampLayout)},
			{"message", e.Message}, {"state", e.State}, {"traceback", e.Traceback}, {"urls", urls},
		})
	}
	failure := object{
		{"result", true}, {"status", "failing"}, {"message", f.Message}, {"commits", commits},
		{"failed_job", jobObject(f.FailedJob)}, {"last_success_job", jobObject(f.LastSuccessJob)},
	}
	if f.Window != "" {
		failure = append(failure, field{"window", f.Window})
	}
	return BlameAnswer(states, failure, compileErrors)
}

func jobObject(j Job) object {
	o := object{{"jid", j.JID}, {"time", j.Time.UTC().Format(jobLayout)}, {"retcode", j.Retcode}}
	if j.Commit != "" {
		o = append(o, field{"commit", j.Commit})
	}
	if j.CodebaseVersion != "" {
		o = append(o, field{"codebase_version", j.CodebaseVersion})
	}
	return o
}

func distinctCommits(cs []Commit) int {
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.ID] = true
	}
	return len(seen)
}

// BlameAnswer builds a minion's answer from the values of the three
// functions (any JSON-encodable values, or json.RawMessage).
func BlameAnswer(failedStates, highstateFailure, compileErrors any) json.RawMessage {
	return mustPyJSON(object{
		{FunFailedStates, failedStates},
		{FunHighstateFailure, highstateFailure},
		{FunCompileErrors, compileErrors},
	})
}

// Healthy answers a minion whose newest highstate succeeded.
func Healthy() json.RawMessage {
	return BlameAnswer([]any{}, object{
		{"result", true}, {"status", "healthy"},
		{"message", "the last highstate succeeded"}, {"commits", []any{}},
		{"last_success_job", jobObject(Job{JID: "20251022094512000001", Time: exampleSuccessTime, Commit: "77c0d1a4e5b6f7a8b9c0d1e2f3a4b5c6d7e8f9a0", CodebaseVersion: "2025.10.22-1"})},
	}, []any{})
}

// NoJobs answers a minion with no highstate in its job cache yet; the
// module says so with result false, as its own output does.
func NoJobs() json.RawMessage {
	return BlameAnswer([]any{}, object{
		{"result", false}, {"status", "no_jobs"},
		{"message", "no highstate job cached yet: the blame_cache returner has not stored any job (is it enabled as the minion's or the highstate schedule's returner?)"},
		{"commits", []any{}},
	}, []any{})
}

// BlameFailed answers a failing minion whose blame module could not do its
// work (no git history, an unreadable cache, ...): result false and why.
func BlameFailed(message string) json.RawMessage {
	return BlameAnswer([]any{}, object{{"result", false}, {"status", "failing"}, {"message", message}, {"commits", []any{}}}, []any{})
}

// ModuleMissing answers a minion without the blame module, as Salt does to
// the three-function call: each function's value is the traceback ending
// in "TypeError: 'str' object is not callable" (sample 48).
func ModuleMissing() json.RawMessage {
	tb := moduleMissingTraceback()
	return BlameAnswer(tb, tb, tb)
}

// moduleMissingTraceback is the real traceback string of sample 48.
var moduleMissingTraceback = sync.OnceValue(func() json.RawMessage {
	var ans struct {
		Return []map[string]map[string]json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(samplePage("48-local-multi-fun-module-missing.json"), &ans); err != nil || len(ans.Return) == 0 {
		panic("fakesalt: sample 48 does not decode")
	}
	return ans.Return[0]["web-1"][FunFailedStates]
})
