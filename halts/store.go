package halts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/sift-chatops/sift/metrics"
	"github.com/sift-chatops/sift/triage"
)

// schemaVersion is the store's PRAGMA user_version; a store written by a
// newer Sift is refused rather than misread.
const schemaVersion = 1

// schema creates the store. Times are Unix nanoseconds, 0 when unset.
// The partial unique index is what makes "once per halt" hold even if two
// notices of a new halt race: only one open halt per key can exist.
const schema = `
CREATE TABLE IF NOT EXISTS halts (
	fingerprint       TEXT PRIMARY KEY,
	key               TEXT NOT NULL,
	source            TEXT NOT NULL,
	name              TEXT NOT NULL,
	scope_kind        TEXT NOT NULL,
	scope_name        TEXT NOT NULL,
	reason            TEXT NOT NULL DEFAULT '',
	url               TEXT NOT NULL DEFAULT '',
	fired_at          INTEGER NOT NULL,
	last_fired_at     INTEGER NOT NULL,
	firings           INTEGER NOT NULL DEFAULT 1,
	resolved_at       INTEGER NOT NULL DEFAULT 0,
	post_state        TEXT NOT NULL DEFAULT 'pending',
	post_attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt_at   INTEGER NOT NULL DEFAULT 0,
	channel           TEXT NOT NULL DEFAULT '',
	ts                TEXT NOT NULL DEFAULT '',
	posted_at         INTEGER NOT NULL DEFAULT 0,
	updated_at        INTEGER NOT NULL DEFAULT 0,
	firings_at_update INTEGER NOT NULL DEFAULT 0,
	summary           BLOB,
	resolve_edited    INTEGER NOT NULL DEFAULT 0,
	resolve_replied   INTEGER NOT NULL DEFAULT 0,
	failures          INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS halts_open_key ON halts(key) WHERE resolved_at = 0;
CREATE INDEX IF NOT EXISTS halts_key ON halts(key, fired_at);
CREATE TABLE IF NOT EXISTS triages (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          INTEGER NOT NULL,
	origin      TEXT NOT NULL,
	scope_kind  TEXT NOT NULL,
	scope_name  TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	duration_ns INTEGER NOT NULL,
	headline    TEXT NOT NULL DEFAULT '',
	top_kind    TEXT NOT NULL DEFAULT '',
	top_key     TEXT NOT NULL DEFAULT '',
	top_summary TEXT NOT NULL DEFAULT '',
	top_minions INTEGER NOT NULL DEFAULT 0,
	counts      TEXT NOT NULL DEFAULT '{}',
	states      TEXT NOT NULL DEFAULT '[]',
	halt        TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS triages_at ON triages(at);
CREATE TABLE IF NOT EXISTS deliveries (
	id          TEXT PRIMARY KEY,
	received_at INTEGER NOT NULL
);
`

// Store is the embedded SQLite database of halts, triage results and
// webhook deliveries. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// OpenStore opens (creating it if needed) the store at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: no path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store %s: the path may not contain '?' or '#'", path)
	}
	// FULL sync: a halt acknowledged to its source must survive a crash of
	// the machine too, and halts are few. The busy timeout lets `sift
	// history` read while `sift serve` writes.
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// One connection serialises the writes, so that the check-then-insert
	// of a firing never races within the process.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("written by a newer Sift (schema %d, this one knows %d)", v, schemaVersion)
	}
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
	return err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

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
)

const haltColumns = `fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at,
	firings, resolved_at, post_state, post_attempts, next_attempt_at, channel, ts, posted_at, updated_at,
	firings_at_update, summary, resolve_edited, resolve_replied, failures`

func scanHalt(row interface{ Scan(...any) error }) (Halt, error) {
	var h Halt
	var kind, state string
	var fired, last, resolved, next, posted, updated int64
	err := row.Scan(&h.Fingerprint, &h.Key, &h.Source, &h.Name, &kind, &h.Scope.Name, &h.Reason, &h.URL, &fired, &last,
		&h.Firings, &resolved, &state, &h.PostAttempts, &next, &h.Channel, &h.TS, &posted, &updated,
		&h.FiringsAtUpdate, &h.Summary, &h.ResolveEdited, &h.ResolveReplied, &h.Failures)
	if err != nil {
		return Halt{}, err
	}
	h.Scope.Kind = triage.ScopeKind(kind)
	h.PostState = PostState(state)
	h.FiredAt, h.LastFiredAt, h.ResolvedAt = fromNanos(fired), fromNanos(last), fromNanos(resolved)
	h.NextAttemptAt, h.PostedAt, h.UpdatedAt = fromNanos(next), fromNanos(posted), fromNanos(updated)
	return h, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Fire records a firing notice: a new halt, another firing of an open
// one, or nothing for a halt of that key that already cleared and does not
// recur. It returns the halt as stored.
func (s *Store) Fire(ctx context.Context, e Event, now time.Time) (Halt, FireResult, error) {
	at := e.At
	if at.IsZero() {
		at = now
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Halt{}, 0, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	last, err := scanHalt(tx.QueryRowContext(ctx, `SELECT `+haltColumns+` FROM halts WHERE key = ? ORDER BY resolved_at = 0 DESC, fired_at DESC LIMIT 1`, e.Key))
	switch {
	case err == nil && last.Open():
		if _, err := tx.ExecContext(ctx, `UPDATE halts SET firings = firings + 1, last_fired_at = max(last_fired_at, ?) WHERE fingerprint = ?`,
			nanos(at), last.Fingerprint); err != nil {
			return Halt{}, 0, fmt.Errorf("store: %w", err)
		}
		last.Firings++
		if at.After(last.LastFiredAt) {
			last.LastFiredAt = at
		}
		return last, FireAgain, commit(tx)
	case err == nil && !e.Recurring:
		return last, FireIgnored, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return Halt{}, 0, fmt.Errorf("store: %w", err)
	}
	h := Halt{
		Fingerprint: fingerprint(e.Key, at), Key: e.Key, Source: e.Source, Name: e.Name, Scope: e.Scope,
		Reason: e.Reason, URL: e.URL, FiredAt: at, LastFiredAt: at, Firings: 1, PostState: PostPending,
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO halts (fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.Fingerprint, h.Key, string(h.Source), h.Name, string(h.Scope.Kind), h.Scope.Name, h.Reason, h.URL, nanos(at), nanos(at))
	if err != nil {
		return Halt{}, 0, fmt.Errorf("store: %w", err)
	}
	return h, FireNew, commit(tx)
}

// Resolve records that the open halt of e.Key cleared. It reports false
// when no halt of that key is open (never seen, or already resolved).
func (s *Store) Resolve(ctx context.Context, e Event, now time.Time) (Halt, bool, error) {
	at := e.At
	if at.IsZero() {
		at = now
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Halt{}, false, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	h, err := scanHalt(tx.QueryRowContext(ctx, `SELECT `+haltColumns+` FROM halts WHERE key = ? AND resolved_at = 0`, e.Key))
	if errors.Is(err, sql.ErrNoRows) {
		return Halt{}, false, nil
	}
	if err != nil {
		return Halt{}, false, fmt.Errorf("store: %w", err)
	}
	// A clock that disagrees with the source must not make a halt end
	// before it began.
	if at.Before(h.FiredAt) {
		at = h.FiredAt
	}
	if _, err := tx.ExecContext(ctx, `UPDATE halts SET resolved_at = ? WHERE fingerprint = ?`, nanos(at), h.Fingerprint); err != nil {
		return Halt{}, false, fmt.Errorf("store: %w", err)
	}
	h.ResolvedAt = at
	return h, true, commit(tx)
}

func commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// OpenHalts returns the open halts of one source and name (a rule), oldest first.
func (s *Store) OpenHalts(ctx context.Context, source Source, name string) ([]Halt, error) {
	return s.halts(ctx, `WHERE resolved_at = 0 AND source = ? AND name = ? ORDER BY fired_at`, string(source), name)
}

// Halt returns the halt with fingerprint fp.
func (s *Store) Halt(ctx context.Context, fp string) (Halt, error) {
	h, err := scanHalt(s.db.QueryRowContext(ctx, `SELECT `+haltColumns+` FROM halts WHERE fingerprint = ?`, fp))
	if err != nil {
		return Halt{}, fmt.Errorf("store: halt %s: %w", fp, err)
	}
	return h, nil
}

// Halts returns the last n halts, newest first.
func (s *Store) Halts(ctx context.Context, n int) ([]Halt, error) {
	return s.halts(ctx, `ORDER BY fired_at DESC LIMIT ?`, n)
}

func (s *Store) halts(ctx context.Context, where string, args ...any) ([]Halt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+haltColumns+` FROM halts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Halt
	for rows.Next() {
		h, err := scanHalt(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// due returns the halts that need work at now: a post not done, a
// resolution not announced, or a "still failing" reply that the interval
// allows.
func (s *Store) due(ctx context.Context, now time.Time, interval time.Duration) ([]Halt, error) {
	return s.halts(ctx, `WHERE next_attempt_at <= ?1 AND (post_state != 'posted'
		OR (resolved_at != 0 AND (resolve_edited = 0 OR resolve_replied = 0))
		OR (resolved_at = 0 AND firings > firings_at_update AND updated_at <= ?2))
		ORDER BY fired_at`, nanos(now), nanos(now.Add(-interval)))
}

// beginPost records, before the post is sent, that it may be in flight.
func (s *Store) beginPost(ctx context.Context, fp, channel string, summary []byte) error {
	return s.exec(ctx, `UPDATE halts SET post_state = 'posting', post_attempts = post_attempts + 1, channel = ?, summary = ? WHERE fingerprint = ?`,
		channel, summary, fp)
}

// failed counts a failed step and schedules the next attempt.
func (s *Store) failed(ctx context.Context, fp string, next time.Time) error {
	return s.exec(ctx, `UPDATE halts SET failures = failures + 1, next_attempt_at = ? WHERE fingerprint = ?`, nanos(next), fp)
}

// succeeded clears the failures of a halt whose step went through.
func (s *Store) succeeded(ctx context.Context, fp string) error {
	return s.exec(ctx, `UPDATE halts SET failures = 0, next_attempt_at = 0 WHERE fingerprint = ? AND failures != 0`, fp)
}

// posted records the post's ts: from now on the halt is never posted again.
// The firings counted so far are what the post reported.
func (s *Store) posted(ctx context.Context, fp, channel, ts string, at time.Time) error {
	return s.exec(ctx, `UPDATE halts SET post_state = 'posted', channel = ?, ts = ?, posted_at = ?, updated_at = ?, firings_at_update = firings WHERE fingerprint = ?`,
		channel, ts, nanos(at), nanos(at), fp)
}

// stillFailingSent records a "still failing" reply that reported firings.
func (s *Store) stillFailingSent(ctx context.Context, fp string, firings int, at time.Time) error {
	return s.exec(ctx, `UPDATE halts SET updated_at = ?, firings_at_update = ? WHERE fingerprint = ?`, nanos(at), firings, fp)
}

func (s *Store) resolveEdited(ctx context.Context, fp string) error {
	return s.exec(ctx, `UPDATE halts SET resolve_edited = 1 WHERE fingerprint = ?`, fp)
}

func (s *Store) resolveReplied(ctx context.Context, fp string) error {
	return s.exec(ctx, `UPDATE halts SET resolve_replied = 1 WHERE fingerprint = ?`, fp)
}

func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// FiringCounts counts the open halts by source, for the halts-firing gauge.
func (s *Store) FiringCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, count(*) FROM halts WHERE resolved_at = 0 GROUP BY source`)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var src string
		var n int
		if err := rows.Scan(&src, &n); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out[src] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// useDelivery records a webhook delivery id and reports whether it is new.
// Ids older than pruneBefore are forgotten: their timestamps are outside
// the accepted skew, so a replay of them is refused on that ground.
func (s *Store) useDelivery(ctx context.Context, id string, at, pruneBefore time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE received_at < ?`, nanos(pruneBefore)); err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, received_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, nanos(at))
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return n == 1, commit(tx)
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
	// States are the failed states the causes named (see metrics.FailedStates).
	States []string
	// Halt is the fingerprint of the halt the triage was for, if any.
	Halt  string
	Error string
}

// NewTriageRecord summarises a finished triage for the store. r may be nil
// when the triage could not run.
func NewTriageRecord(origin string, s triage.Scope, r *triage.Report, err error, d time.Duration, at time.Time) TriageRecord {
	rec := TriageRecord{At: at, Origin: origin, Scope: s, Outcome: metrics.Outcome(r, err), Duration: d}
	if err != nil {
		rec.Error = err.Error()
	}
	if r == nil {
		return rec
	}
	if !r.StartedAt.IsZero() {
		rec.At = r.StartedAt
	}
	rec.Headline, rec.Counts, rec.States = r.Headline, r.Counts, metrics.FailedStates(r)
	if top, ok := r.TopCause(); ok {
		rec.TopKind, rec.TopKey, rec.TopSummary, rec.TopMinions = top.Kind, top.Key, top.Summary, top.Minions
	}
	return rec
}

// RecordTriage stores a triage's result and returns its id.
func (s *Store) RecordTriage(ctx context.Context, r TriageRecord) (int64, error) {
	counts, err := json.Marshal(r.Counts)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	states := r.States
	if states == nil {
		states = []string{}
	}
	st, err := json.Marshal(states)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO triages (at, origin, scope_kind, scope_name, outcome, duration_ns, headline,
		top_kind, top_key, top_summary, top_minions, counts, states, halt, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nanos(r.At), r.Origin, string(r.Scope.Kind), r.Scope.Name, r.Outcome, int64(r.Duration), r.Headline,
		string(r.TopKind), r.TopKey, r.TopSummary, r.TopMinions, string(counts), string(st), r.Halt, r.Error)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return id, nil
}

// Triages returns the last n triages, newest first.
func (s *Store) Triages(ctx context.Context, n int) ([]TriageRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, origin, scope_kind, scope_name, outcome, duration_ns, headline,
		top_kind, top_key, top_summary, top_minions, counts, states, halt, error FROM triages ORDER BY at DESC, id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []TriageRecord
	for rows.Next() {
		var r TriageRecord
		var at, dur int64
		var kind, topKind, counts, states string
		if err := rows.Scan(&r.ID, &at, &r.Origin, &kind, &r.Scope.Name, &r.Outcome, &dur, &r.Headline,
			&topKind, &r.TopKey, &r.TopSummary, &r.TopMinions, &counts, &states, &r.Halt, &r.Error); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		r.At, r.Duration = fromNanos(at), time.Duration(dur)
		r.Scope.Kind, r.TopKind = triage.ScopeKind(kind), triage.CauseKind(topKind)
		if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
			return nil, fmt.Errorf("store: triage %d counts: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(states), &r.States); err != nil {
			return nil, fmt.Errorf("store: triage %d states: %w", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// StateCounts counts, per failed state, the stored triages since a time
// that named it: the repeat-offender tally to seed the metrics with.
func (s *Store) StateCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT states FROM triages WHERE at >= ? AND states != '[]'`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		var states []string
		if err := json.Unmarshal([]byte(raw), &states); err != nil {
			continue // one unreadable row must not hide the others
		}
		for _, st := range states {
			out[st]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}
