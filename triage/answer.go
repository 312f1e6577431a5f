package triage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
)

// FailedState is one state that returned False in the minion's failed highstate.
type FailedState struct {
	ID      string
	SLS     string
	Fun     string
	Name    string
	Comment string
	// Template is Comment with what differs per minion masked (Mask): the
	// failure's grouping key, made while decoding.
	Template string
}

// Commit is one (commit, path) row of blame.last_highstate_failure.
type Commit struct {
	ID          string
	AuthorName  string
	AuthorEmail string
	Datetime    string
	Path        string
	// Change is "added" for a commit the failed job's codebase gained since
	// the last success, "removed" for one it lost (a rollback); empty from
	// modules older than windows, which list added commits only.
	Change string
}

// The windows and changes of blame.last_highstate_failure.
const (
	WindowForward  = "forward"
	WindowRollback = "rollback"
	WindowDiverged = "diverged"
	ChangeAdded    = "added"
	ChangeRemoved  = "removed"
)

// Job is a highstate job the minion's cache kept.
type Job struct {
	JID             string
	Time            string
	Retcode         int
	Commit          string
	CodebaseVersion string
}

// CompileError is one compile error of the failed highstate.
type CompileError struct {
	ErrorTypes []string
	State      string
	Message    string
	URLs       []string
	// Template is Message with what differs per minion masked (Mask).
	Template string
}

// Minion is one minion's answer, decoded and classified.
type Minion struct {
	ID         string
	Datacenter string
	Status     MinionStatus
	// Detail says why the minion is unreachable, lacks the module, or could
	// not answer: a short message for the report.
	Detail         string
	FailedStates   []FailedState
	Commits        []Commit
	FailedJob      *Job
	LastSuccessJob *Job
	CompileErrors  []CompileError
	// Window is how the failed job's commit relates to the last success's:
	// "forward" (a descendant), "rollback" (an ancestor) or "diverged"
	// (neither); empty when the module did not say.
	Window string
}

// Wire shapes of the blame contract. Unknown fields are ignored: job results
// read back through /jobs carry extra keys on failed states.
type wireAnswer struct {
	FailedStates  json.RawMessage `json:"blame.last_failed_states"`
	Failure       json.RawMessage `json:"blame.last_highstate_failure"`
	CompileErrors json.RawMessage `json:"blame.last_compile_errors"`
	// full_return wrapping.
	Ret json.RawMessage `json:"ret"`
	JID json.RawMessage `json:"jid"`
}

type wireFailedState struct {
	ID      string `json:"__id__"`
	SLS     string `json:"__sls__"`
	Fun     string `json:"fun"`
	Name    string `json:"name"`
	Comment string `json:"comment"`
}

type wireCommit struct {
	ID          string `json:"commit_id"`
	AuthorName  string `json:"author_name"`
	AuthorEmail string `json:"author_email"`
	Datetime    string `json:"commit_datetime"`
	Path        string `json:"path"`
	Change      string `json:"change"`
}

type wireJob struct {
	JID             string `json:"jid"`
	Time            string `json:"time"`
	Retcode         int    `json:"retcode"`
	Commit          string `json:"commit"`
	CodebaseVersion string `json:"codebase_version"`
}

type wireFailure struct {
	Result         *bool        `json:"result"`
	Status         string       `json:"status"`
	Message        string       `json:"message"`
	Commits        []wireCommit `json:"commits"`
	FailedJob      *wireJob     `json:"failed_job"`
	LastSuccessJob *wireJob     `json:"last_success_job"`
	Window         string       `json:"window"`
}

type wireCompileError struct {
	ErrorTypes []string `json:"error_types"`
	State      string   `json:"state"`
	Message    string   `json:"message"`
	URLs       []string `json:"urls"`
}

// maxDetail bounds the text kept from a minion's error: tracebacks can be
// long and a report holds one per minion.
const maxDetail = 300

// DecodeMinion decodes and classifies one minion's answer to the blame call.
// It never fails: an answer that is not a blame answer classifies the minion
// as unreachable, module_missing or blame_error with a Detail saying why.
func DecodeMinion(id string, raw []byte) Minion {
	return decodeMinion(id, raw, true)
}

// decodeMinion decodes one answer; unwrap allows the one full_return
// wrapping Salt adds, and no more: unwrapping without end would let one
// deeply nested answer cost quadratic time.
func decodeMinion(id string, raw []byte, unwrap bool) Minion {
	return decodeWith(id, raw, unwrap, true)
}

// decodeWith decodes one answer, trying the hand decoder first when fast.
func decodeWith(id string, raw []byte, unwrap, fast bool) Minion {
	m := Minion{ID: id}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("false")) || bytes.Equal(raw, []byte("null")):
		m.Status, m.Detail = StatusUnreachable, "did not answer in time"
		return m
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return blameError(m, "answer is not valid JSON")
		}
		return classifyString(m, s)
	case raw[0] != '{':
		return blameError(m, "answer is "+jsonKind(raw)+", not the blame functions' results")
	}
	if fast {
		if m, ok := decodeFast(m, raw); ok {
			return m
		}
	}
	if m, ok := decodeTyped(m, raw); ok {
		return m
	}
	var w wireAnswer
	if err := json.Unmarshal(raw, &w); err != nil {
		return blameError(m, "answer: "+decodeProblem(err))
	}
	if w.Ret != nil && w.FailedStates == nil && w.Failure == nil && w.CompileErrors == nil {
		// full_return wraps the minion's value as {"ret": …, "retcode": N, "jid": …}.
		if !unwrap {
			return blameError(m, "answer is wrapped in full_return more than once")
		}
		return decodeWith(id, w.Ret, false, fast)
	}
	if m, done := checkFunctions(m, map[string]json.RawMessage{
		FunFailedStates: w.FailedStates, FunHighstateFailure: w.Failure, FunCompileErrors: w.CompileErrors,
	}); done {
		return m
	}

	var f wireFailure
	if err := json.Unmarshal(w.Failure, &f); err != nil {
		return blameError(m, FunHighstateFailure+": "+decodeProblem(err))
	}
	var states []wireFailedState
	if err := unmarshalList(w.FailedStates, &states); err != nil {
		return blameError(m, FunFailedStates+": "+decodeProblem(err))
	}
	var errs []wireCompileError
	if err := unmarshalList(w.CompileErrors, &errs); err != nil {
		return blameError(m, FunCompileErrors+": "+decodeProblem(err))
	}
	return classify(m, &f, states, errs)
}

// typedAnswer is a well-formed blame answer, decoded in one pass with the
// faster v2 decoder: the common case, tried before the field-by-field
// diagnosis that names what is wrong.
type typedAnswer struct {
	FailedStates  *[]wireFailedState  `json:"blame.last_failed_states"`
	Failure       *wireFailure        `json:"blame.last_highstate_failure"`
	CompileErrors *[]wireCompileError `json:"blame.last_compile_errors"`
}

func decodeTyped(m Minion, raw []byte) (Minion, bool) {
	var a typedAnswer
	if jsonv2.Unmarshal(raw, &a) != nil || a.FailedStates == nil || a.Failure == nil || a.CompileErrors == nil {
		return m, false
	}
	return classify(m, a.Failure, *a.FailedStates, *a.CompileErrors), true
}

// classify turns a decoded blame answer into a classified minion. It
// copies what it keeps of the strings it only looks at (status, message,
// window, change), which the hand decoder lends it from the input.
func classify(m Minion, f *wireFailure, states []wireFailedState, errs []wireCompileError) Minion {
	return classifyShared(m, f, states, errs, nil, nil, nil)
}

// classifyShared is classify, with the commits and the last success of a
// failing minion given when they are known already: a list and a job made
// for an earlier minion from the same values, which f's stand for. The
// aggregator only reads them, so minions share them. The minion's lists
// are in arena when it is set.
func classifyShared(m Minion, f *wireFailure, states []wireFailedState, errs []wireCompileError, commits []Commit, success *Job, arena *batchArena) Minion {
	if f.Status == "no_jobs" {
		// Nothing cached is not a module failure, whatever result says.
		m.Status, m.Detail = StatusNoJobs, strings.Clone(truncate(f.Message, maxDetail))
		return m
	}
	if f.Result != nil && !*f.Result {
		return blameError(m, "blame module: "+nonEmpty(f.Message, "result false with no message"))
	}
	switch f.Status {
	case "healthy":
		m.Status = StatusHealthy
		return m
	case "failing":
		m.Status = StatusFailing
	default:
		return blameError(m, fmt.Sprintf("%s: unknown status %q (want failing, healthy or no_jobs)", FunHighstateFailure, truncate(f.Status, 40)))
	}

	m.FailedStates = arena.failedStates(len(states))
	// Templates are made here, in the decoding workers, not under the
	// aggregator's lock.
	for i, s := range states {
		m.FailedStates[i] = FailedState{ID: s.ID, SLS: s.SLS, Fun: s.Fun, Name: s.Name, Comment: s.Comment,
			Template: TemplateOf(s.Comment, m.ID)}
	}
	m.CompileErrors = arena.compileErrors(len(errs))
	for i, e := range errs {
		m.CompileErrors[i] = CompileError{ErrorTypes: e.ErrorTypes, State: e.State, Message: e.Message, URLs: e.URLs,
			Template: TemplateOf(e.Message, m.ID)}
	}
	var window string
	switch f.Window {
	case "":
	case WindowForward:
		window = WindowForward
	case WindowRollback:
		window = WindowRollback
	case WindowDiverged:
		window = WindowDiverged
	default:
		return blameError(m, fmt.Sprintf("%s: unknown window %q (want forward, rollback or diverged)", FunHighstateFailure, truncate(f.Window, 40)))
	}
	wire := f.Commits
	if commits != nil {
		m.Commits, wire = commits, nil
	} else {
		m.Commits = make([]Commit, 0, len(f.Commits))
	}
	for _, c := range wire {
		switch c.Change {
		case "":
		case ChangeAdded:
			c.Change = ChangeAdded
		case ChangeRemoved:
			c.Change = ChangeRemoved
		default:
			return blameError(m, fmt.Sprintf("%s: commit %s: unknown change %q (want added or removed)", FunHighstateFailure, truncate(c.ID, 40), truncate(c.Change, 40)))
		}
		if c.ID != "" {
			m.Commits = append(m.Commits, Commit(c))
		}
	}
	switch {
	case success != nil || arena != nil:
		if f.FailedJob != nil {
			j := &arena.jobs(1)[0]
			*j = Job(*f.FailedJob)
			m.FailedJob = j
		}
		// The last success may be remembered for the next minions
		// (interner.successMade): never in the arena.
		switch {
		case success != nil:
			m.LastSuccessJob = success
		case f.LastSuccessJob != nil:
			j := Job(*f.LastSuccessJob)
			m.LastSuccessJob = &j
		}
	case f.FailedJob != nil || f.LastSuccessJob != nil:
		// Both jobs in one allocation.
		jobs := new([2]Job)
		if f.FailedJob != nil {
			jobs[0] = Job(*f.FailedJob)
			m.FailedJob = &jobs[0]
		}
		if f.LastSuccessJob != nil {
			jobs[1] = Job(*f.LastSuccessJob)
			m.LastSuccessJob = &jobs[1]
		}
	}
	m.Window = window
	return m
}

// checkFunctions classifies an answer whose per-function values are not all
// results: a module that is not there answers strings in their place.
func checkFunctions(m Minion, values map[string]json.RawMessage) (Minion, bool) {
	for _, fun := range BlameFunctions {
		v := bytes.TrimSpace(values[fun])
		switch {
		case len(v) == 0:
			return blameError(m, "answer lacks "+fun), true
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return blameError(m, fun+": not valid JSON"), true
			}
			return classifyString(m, s), true
		}
	}
	return m, false
}

// classifyString classifies a minion that answered a string where the blame
// results should be: Salt's words for a missing module, for a minion that did
// not return, or a traceback from inside the module.
func classifyString(m Minion, s string) Minion {
	switch {
	case strings.HasPrefix(s, "Minion did not return"):
		m.Status, m.Detail = StatusUnreachable, "did not return (no response)"
	case strings.Contains(s, "is not available."),
		strings.Contains(s, "TypeError: 'str' object is not callable"):
		m.Status, m.Detail = StatusModuleMissing, "blame module not loaded (run saltutil.sync_modules, or a highstate)"
	case strings.Contains(s, "__virtual__ returned False"):
		m.Status = StatusModuleMissing
		_, reason, _ := strings.Cut(s, "__virtual__ returned False")
		reason = strings.TrimLeft(reason, ": ")
		m.Detail = truncate("blame module refused to load: "+nonEmpty(reason, "no reason given"), maxDetail)
	default:
		return blameError(m, "blame module error: "+lastLine(s))
	}
	return m
}

func blameError(m Minion, detail string) Minion {
	m.Status, m.Detail = StatusBlameError, truncate(detail, maxDetail)
	return m
}

// unmarshalList decodes a JSON list, treating null as empty.
func unmarshalList[T any](raw json.RawMessage, out *[]T) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// decodeProblem turns a decoding error into a short phrase naming the field.
func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if ok := asTypeError(err, &te); ok {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Sprintf("%s is %s, want %s", field, te.Value, te.Type)
	}
	return "not valid JSON"
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}

func jsonKind(raw []byte) string {
	switch raw[0] {
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func nonEmpty(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}
