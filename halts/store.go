package halts

import (
	"context"
	"errors"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// Store keeps the halts, the triage results and the webhook deliveries.
// The Service, the sources and `sift history` are its consumers; sqlite
// is the embedded implementation and the storetest package is the
// conformance suite every implementation passes.
//
// Several replicas of Sift may share one store. What makes that safe is
// in the store, not in the replicas' memory:
//   - a halt's unique key is its Fingerprint; at most one open halt exists
//     per Event.Key, whichever replica records the firing (Fire runs in one
//     transaction that reads and writes);
//   - a replica takes a halt's next step only after Claim granted it the
//     halt for a lease; a claim is exclusive until it is released or its
//     lease ends (a replica that died mid-step loses it then);
//   - scheduled rules run on the replica that Lead grants the lease to.
//
// Times are stored to the nanosecond and returned in UTC. Methods that take
// a fingerprint of no stored halt return an error wrapping ErrNotFound.
// Every method is safe for concurrent use.
type Store interface {
	// Fire records the firing notices of events in one transaction, in
	// order, and returns what each did. An event whose key has an open
	// halt counts another firing of it (of its parent too, when it
	// joined one). A new key joins the open halt of the same scope that
	// has no parent and is pending, being posted, or was posted at or
	// after coalesceSince (FireJoined); otherwise it is a new halt
	// (FireNew). A key whose last halt cleared and does not recur is
	// ignored (FireIgnored). Either every event is stored or none is.
	Fire(ctx context.Context, events []Event, now, coalesceSince time.Time) ([]Fired, error)
	// Resolve records that the open halt of e.Key cleared at e.At (now when
	// zero, never before it fired). It reports false when no halt of that
	// key is open. The halt returned holds at least its identity (the
	// fingerprint, key, source, name, scope and parent) and its times.
	Resolve(ctx context.Context, e Event, now time.Time) (Halt, bool, error)

	// Halt returns the halt with fingerprint fp.
	Halt(ctx context.Context, fp string) (Halt, error)
	// Halts returns the last n halts by first firing, newest first.
	Halts(ctx context.Context, n int) ([]Halt, error)
	// OpenHalts returns the open halts of one source and name, oldest first.
	OpenHalts(ctx context.Context, source Source, name string) ([]Halt, error)
	// JoinedHalts returns the halts that joined fp, in the order they
	// joined, skipping the first offset, at most limit of them.
	JoinedHalts(ctx context.Context, fp string, offset, limit int) ([]Halt, error)
	// Due returns at most limit halts without a parent, oldest first, that
	// need work at now and whose NextAttemptAt is not after now:
	//   - a post not done (pending or posting);
	//   - a resolution not announced, once every halt that joined it
	//     cleared too (a posted halt);
	//   - joined halts its thread has not listed yet (a posted open halt);
	//   - more firings than the last update reported, when that update is
	//     at or before stillFailingBefore (a posted open halt).
	// Suppressed halts are never due. It is served by an index of the
	// halts that are open or not yet announced, never by a scan of all.
	Due(ctx context.Context, now, stillFailingBefore time.Time, limit int) ([]Halt, error)
	// Claim grants owner the work on halt fp until now+lease, and returns
	// the halt as stored then. It returns false when another owner holds
	// an unexpired claim. Claiming a halt already held by owner renews it.
	Claim(ctx context.Context, fp, owner string, now time.Time, lease time.Duration) (Halt, bool, error)
	// Release ends owner's claim on fp; releasing a claim not held is no error.
	Release(ctx context.Context, fp, owner string) error

	// BeginPost records, before the post is sent, that it may be in
	// flight: the state becomes posting, the attempts counted, the channel
	// and the summary kept (for the resolved edit).
	BeginPost(ctx context.Context, fp, channel string, summary []byte) error
	// Posted records the post's ts: from then on the halt is never posted
	// again. The firings counted so far are what the post reported.
	Posted(ctx context.Context, fp, channel, ts string, at time.Time) error
	// Suppress records that fp is not posted, the post budget being spent.
	Suppress(ctx context.Context, fp string) error
	// Failed counts a failed step of fp and makes it due again at next.
	Failed(ctx context.Context, fp string, next time.Time) error
	// Succeeded clears the failures of fp.
	Succeeded(ctx context.Context, fp string) error
	// StillFailingSent records a "still failing" reply that reported firings.
	StillFailingSent(ctx context.Context, fp string, firings int, at time.Time) error
	// JoinedAnnounced records that the thread of fp lists its first n joined halts.
	JoinedAnnounced(ctx context.Context, fp string, n int) error
	// ResolveEdited and ResolveReplied record the two steps of announcing
	// that fp cleared: the post edited, the reply sent.
	ResolveEdited(ctx context.Context, fp string) error
	ResolveReplied(ctx context.Context, fp string) error
	// PostsSince counts the halts posted at or after since, for the budget.
	PostsSince(ctx context.Context, since time.Time) (int, error)
	// FiringCounts counts the open halts by source.
	FiringCounts(ctx context.Context) (map[Source]int, error)

	// UseDelivery records a webhook delivery id and reports whether it is
	// new. Ids received before pruneBefore may be forgotten.
	UseDelivery(ctx context.Context, id string, at, pruneBefore time.Time) (bool, error)

	// RecordTriage stores a triage's result and returns its id.
	RecordTriage(ctx context.Context, r TriageRecord) (int64, error)
	// Triages returns the last n triages, newest first.
	Triages(ctx context.Context, n int) ([]TriageRecord, error)
	// StateCounts counts, per failed state, the triages at or after since
	// that named it.
	StateCounts(ctx context.Context, since time.Time) (map[string]int, error)

	// Prune deletes what is older than before: triages, deliveries, and
	// halts that cleared (with nothing left to announce) before it, with
	// the halts that joined them. Open halts are kept whatever their age.
	Prune(ctx context.Context, before time.Time) (Pruned, error)

	// Lead reports whether owner holds the lease named lease until
	// now+ttl, taking or renewing it when it is free, expired or owner's.
	// Scheduled rules run only on the replica that leads. A store that
	// one process owns (sqlite) always grants it.
	Lead(ctx context.Context, lease, owner string, now time.Time, ttl time.Duration) (bool, error)

	// Close releases the store.
	Close() error
}

// BatchResolver is a Store that records many resolved notices in one
// transaction, as Resolve would one after the other; Alertmanager sends
// the resolution of a whole group at once. A Store without it has its
// Resolve called for each.
type BatchResolver interface {
	ResolveAll(ctx context.Context, events []Event, now time.Time) ([]Resolved, error)
}

// Resolved is what one resolved notice did: OK is false when no halt of
// its key was open.
type Resolved struct {
	Halt Halt
	OK   bool
}

// ErrNotFound is wrapped by the errors of a Store asked for a halt it
// does not hold.
var ErrNotFound = errors.New("no such halt")

// FireResult says what a firing notice did.
type FireResult int

// The results of a firing notice.
const (
	// FireNew recorded a new halt.
	FireNew FireResult = iota
	// FireAgain counted another firing of an open halt.
	FireAgain
	// FireIgnored was a late firing of a halt that already cleared.
	FireIgnored
	// FireJoined recorded a new halt that joined an open halt of its scope.
	FireJoined
)

// Fired is what one firing notice did, and the halt as stored after it.
type Fired struct {
	Halt   Halt
	Result FireResult
}

// Pruned counts what Prune deleted.
type Pruned struct {
	Halts, Triages, Deliveries int64
}

// Origins of a triage, as TriageRecord.Origin.
const (
	OriginHalt  = "halt"
	OriginSlack = "slack"
)

// TriageRecord is the result of one triage as the store keeps it.
type TriageRecord struct {
	ID       int64
	At       time.Time
	Origin   string
	Scope    triage.Scope
	Outcome  string
	Duration time.Duration
	Headline string
	// TopKind, TopKey, TopSummary and TopMinions describe the top cause;
	// TopKind is empty when there is none.
	TopKind    triage.CauseKind
	TopKey     string
	TopSummary string
	TopMinions int
	Counts     triage.Counts
	// States are the failed states the causes named, as the
	// repeat-offender metric labels them.
	States []string
	// Halt is the fingerprint of the halt the triage was for, if any.
	Halt  string
	Error string
}

// Classifier names a finished triage's outcome and the failed states it
// found, in the vocabulary of the metrics (metrics.Classify is one), so
// that the store and the metrics agree. r is nil when the triage could
// not run.
type Classifier func(r *triage.Report, err error) (outcome string, states []string)

// NewTriageRecord summarises a finished triage for the store. r may be nil
// when the triage could not run; classify may be nil, leaving the outcome
// and states empty.
func NewTriageRecord(origin string, s triage.Scope, r *triage.Report, err error, d time.Duration, at time.Time, classify Classifier) TriageRecord {
	rec := TriageRecord{At: at, Origin: origin, Scope: s, Duration: d}
	if classify != nil {
		rec.Outcome, rec.States = classify(r, err)
	}
	if err != nil {
		rec.Error = err.Error()
	}
	if r == nil {
		return rec
	}
	if !r.StartedAt.IsZero() {
		rec.At = r.StartedAt
	}
	rec.Headline, rec.Counts = r.Headline, r.Counts
	if top, ok := r.TopCause(); ok {
		rec.TopKind, rec.TopKey, rec.TopSummary, rec.TopMinions = top.Kind, top.Key, top.Summary, top.Minions
	}
	return rec
}
