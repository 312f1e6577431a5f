package formatters

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// maxJSONMinionIDs is how many minion ids of each cause the JSON report
// holds. A cause can explain 100 000 minions; the first few are enough to
// look at, and the count says how many there are.
const maxJSONMinionIDs = 50

// The wire types below are the JSON contract other tools read. They are
// written out here, rather than borrowed from triage's struct tags, so that
// a change in the domain types cannot silently change the document.

type wireReport struct {
	Scope wireScope `json:"scope"`
	// Outcome is complete, partial, failed (no master answered) or
	// stopped (Sift stopped before the triage finished).
	Outcome     string           `json:"outcome"`
	Headline    string           `json:"headline"`
	StartedAt   string           `json:"started_at"`
	DurationMS  int64            `json:"duration_ms"`
	Counts      wireCounts       `json:"counts"`
	Causes      []wireCause      `json:"causes"`
	Datacenters []wireDatacenter `json:"datacenters"`
}

type wireScope struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type wireCounts struct {
	Expected      int `json:"expected"`
	Answered      int `json:"answered"`
	Healthy       int `json:"healthy"`
	Failing       int `json:"failing"`
	NoJobs        int `json:"no_jobs"`
	Unreachable   int `json:"unreachable"`
	ModuleMissing int `json:"module_missing"`
	BlameError    int `json:"blame_error"`
}

type wireCause struct {
	Kind        string       `json:"kind"`
	Key         string       `json:"key"`
	Summary     string       `json:"summary"`
	Minions     int          `json:"minions"`
	MinionIDs   []string     `json:"minion_ids"`
	Datacenters []string     `json:"datacenters"`
	Evidence    wireEvidence `json:"evidence"`
}

// wireEvidence carries only the fields of the cause's kind, as triage sets
// them; empty fields are left out.
type wireEvidence struct {
	CommitID        string   `json:"commit_id,omitempty"`
	AuthorName      string   `json:"author_name,omitempty"`
	AuthorEmail     string   `json:"author_email,omitempty"`
	CommitDatetime  string   `json:"commit_datetime,omitempty"`
	Paths           []string `json:"paths,omitempty"`
	CommitURL       string   `json:"commit_url,omitempty"`
	Version         string   `json:"version,omitempty"`
	PreviousVersion string   `json:"previous_version,omitempty"`
	ServiceURL      string   `json:"service_url,omitempty"`
	Probe           string   `json:"probe,omitempty"`
	Fun             string   `json:"fun,omitempty"`
	StateID         string   `json:"state_id,omitempty"`
	SLS             string   `json:"sls,omitempty"`
	Comment         string   `json:"comment,omitempty"`
	CompileState    string   `json:"compile_state,omitempty"`
	Messages        []string `json:"messages,omitempty"`
	FailedStates    []string `json:"failed_states,omitempty"`
	// Dependents is set on every failed_state cause, zero included.
	Dependents     *int                `json:"dependents,omitempty"`
	Requisites     []string            `json:"requisites,omitempty"`
	RolledBackFrom string              `json:"rolled_back_from,omitempty"`
	RemovedCommits []wireRemovedCommit `json:"removed_commits,omitempty"`
	LastSuccess    string              `json:"last_success,omitempty"`
	FirstFailure   string              `json:"first_failure,omitempty"`
}

type wireRemovedCommit struct {
	CommitID       string   `json:"commit_id"`
	AuthorName     string   `json:"author_name"`
	AuthorEmail    string   `json:"author_email"`
	CommitDatetime string   `json:"commit_datetime"`
	Paths          []string `json:"paths"`
}

type wireDatacenter struct {
	Name       string     `json:"name"`
	Master     string     `json:"master"`
	Counts     wireCounts `json:"counts"`
	DurationMS int64      `json:"duration_ms"`
	Error      string     `json:"error"`
	// Notes say how the call went when the report must, e.g. that the
	// master could not tell which minions were connected.
	Notes []string `json:"notes"`
}

// JSON renders r as an indented JSON document with a trailing newline. Its
// field names are a contract: tools outside Sift parse them. Lists are never
// null, and each cause lists at most its first 50 minion ids.
func JSON(r *triage.Report) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Summaries and comments are full of '<', '>' and '&' (Jinja, shell);
	// \u003c in a document people also read helps nobody.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(toWire(r)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toWire(r *triage.Report) wireReport {
	w := wireReport{
		Scope:       wireScope{Kind: string(r.Scope.Kind), Name: r.Scope.Name},
		Outcome:     string(triage.OutcomeOf(r)),
		Headline:    r.Headline,
		StartedAt:   r.StartedAt.UTC().Format(time.RFC3339),
		DurationMS:  r.Duration.Milliseconds(),
		Counts:      toWireCounts(r.Counts),
		Causes:      make([]wireCause, 0, len(r.Causes)),
		Datacenters: make([]wireDatacenter, 0, len(r.Datacenters)),
	}
	for _, c := range r.Causes {
		w.Causes = append(w.Causes, wireCause{
			Kind:        string(c.Kind),
			Key:         c.Key,
			Summary:     c.Summary,
			Minions:     c.Minions,
			MinionIDs:   nonNil(firstN(c.MinionIDs, maxJSONMinionIDs)),
			Datacenters: nonNil(c.Datacenters),
			Evidence:    toWireEvidence(c),
		})
	}
	for _, dc := range r.Datacenters {
		w.Datacenters = append(w.Datacenters, wireDatacenter{
			Name:       dc.Name,
			Master:     dc.Master,
			Counts:     toWireCounts(dc.Counts),
			DurationMS: dc.Duration.Milliseconds(),
			Error:      dc.Error,
			Notes:      nonNil(dc.Notes),
		})
	}
	return w
}

func toWireCounts(c triage.Counts) wireCounts {
	return wireCounts{
		Expected:      c.Expected,
		Answered:      c.Answered,
		Healthy:       c.Healthy,
		Failing:       c.Failing,
		NoJobs:        c.NoJobs,
		Unreachable:   c.Unreachable,
		ModuleMissing: c.ModuleMissing,
		BlameError:    c.BlameError,
	}
}

func toWireEvidence(c triage.Cause) wireEvidence {
	e := c.Evidence
	w := wireEvidence{
		CommitID:        e.CommitID,
		AuthorName:      e.AuthorName,
		AuthorEmail:     e.AuthorEmail,
		CommitDatetime:  e.CommitDatetime,
		Paths:           e.Paths,
		CommitURL:       e.CommitURL,
		Version:         e.Version,
		PreviousVersion: e.PreviousVersion,
		ServiceURL:      e.ServiceURL,
		Probe:           e.Probe,
		Fun:             e.Fun,
		StateID:         e.StateID,
		SLS:             e.SLS,
		Comment:         e.Comment,
		CompileState:    e.CompileState,
		Messages:        e.Messages,
		FailedStates:    wireSignatures(e.FailedStates),
		Requisites:      e.Requisites,
		RolledBackFrom:  e.RolledBackFrom,
		LastSuccess:     e.LastSuccess,
		FirstFailure:    e.FirstFailure,
	}
	if c.Kind == triage.CauseFailedState {
		n := e.Dependents
		w.Dependents = &n
	}
	for _, rc := range e.RemovedCommits {
		w.RemovedCommits = append(w.RemovedCommits, wireRemovedCommit{
			CommitID: rc.ID, AuthorName: rc.AuthorName, AuthorEmail: rc.AuthorEmail,
			CommitDatetime: rc.Datetime, Paths: nonNil(rc.Paths),
		})
	}
	return w
}

// wireSignatures writes failed-state signatures in the document's form,
// "fun|state id|message template" or "compile_error|sls|message template".
// It is an output form only: a state id may hold "|", so a reader that
// needs the parts uses the cause's own fields.
func wireSignatures(sigs []triage.Signature) []string {
	if len(sigs) == 0 {
		return nil
	}
	out := make([]string, len(sigs))
	for i, s := range sigs {
		if s.Fun == "" {
			out[i] = "compile_error|" + s.SLS + "|" + s.Template
		} else {
			out[i] = s.Fun + "|" + s.StateID + "|" + s.Template
		}
	}
	return out
}

// nonNil makes an absent list encode as [] rather than null, so that readers
// can iterate without a nil check.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
