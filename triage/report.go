package triage

import (
	"time"
)

// MinionStatus classifies one minion's answer.
type MinionStatus string

// The classes a minion's answer falls into.
const (
	StatusHealthy       MinionStatus = "healthy"
	StatusFailing       MinionStatus = "failing"
	StatusNoJobs        MinionStatus = "no_jobs"
	StatusUnreachable   MinionStatus = "unreachable"
	StatusModuleMissing MinionStatus = "module_missing"
	StatusBlameError    MinionStatus = "blame_error"
)

// CauseKind is the kind of a root cause.
type CauseKind string

// The kinds of cause, in the order that breaks ties between causes that
// explain as many minions.
const (
	CauseCommit          CauseKind = "commit"
	CauseRollback        CauseKind = "rollback"
	CauseRelease         CauseKind = "release"
	CauseExternalService CauseKind = "external_service"
	CauseFailedState     CauseKind = "failed_state"
	CauseUnreachable     CauseKind = "unreachable"
	CauseModuleMissing   CauseKind = "module_missing"
	CauseBlameError      CauseKind = "blame_error"
)

// CauseKinds lists every cause kind, in tie-break order.
var CauseKinds = []CauseKind{CauseCommit, CauseRollback, CauseRelease, CauseExternalService, CauseFailedState, CauseUnreachable, CauseModuleMissing, CauseBlameError}

// Explains reports whether a cause of this kind explains failing minions (as
// opposed to minions Sift could not ask).
func (k CauseKind) Explains() bool {
	switch k {
	case CauseCommit, CauseRollback, CauseRelease, CauseExternalService, CauseFailedState:
		return true
	}
	return false
}

// Counts tallies minions by class.
type Counts struct {
	Expected      int `json:"expected"`
	Answered      int `json:"answered"`
	Healthy       int `json:"healthy"`
	Failing       int `json:"failing"`
	NoJobs        int `json:"no_jobs"`
	Unreachable   int `json:"unreachable"`
	ModuleMissing int `json:"module_missing"`
	BlameError    int `json:"blame_error"`
}

// add counts one minion of status st.
func (c *Counts) add(st MinionStatus) {
	if st != StatusUnreachable {
		c.Answered++
	}
	switch st {
	case StatusHealthy:
		c.Healthy++
	case StatusFailing:
		c.Failing++
	case StatusNoJobs:
		c.NoJobs++
	case StatusUnreachable:
		c.Unreachable++
	case StatusModuleMissing:
		c.ModuleMissing++
	case StatusBlameError:
		c.BlameError++
	}
}

// Plus returns the sum of two tallies.
func (c Counts) Plus(o Counts) Counts {
	return Counts{
		Expected:      c.Expected + o.Expected,
		Answered:      c.Answered + o.Answered,
		Healthy:       c.Healthy + o.Healthy,
		Failing:       c.Failing + o.Failing,
		NoJobs:        c.NoJobs + o.NoJobs,
		Unreachable:   c.Unreachable + o.Unreachable,
		ModuleMissing: c.ModuleMissing + o.ModuleMissing,
		BlameError:    c.BlameError + o.BlameError,
	}
}

// Signature identifies one failure across minions: the same state failing
// the same way. Fun is empty for a compile error, whose sls is in SLS.
// Template is the failure's message with what varies per minion masked: the
// grouping key, never shown to people (show an Example).
type Signature struct {
	Fun      string
	StateID  string
	SLS      string
	Template string
}

// Example is one real message behind a cause, as one minion sent it.
type Example struct {
	Text   string
	Minion string
	// Count is how many of the cause's minions sent a message of the same
	// template (the text itself may differ in what the template masks).
	Count int
}

// Evidence is what supports a cause. Only the fields of the cause's kind are
// set.
type Evidence struct {
	// Commit.
	CommitID       string   `json:"commit_id,omitempty"`
	AuthorName     string   `json:"author_name,omitempty"`
	AuthorEmail    string   `json:"author_email,omitempty"`
	CommitDatetime string   `json:"commit_datetime,omitempty"`
	Paths          []string `json:"paths,omitempty"`
	CommitURL      string   `json:"commit_url,omitempty"`
	// Release.
	Version         string `json:"version,omitempty"`
	PreviousVersion string `json:"previous_version,omitempty"`
	// External service.
	ServiceURL string `json:"service_url,omitempty"`
	// Probe is what a live check of ServiceURL from Sift's host saw, e.g.
	// "Vault at https://vault.example.com:8200 answers 503: sealed"; empty
	// when probes are off or the origin is not allowed.
	Probe string `json:"probe,omitempty"`
	// Failed state, or compile error when Fun is empty and CompileState is set.
	Fun          string `json:"fun,omitempty"`
	StateID      string `json:"state_id,omitempty"`
	SLS          string `json:"sls,omitempty"`
	Comment      string `json:"comment,omitempty"`
	CompileState string `json:"compile_state,omitempty"`
	// Messages are distinct example messages: failed-state comments and
	// compile errors, or why minions could not be asked, most frequent first.
	Messages []string `json:"messages,omitempty"`
	// FailedStates are the failed-state and compile-error signatures most
	// common among the cause's minions, states that failed only because a
	// requisite failed left out.
	FailedStates []Signature `json:"-"`
	// Examples are real messages, one per template, most common first.
	Examples []Example `json:"-"`
	// Dependents counts the failed states that failed only because a
	// requisite of theirs (this cause's state) failed.
	Dependents int `json:"dependents,omitempty"`
	// Requisites are the states (sls.id) Salt named as the failed
	// requisites of a failed-state cause when none of them was among the
	// minions' failed states: the cause is a symptom whose root Sift did
	// not see.
	Requisites []string `json:"-"`
	// Rollback: the commit the minions were served before the failure (the
	// last success's), and the commits the rollback took out that touched
	// the failed states' files, newest first.
	RolledBackFrom string          `json:"-"`
	RemovedCommits []RemovedCommit `json:"-"`
	// Window is the failure window: the last success and the first failure.
	LastSuccess  string `json:"last_success,omitempty"`
	FirstFailure string `json:"first_failure,omitempty"`
}

// RemovedCommit is a commit that a rollback took out of the served
// codebase, and the paths of the failed states' files it touched.
type RemovedCommit struct {
	ID          string
	AuthorName  string
	AuthorEmail string
	Datetime    string
	Paths       []string
}

// Cause is one root cause and the minions it explains.
type Cause struct {
	Kind    CauseKind `json:"kind"`
	Key     string    `json:"key"`
	Summary string    `json:"summary"`
	// Minions is how many minions the cause explains.
	Minions int `json:"minions"`
	// MinionIDs are all of them, sorted; the JSON report holds the first 50.
	MinionIDs   []string `json:"minion_ids"`
	Datacenters []string `json:"datacenters"`
	Evidence    Evidence `json:"evidence"`
}

// DatacenterResult is how the triage of one datacenter went.
type DatacenterResult struct {
	Name     string        `json:"name"`
	Master   string        `json:"master"`
	Counts   Counts        `json:"counts"`
	Duration time.Duration `json:"-"`
	// Error says why the datacenter's result is partial or missing; empty
	// when its blame call completed.
	Error string `json:"error"`
	// Notes are what the report must say about how the call went, each once
	// (e.g. presence unavailable, so the call waited out Salt's timeout).
	Notes []string `json:"notes,omitempty"`
}

// Outcome says how far a triage got.
type Outcome string

// The outcomes of a triage.
const (
	// OutcomeComplete: every datacenter's blame call completed.
	OutcomeComplete Outcome = "complete"
	// OutcomePartial: some datacenters failed, others answered.
	OutcomePartial Outcome = "partial"
	// OutcomeFailed: no master answered.
	OutcomeFailed Outcome = "failed"
	// OutcomeStopped: Sift was stopped (or the caller cancelled) before
	// the triage finished.
	OutcomeStopped Outcome = "stopped"
)

// Report is the outcome of one triage.
type Report struct {
	Scope       Scope
	Outcome     Outcome
	Headline    string
	StartedAt   time.Time
	Duration    time.Duration
	Counts      Counts
	Causes      []Cause
	Datacenters []DatacenterResult
}

// Reached reports whether at least one master answered: the outcome is not
// failed. A datacenter that failed after some of its minions answered was
// reached. A minion triage, or one over saved evidence, has no datacenter
// errors.
func (r *Report) Reached() bool {
	return OutcomeOf(r) != OutcomeFailed
}

// TopCause returns the highest-ranked cause, if any.
func (r *Report) TopCause() (Cause, bool) {
	if len(r.Causes) == 0 {
		return Cause{}, false
	}
	return r.Causes[0], true
}
