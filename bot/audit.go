package bot

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// Outcomes of a command, as the audit log names them.
const (
	OutcomeOK = "ok"
	// OutcomePartial is a report posted with parts Slack refused, or a
	// report some datacenters did not answer.
	OutcomePartial    = "partial"
	OutcomeRefused    = "refused"
	OutcomeUsageError = "usage_error"
	OutcomeHelp       = "help"
	// OutcomeFailed is a command that could not run, a triage that
	// reached no master, or one that hit an internal error.
	OutcomeFailed    = "failed"
	OutcomeCancelled = "cancelled"
)

// AuditRecord is one line of the audit log: who ran what, where, and how
// it went. It never holds a token or a payload as Slack sent it.
type AuditRecord struct {
	Time time.Time `json:"time"`
	// ID is the command's id, in the logs and in error messages.
	ID string `json:"id"`
	// Via is "slash" or "mention".
	Via      string `json:"via"`
	User     string `json:"user"`
	Channel  string `json:"channel"`
	ThreadTS string `json:"thread_ts,omitempty"`
	// Command is the slash command, or "@sift"; Text what followed it.
	Command string        `json:"command"`
	Text    string        `json:"text"`
	Scope   *triage.Scope `json:"scope,omitempty"`
	Outcome string        `json:"outcome"`
	// Triage is how far the triage got: complete, partial (some
	// datacenters did not answer), failed (no master answered) or stopped.
	Triage string `json:"triage,omitempty"`
	// Reason says why a command was refused or failed, or what a partial
	// report lacks.
	Reason     string `json:"reason,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	// MessageTS is the report's summary message.
	MessageTS string `json:"message_ts,omitempty"`
	Headline  string `json:"headline,omitempty"`
	TopCause  string `json:"top_cause,omitempty"`
	// Failing counts the failing minions of the report.
	Failing *int `json:"failing,omitempty"`
}

// auditLog writes AuditRecords as JSON lines, one Write each, so that
// lines of concurrent commands never interleave.
type auditLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (a *auditLog) write(r AuditRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(b); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// causeText names a cause in one line for the audit log.
func causeText(c triage.Cause) string {
	if c.Summary != "" {
		return c.Summary
	}
	return string(c.Kind) + " " + c.Key
}
