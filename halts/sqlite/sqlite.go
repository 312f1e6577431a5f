// Package sqlite is the embedded store of halts, triage results and
// webhook deliveries: one SQLite file that one Sift process owns.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

var _ halts.Store = (*Store)(nil)

// schemaVersion is the store's PRAGMA user_version; a store written by a
// newer Sift is refused rather than misread.
const schemaVersion = 2

// schema creates the store at version 1; migrations bring it to
// schemaVersion. Times are Unix nanoseconds, 0 when unset. The partial
// unique index is what makes "once per halt" hold even if two notices of
// a new halt race: only one open halt per key can exist.
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

// migrations[i] brings a store from version i+1 to i+2.
var migrations = []string{
	// 2: coalescing (parent, joined), the index of live halts
	// that Due reads, and the indexes that retention and the budget use.
	`ALTER TABLE halts ADD COLUMN parent TEXT NOT NULL DEFAULT '';
	ALTER TABLE halts ADD COLUMN joined INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE halts ADD COLUMN joined_announced INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX halts_live ON halts(fired_at) WHERE parent = '' AND (resolved_at = 0 OR resolve_replied = 0) AND post_state != 'suppressed';
	CREATE INDEX halts_open_scope ON halts(scope_kind, scope_name) WHERE resolved_at = 0 AND parent = '';
	CREATE INDEX halts_parent ON halts(parent, fired_at) WHERE parent != '';
	CREATE INDEX halts_resolved ON halts(resolved_at) WHERE resolved_at != 0;
	CREATE INDEX halts_posted ON halts(posted_at) WHERE posted_at != 0;
	CREATE INDEX halts_fired ON halts(fired_at);
	CREATE INDEX deliveries_received ON deliveries(received_at);`,
}

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	db *sql.DB

	mu     sync.Mutex
	claims map[string]claim
}

// claim is who works on a halt, until when.
type claim struct {
	owner string
	until time.Time
}

// Open opens (creating it if needed, readable by its owner only) the
// store at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	// The driver would create the file with the umask's mode; halts and
	// triages name the fleet's failures, so the file is the owner's only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	f.Close()
	// FULL sync: a halt acknowledged to its source must survive a crash of
	// the machine too. The busy timeout lets `sift history` read while
	// `sift serve` writes.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// One connection serialises the writes, so that the check-then-insert
	// of a firing never races within the process.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, claims: map[string]claim{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// OpenReadOnly opens an existing store for reading only: it creates and
// migrates nothing, so it works for a user who may read the file and not
// write it.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store %s: the directory %s does not exist (is halts.store right? sift serve creates the file, not the directory)", path, filepath.Dir(path))
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s: no store there yet (sift serve creates it)", path)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if v != schemaVersion {
		db.Close()
		return nil, fmt.Errorf("store %s: schema %d, this Sift reads %d (run this version's sift serve once to migrate it)", path, v, schemaVersion)
	}
	return &Store{db: db, claims: map[string]claim{}}, nil
}

func checkPath(path string) error {
	if path == "" {
		return errors.New("store: no path")
	}
	if strings.ContainsAny(path, "?#") {
		return fmt.Errorf("store %s: the path may not contain '?' or '#'", path)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("written by a newer Sift (schema %d, this one knows %d)", v, schemaVersion)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if v == 0 {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		v = 1
	}
	for ; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migrating to schema %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

const haltColumns = `fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at,
	firings, resolved_at, post_state, post_attempts, next_attempt_at, channel, ts, posted_at, updated_at,
	firings_at_update, summary, resolve_edited, resolve_replied, failures, parent, joined, joined_announced`

func scanHalt(row interface{ Scan(...any) error }) (halts.Halt, error) {
	var h halts.Halt
	var kind, state string
	var fired, last, resolved, next, posted, updated int64
	err := row.Scan(&h.Fingerprint, &h.Key, &h.Source, &h.Name, &kind, &h.Scope.Name, &h.Reason, &h.URL, &fired, &last,
		&h.Firings, &resolved, &state, &h.PostAttempts, &next, &h.Channel, &h.TS, &posted, &updated,
		&h.FiringsAtUpdate, &h.Summary, &h.ResolveEdited, &h.ResolveReplied, &h.Failures, &h.Parent, &h.Joined, &h.JoinedAnnounced)
	if err != nil {
		return halts.Halt{}, err
	}
	h.Scope.Kind = triage.ScopeKind(kind)
	h.PostState = halts.PostState(state)
	h.FiredAt, h.LastFiredAt, h.ResolvedAt = halts.FromNanos(fired), halts.FromNanos(last), halts.FromNanos(resolved)
	h.NextAttemptAt, h.PostedAt, h.UpdatedAt = halts.FromNanos(next), halts.FromNanos(posted), halts.FromNanos(updated)
	return h, nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %w", err)
}

// Fire implements halts.Store. A batch (an Alertmanager group can hold
// thousands of alerts) runs on prepared statements, looks each scope's
// open halt up once, and updates each parent once at the end.
func (s *Store) Fire(ctx context.Context, events []halts.Event, now, coalesceSince time.Time) ([]halts.Fired, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	f, err := newFirer(ctx, tx, now, coalesceSince)
	if err != nil {
		return nil, wrap(err)
	}
	defer f.close()
	out := make([]halts.Fired, 0, len(events))
	for _, e := range events {
		r, err := f.fire(ctx, e)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, r)
	}
	if err := f.flush(ctx); err != nil {
		return nil, wrap(err)
	}
	return out, wrap(tx.Commit())
}

// firer records the firings of one batch.
type firer struct {
	tx                 *sql.Tx
	now, coalesceSince time.Time
	byKey, byScope     *sql.Stmt
	again, insert      *sql.Stmt
	// parents maps a scope to its open halt without a parent ("" for
	// none), as looked up or created in this batch.
	parents map[triage.Scope]string
	// bumps counts, per parent, the halts that joined it and the
	// firings of its joined halts in this batch.
	bumps map[string]*bump
}

type bump struct{ joined, firings int }

func newFirer(ctx context.Context, tx *sql.Tx, now, coalesceSince time.Time) (*firer, error) {
	f := &firer{tx: tx, now: now, coalesceSince: coalesceSince, parents: map[triage.Scope]string{}, bumps: map[string]*bump{}}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = tx.PrepareContext(ctx, q)
		return st
	}
	// The few columns a firing needs: reading all of them, twenty
	// thousand times for a large group, costs more than the inserts.
	f.byKey = prep(`SELECT fingerprint, source, name, scope_kind, scope_name, fired_at, last_fired_at, firings, resolved_at, post_state, parent
		FROM halts WHERE key = ? ORDER BY resolved_at = 0 DESC, fired_at DESC LIMIT 1`)
	f.byScope = prep(`SELECT fingerprint FROM halts WHERE scope_kind = ? AND scope_name = ? AND resolved_at = 0 AND parent = ''
		AND (post_state IN ('pending', 'posting') OR (post_state = 'posted' AND posted_at >= ?)) ORDER BY fired_at LIMIT 1`)
	f.again = prep(`UPDATE halts SET firings = firings + 1, last_fired_at = max(last_fired_at, ?) WHERE fingerprint = ?`)
	f.insert = prep(`INSERT INTO halts (fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at, post_state, parent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *firer) close() {
	for _, st := range []*sql.Stmt{f.byKey, f.byScope, f.again, f.insert} {
		if st != nil {
			st.Close()
		}
	}
}

func (f *firer) bump(parent string) *bump {
	b := f.bumps[parent]
	if b == nil {
		b = &bump{}
		f.bumps[parent] = b
	}
	return b
}

func (f *firer) fire(ctx context.Context, e halts.Event) (halts.Fired, error) {
	at := e.At
	if at.IsZero() {
		at = f.now
	}
	last := halts.Halt{Key: e.Key}
	var kind, state string
	var fired, lastFired, resolved int64
	err := f.byKey.QueryRowContext(ctx, e.Key).Scan(&last.Fingerprint, &last.Source, &last.Name, &kind, &last.Scope.Name,
		&fired, &lastFired, &last.Firings, &resolved, &state, &last.Parent)
	last.Scope.Kind, last.PostState = triage.ScopeKind(kind), halts.PostState(state)
	last.FiredAt, last.LastFiredAt, last.ResolvedAt = halts.FromNanos(fired), halts.FromNanos(lastFired), halts.FromNanos(resolved)
	switch {
	case err == nil && last.Open():
		if _, err := f.again.ExecContext(ctx, halts.Nanos(at), last.Fingerprint); err != nil {
			return halts.Fired{}, err
		}
		if last.Parent != "" {
			f.bump(last.Parent).firings++
		}
		last.Firings++
		if at.After(last.LastFiredAt) {
			last.LastFiredAt = at
		}
		return halts.Fired{Halt: last, Result: halts.FireAgain}, nil
	case err == nil && !e.Recurring:
		return halts.Fired{Halt: last, Result: halts.FireIgnored}, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return halts.Fired{}, err
	}
	h := halts.Halt{
		Fingerprint: halts.Fingerprint(e.Key, at), Key: e.Key, Source: e.Source, Name: e.Name, Scope: e.Scope,
		Reason: e.Reason, URL: e.URL, FiredAt: at, LastFiredAt: at, Firings: 1, PostState: halts.PostPending,
	}
	res := halts.FireNew
	parent, known := f.parents[e.Scope]
	if !known {
		err = f.byScope.QueryRowContext(ctx, string(e.Scope.Kind), e.Scope.Name, halts.Nanos(f.coalesceSince)).Scan(&parent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return halts.Fired{}, err
		}
	}
	if parent != "" {
		h.Parent, h.PostState, res = parent, halts.PostJoined, halts.FireJoined
		b := f.bump(parent)
		b.joined++
		b.firings++
	} else {
		parent = h.Fingerprint
	}
	f.parents[e.Scope] = parent
	_, err = f.insert.ExecContext(ctx, h.Fingerprint, h.Key, string(h.Source), h.Name, string(h.Scope.Kind), h.Scope.Name, h.Reason, h.URL,
		halts.Nanos(at), halts.Nanos(at), string(h.PostState), h.Parent)
	if err != nil {
		return halts.Fired{}, err
	}
	return halts.Fired{Halt: h, Result: res}, nil
}

// flush adds the batch's joins and firings to their parents; a parent
// that cleared meanwhile counts nothing more.
func (f *firer) flush(ctx context.Context) error {
	for fp, b := range f.bumps {
		if _, err := f.tx.ExecContext(ctx, `UPDATE halts SET joined = joined + ?, firings = firings + ? WHERE fingerprint = ? AND resolved_at = 0`,
			b.joined, b.firings, fp); err != nil {
			return err
		}
	}
	return nil
}

// Resolve implements halts.Store.
func (s *Store) Resolve(ctx context.Context, e halts.Event, now time.Time) (halts.Halt, bool, error) {
	r, err := s.ResolveAll(ctx, []halts.Event{e}, now)
	if err != nil {
		return halts.Halt{}, false, err
	}
	return r[0].Halt, r[0].OK, nil
}

var _ halts.BatchResolver = (*Store)(nil)

// ResolveAll implements halts.BatchResolver.
func (s *Store) ResolveAll(ctx context.Context, events []halts.Event, now time.Time) ([]halts.Resolved, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	find, err := tx.PrepareContext(ctx, `SELECT fingerprint, source, name, scope_kind, scope_name, fired_at, parent FROM halts WHERE key = ? AND resolved_at = 0`)
	if err != nil {
		return nil, wrap(err)
	}
	defer find.Close()
	set, err := tx.PrepareContext(ctx, `UPDATE halts SET resolved_at = ? WHERE fingerprint = ?`)
	if err != nil {
		return nil, wrap(err)
	}
	defer set.Close()
	out := make([]halts.Resolved, 0, len(events))
	for _, e := range events {
		at := e.At
		if at.IsZero() {
			at = now
		}
		h := halts.Halt{Key: e.Key}
		var kind string
		var fired int64
		err := find.QueryRowContext(ctx, e.Key).Scan(&h.Fingerprint, &h.Source, &h.Name, &kind, &h.Scope.Name, &fired, &h.Parent)
		h.Scope.Kind, h.FiredAt = triage.ScopeKind(kind), halts.FromNanos(fired)
		if errors.Is(err, sql.ErrNoRows) {
			out = append(out, halts.Resolved{})
			continue
		}
		if err != nil {
			return nil, wrap(err)
		}
		// A clock that disagrees with the source must not make a halt
		// end before it began.
		if at.Before(h.FiredAt) {
			at = h.FiredAt
		}
		if _, err := set.ExecContext(ctx, halts.Nanos(at), h.Fingerprint); err != nil {
			return nil, wrap(err)
		}
		h.ResolvedAt = at
		out = append(out, halts.Resolved{Halt: h, OK: true})
	}
	return out, wrap(tx.Commit())
}

// OpenHalts implements halts.Store.
func (s *Store) OpenHalts(ctx context.Context, source halts.Source, name string) ([]halts.Halt, error) {
	return s.halts(ctx, `WHERE resolved_at = 0 AND source = ? AND name = ? ORDER BY fired_at`, string(source), name)
}

// JoinedHalts implements halts.Store.
func (s *Store) JoinedHalts(ctx context.Context, fp string, offset, limit int) ([]halts.Halt, error) {
	// parent != '' lets the planner use the partial index halts_parent.
	return s.halts(ctx, `WHERE parent = ? AND parent != '' ORDER BY fired_at, rowid LIMIT ? OFFSET ?`, fp, limit, offset)
}

// Halt implements halts.Store.
func (s *Store) Halt(ctx context.Context, fp string) (halts.Halt, error) {
	h, err := scanHalt(s.db.QueryRowContext(ctx, `SELECT `+haltColumns+` FROM halts WHERE fingerprint = ?`, fp))
	if errors.Is(err, sql.ErrNoRows) {
		return halts.Halt{}, fmt.Errorf("store: halt %s: %w", fp, halts.ErrNotFound)
	}
	if err != nil {
		return halts.Halt{}, fmt.Errorf("store: halt %s: %w", fp, err)
	}
	return h, nil
}

// Halts implements halts.Store.
func (s *Store) Halts(ctx context.Context, n int) ([]halts.Halt, error) {
	return s.halts(ctx, `ORDER BY fired_at DESC LIMIT ?`, n)
}

func (s *Store) halts(ctx context.Context, where string, args ...any) ([]halts.Halt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+haltColumns+` FROM halts `+where, args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []halts.Halt
	for rows.Next() {
		h, err := scanHalt(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, h)
	}
	return out, wrap(rows.Err())
}

// Due implements halts.Store. The first condition is the halts_live
// index's, so that the query reads the live halts only.
func (s *Store) Due(ctx context.Context, now, stillFailingBefore time.Time, limit int) ([]halts.Halt, error) {
	return s.halts(ctx, `INDEXED BY halts_live
		WHERE parent = '' AND (resolved_at = 0 OR resolve_replied = 0) AND post_state != 'suppressed'
		AND next_attempt_at <= ?1 AND (
			post_state IN ('pending', 'posting')
			OR (post_state = 'posted' AND resolved_at != 0 AND NOT EXISTS (
				SELECT 1 FROM halts j WHERE j.parent = halts.fingerprint AND j.parent != '' AND j.resolved_at = 0))
			OR (post_state = 'posted' AND resolved_at = 0 AND joined > joined_announced)
			OR (post_state = 'posted' AND resolved_at = 0 AND firings > firings_at_update AND updated_at <= ?2))
		ORDER BY fired_at LIMIT ?3`, halts.Nanos(now), halts.Nanos(stillFailingBefore), limit)
}

// Claim implements halts.Store. One process owns the file, so the claims
// live in its memory: they cost no write, and a process that died holds
// none.
func (s *Store) Claim(ctx context.Context, fp, owner string, now time.Time, lease time.Duration) (halts.Halt, bool, error) {
	s.mu.Lock()
	c, held := s.claims[fp]
	if held && c.owner != owner && !c.until.Before(now) {
		s.mu.Unlock()
		return halts.Halt{}, false, nil
	}
	s.claims[fp] = claim{owner: owner, until: now.Add(lease)}
	s.mu.Unlock()
	h, err := s.Halt(ctx, fp)
	if err != nil {
		s.Release(ctx, fp, owner)
		return halts.Halt{}, false, err
	}
	return h, true, nil
}

// Release implements halts.Store.
func (s *Store) Release(_ context.Context, fp, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[fp]; ok && c.owner == owner {
		delete(s.claims, fp)
	}
	return nil
}

// BeginPost implements halts.Store.
func (s *Store) BeginPost(ctx context.Context, fp, channel string, summary []byte) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'posting', post_attempts = post_attempts + 1, channel = ?, summary = ? WHERE fingerprint = ?`,
		channel, summary, fp)
}

// Posted implements halts.Store.
func (s *Store) Posted(ctx context.Context, fp, channel, ts string, at time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'posted', channel = ?, ts = ?, posted_at = ?, updated_at = ?, firings_at_update = firings WHERE fingerprint = ?`,
		channel, ts, halts.Nanos(at), halts.Nanos(at), fp)
}

// Suppress implements halts.Store.
func (s *Store) Suppress(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'suppressed' WHERE fingerprint = ?`, fp)
}

// Failed implements halts.Store.
func (s *Store) Failed(ctx context.Context, fp string, next time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET failures = failures + 1, next_attempt_at = ? WHERE fingerprint = ?`, halts.Nanos(next), fp)
}

// Succeeded implements halts.Store.
func (s *Store) Succeeded(ctx context.Context, fp string) error {
	return s.exec(ctx, `UPDATE halts SET failures = 0, next_attempt_at = 0 WHERE fingerprint = ? AND failures != 0`, fp)
}

// StillFailingSent implements halts.Store.
func (s *Store) StillFailingSent(ctx context.Context, fp string, firings int, at time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET updated_at = ?, firings_at_update = ? WHERE fingerprint = ?`, halts.Nanos(at), firings, fp)
}

// JoinedAnnounced implements halts.Store.
func (s *Store) JoinedAnnounced(ctx context.Context, fp string, n int) error {
	return s.update(ctx, fp, `UPDATE halts SET joined_announced = ? WHERE fingerprint = ?`, n, fp)
}

// ResolveEdited implements halts.Store.
func (s *Store) ResolveEdited(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET resolve_edited = 1 WHERE fingerprint = ?`, fp)
}

// ResolveReplied implements halts.Store.
func (s *Store) ResolveReplied(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET resolve_replied = 1 WHERE fingerprint = ?`, fp)
}

// PostsSince implements halts.Store.
func (s *Store) PostsSince(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM halts INDEXED BY halts_posted WHERE posted_at != 0 AND posted_at >= ?`, halts.Nanos(since)).Scan(&n)
	return n, wrap(err)
}

func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.db.ExecContext(ctx, q, args...)
	return wrap(err)
}

// update runs an UPDATE of the halt fp and says when there is no such halt.
func (s *Store) update(ctx context.Context, fp, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err)
	} else if n == 0 {
		return fmt.Errorf("store: halt %s: %w", fp, halts.ErrNotFound)
	}
	return nil
}

// FiringCounts implements halts.Store.
func (s *Store) FiringCounts(ctx context.Context) (map[halts.Source]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, count(*) FROM halts WHERE resolved_at = 0 GROUP BY source`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := map[halts.Source]int{}
	for rows.Next() {
		var src string
		var n int
		if err := rows.Scan(&src, &n); err != nil {
			return nil, wrap(err)
		}
		out[halts.Source(src)] = n
	}
	return out, wrap(rows.Err())
}

// UseDelivery implements halts.Store.
func (s *Store) UseDelivery(ctx context.Context, id string, at, pruneBefore time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, wrap(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE received_at < ?`, halts.Nanos(pruneBefore)); err != nil {
		return false, wrap(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, received_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, halts.Nanos(at))
	if err != nil {
		return false, wrap(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err)
	}
	return n == 1, wrap(tx.Commit())
}

// RecordTriage implements halts.Store.
func (s *Store) RecordTriage(ctx context.Context, r halts.TriageRecord) (int64, error) {
	counts, err := json.Marshal(r.Counts)
	if err != nil {
		return 0, wrap(err)
	}
	states := r.States
	if states == nil {
		states = []string{}
	}
	st, err := json.Marshal(states)
	if err != nil {
		return 0, wrap(err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO triages (at, origin, scope_kind, scope_name, outcome, duration_ns, headline,
		top_kind, top_key, top_summary, top_minions, counts, states, halt, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		halts.Nanos(r.At), r.Origin, string(r.Scope.Kind), r.Scope.Name, r.Outcome, int64(r.Duration), r.Headline,
		string(r.TopKind), r.TopKey, r.TopSummary, r.TopMinions, string(counts), string(st), r.Halt, r.Error)
	if err != nil {
		return 0, wrap(err)
	}
	id, err := res.LastInsertId()
	return id, wrap(err)
}

// Triages implements halts.Store.
func (s *Store) Triages(ctx context.Context, n int) ([]halts.TriageRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+halts.TriageColumns+` FROM triages ORDER BY at DESC, id DESC LIMIT ?`, n)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []halts.TriageRecord
	for rows.Next() {
		r, err := halts.ScanTriage(rows.Scan)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err())
}

// StateCounts implements halts.Store.
func (s *Store) StateCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT states FROM triages WHERE at >= ? AND states != '[]'`, halts.Nanos(since))
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, wrap(err)
		}
		var states []string
		if err := json.Unmarshal([]byte(raw), &states); err != nil {
			continue // one unreadable row must not hide the others
		}
		for _, st := range states {
			out[st]++
		}
	}
	return out, wrap(rows.Err())
}

// Prune implements halts.Store.
func (s *Store) Prune(ctx context.Context, before time.Time) (halts.Pruned, error) {
	var p halts.Pruned
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return p, wrap(err)
	}
	defer tx.Rollback()
	b := halts.Nanos(before)
	// A cleared halt goes once its announcement is done (or was never
	// owed: joined and suppressed halts have no post to edit), and not
	// while a halt that joined it is open or its own parent is.
	res, err := tx.ExecContext(ctx, `DELETE FROM halts WHERE resolved_at != 0 AND resolved_at < ?1
		AND (resolve_replied = 1 OR post_state IN ('joined', 'suppressed'))
		AND NOT EXISTS (SELECT 1 FROM halts j WHERE j.parent = halts.fingerprint AND j.parent != '' AND j.resolved_at = 0)
		AND (parent = '' OR NOT EXISTS (SELECT 1 FROM halts p WHERE p.fingerprint = halts.parent AND p.resolved_at = 0))`, b)
	if err != nil {
		return p, wrap(err)
	}
	p.Halts, _ = res.RowsAffected()
	if res, err = tx.ExecContext(ctx, `DELETE FROM triages WHERE at < ?`, b); err != nil {
		return p, wrap(err)
	}
	p.Triages, _ = res.RowsAffected()
	if res, err = tx.ExecContext(ctx, `DELETE FROM deliveries WHERE received_at < ?`, b); err != nil {
		return p, wrap(err)
	}
	p.Deliveries, _ = res.RowsAffected()
	return p, wrap(tx.Commit())
}

// Lead implements halts.Store: one process owns the file, so it leads.
func (s *Store) Lead(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}
