// Package halts is the life cycle of a pipeline halt: a halt is
// remembered in a Store before Sift acts on it; its scope is triaged and
// the report posted to the incident channel once per halt; alerts of the
// same scope that arrive meanwhile join it; at most one "still failing"
// reply is added per interval; the post is edited when the halt clears; a
// global budget bounds the posts per hour. The sources live in their own
// packages (webhook: Alertmanager and the release pipeline; rules:
// scheduled PromQL checks), and so does each store (sqlite).
package halts

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// Source is where a halt came from.
type Source string

// The halt sources.
const (
	SourceRule         Source = "rule"
	SourceAlertmanager Source = "alertmanager"
	SourcePipeline     Source = "pipeline"
)

// Sources lists every source, e.g. for the series of a metric.
var Sources = []Source{SourceRule, SourceAlertmanager, SourcePipeline}

// Event is a source's notice that a halt fires (again) or cleared.
type Event struct {
	Source Source
	// Key identifies the halt within its source: the rule and scope, the
	// Alertmanager fingerprint and start, the pipeline's halt id.
	Key string
	// Recurring says that the same key may halt again after it cleared:
	// a rule's scope can halt twice; an Alertmanager alert or a pipeline
	// halt id names one halt only, so a late firing of it is a duplicate.
	Recurring bool
	// Name is what halted: the rule, the alert name, the pipeline's name.
	Name  string
	Scope triage.Scope
	// Reason and URL explain the halt, as the source gave them.
	Reason string
	URL    string
	// Firing is true for a firing notice, false for a resolved one.
	Firing bool
	// At is when the source says it happened; zero means now.
	At time.Time
}

// PostState says how far the channel post of a halt has got.
type PostState string

// The post states. A halt is pending until Sift starts posting it; posting
// while a post may be in flight (Sift stopped, or the post failed, before
// its ts was stored); posted once the ts is stored. A halt that joined
// another is never posted itself (joined); one over the post budget is
// counted in a "suppressed" note instead of posted (suppressed).
const (
	PostPending    PostState = "pending"
	PostPosting    PostState = "posting"
	PostPosted     PostState = "posted"
	PostJoined     PostState = "joined"
	PostSuppressed PostState = "suppressed"
)

// Halt is one halt as the store keeps it.
type Halt struct {
	// Fingerprint identifies this halt; it is shown in the post so that
	// a post can be found again.
	Fingerprint string
	Key         string
	Source      Source
	Name        string
	Scope       triage.Scope
	Reason      string
	URL         string
	// FiredAt is the first firing, LastFiredAt the latest; Firings counts
	// the firing notices.
	FiredAt     time.Time
	LastFiredAt time.Time
	Firings     int
	// ResolvedAt is zero while the halt is open.
	ResolvedAt time.Time

	PostState    PostState
	PostAttempts int
	// NextAttemptAt is when a failed step is tried again.
	NextAttemptAt time.Time
	Channel       string
	TS            string
	PostedAt      time.Time
	// UpdatedAt is the last "still failing" reply (or the post);
	// FiringsAtUpdate the firings counted then.
	UpdatedAt       time.Time
	FiringsAtUpdate int
	// Summary is the posted summary message, kept for the resolved edit.
	Summary []byte
	// ResolveEdited and ResolveReplied say how far the announcement of the
	// resolution has got.
	ResolveEdited  bool
	ResolveReplied bool
	// Failures counts the failed attempts at the halt's next step since
	// its last success; NextAttemptAt backs off with it.
	Failures int
	// Parent is the fingerprint of the halt this one joined (same scope,
	// while that one was being triaged or freshly posted); empty for a
	// halt of its own.
	Parent string
	// Joined counts the halts that joined this one; JoinedAnnounced how
	// many of them its thread has listed.
	Joined          int
	JoinedAnnounced int
}

// Open reports whether the halt has not cleared.
func (h Halt) Open() bool { return h.ResolvedAt.IsZero() }

// Fingerprint derives a halt's identity from its key and first firing: the
// same key halting again later is another halt. Stores use it as the
// halt's unique key.
func Fingerprint(key string, firedAt time.Time) string {
	sum := sha256.Sum256([]byte(key + "\x00" + strconv.FormatInt(firedAt.UnixNano(), 10)))
	return hex.EncodeToString(sum[:8])
}
