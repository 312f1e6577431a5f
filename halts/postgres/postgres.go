// Package postgres is the store of halts, triage results and webhook
// deliveries that several replicas of Sift share: a PostgreSQL database.
//
// What keeps the replicas from doubling or losing a halt lives in the
// database:
//   - Fire and Resolve run under one transaction-scoped advisory lock, so
//     two replicas that receive the same notice at once record one halt
//     (and the partial unique index on open keys backs it);
//   - Claim is one conditional UPDATE: a halt's row lock serialises
//     concurrent claims, and the loser re-reads the winner's claim;
//   - each Store holds a session of its own with a session-level advisory
//     lock that says it is alive. A claim made by a session that is gone
//     (the replica died) is free at once, not only when its lease ends;
//   - Lead is pg_try_advisory_lock on that session: the leader keeps the
//     lock while its session lives, and PostgreSQL drops it the moment the
//     leader's connection does, so another replica leads at its next try.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

var (
	_ halts.Store         = (*Store)(nil)
	_ halts.BatchResolver = (*Store)(nil)
)

// Advisory lock namespaces (the first key of the two-key form), so that
// Sift's locks never meet another application's in the same database.
const (
	lockFire    int32 = 0x53494601 // Fire and Resolve
	lockSession int32 = 0x53494602 // a Store's liveness; second key: its session id
	lockLead    int32 = 0x53494603 // leadership; second key: hash of the lease name
	lockMigrate int32 = 0x53494604 // schema migrations
)

// connectTimeout bounds a connection attempt and the check that the
// session still lives.
const connectTimeout = 5 * time.Second

// migrations[i] brings the schema from version i to i+1. Times are Unix
// nanoseconds, 0 when unset, as in the SQLite store.
var migrations = []string{
	`CREATE TABLE halts (
		fingerprint       TEXT PRIMARY KEY,
		seq               BIGINT GENERATED ALWAYS AS IDENTITY,
		key               TEXT NOT NULL,
		source            TEXT NOT NULL,
		name              TEXT NOT NULL,
		scope_kind        TEXT NOT NULL,
		scope_name        TEXT NOT NULL,
		reason            TEXT NOT NULL DEFAULT '',
		url               TEXT NOT NULL DEFAULT '',
		fired_at          BIGINT NOT NULL,
		last_fired_at     BIGINT NOT NULL,
		firings           INTEGER NOT NULL DEFAULT 1,
		resolved_at       BIGINT NOT NULL DEFAULT 0,
		post_state        TEXT NOT NULL DEFAULT 'pending',
		post_attempts     INTEGER NOT NULL DEFAULT 0,
		next_attempt_at   BIGINT NOT NULL DEFAULT 0,
		channel           TEXT NOT NULL DEFAULT '',
		ts                TEXT NOT NULL DEFAULT '',
		posted_at         BIGINT NOT NULL DEFAULT 0,
		updated_at        BIGINT NOT NULL DEFAULT 0,
		firings_at_update INTEGER NOT NULL DEFAULT 0,
		summary           BYTEA,
		resolve_edited    BOOLEAN NOT NULL DEFAULT false,
		resolve_replied   BOOLEAN NOT NULL DEFAULT false,
		failures          INTEGER NOT NULL DEFAULT 0,
		parent            TEXT NOT NULL DEFAULT '',
		joined            INTEGER NOT NULL DEFAULT 0,
		joined_announced  INTEGER NOT NULL DEFAULT 0,
		claim_owner       TEXT NOT NULL DEFAULT '',
		claim_until       BIGINT NOT NULL DEFAULT 0,
		claim_session     BIGINT NOT NULL DEFAULT 0
	);
	CREATE UNIQUE INDEX halts_open_key ON halts(key) WHERE resolved_at = 0;
	CREATE INDEX halts_key ON halts(key, fired_at);
	CREATE INDEX halts_live ON halts(fired_at) WHERE parent = '' AND (resolved_at = 0 OR NOT resolve_replied) AND post_state != 'suppressed';
	CREATE INDEX halts_open_scope ON halts(scope_kind, scope_name) WHERE resolved_at = 0 AND parent = '';
	CREATE INDEX halts_parent ON halts(parent, fired_at, seq) WHERE parent != '';
	CREATE INDEX halts_resolved ON halts(resolved_at) WHERE resolved_at != 0;
	CREATE INDEX halts_posted ON halts(posted_at) WHERE posted_at != 0;
	CREATE INDEX halts_fired ON halts(fired_at);
	CREATE TABLE triages (
		id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at          BIGINT NOT NULL,
		origin      TEXT NOT NULL,
		scope_kind  TEXT NOT NULL,
		scope_name  TEXT NOT NULL,
		outcome     TEXT NOT NULL,
		duration_ns BIGINT NOT NULL,
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
	CREATE INDEX triages_at ON triages(at);
	CREATE TABLE deliveries (
		id          TEXT PRIMARY KEY,
		received_at BIGINT NOT NULL
	);
	CREATE INDEX deliveries_received ON deliveries(received_at);`,
}

// Options configure Open.
type Options struct {
	// Password is the database user's, when the URL does not carry it
	// (it should not: the URL is printed, the password never is).
	Password string
	// ReadOnly opens for reading (sift history): nothing is created or
	// migrated, and no session is held.
	ReadOnly bool
}

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	where   string // the URL without its password, for errors

	// mu guards the session connection: a pgx.Conn is not safe for
	// concurrent use, so its users take turns, as they would for a pool's
	// single connection.
	mu      sync.Mutex
	session *pgx.Conn
	id      int32
	// leads maps a lease to the owner that holds it on this session.
	leads map[string]string
}

// Redacted returns the URL with its password, if any, masked.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// Open connects to the database at rawURL, brings its schema up to date
// (unless read-only) and starts the session that marks this Store alive.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	where := Redacted(rawURL)
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgconn masks the password in its parse errors.
		return nil, fmt.Errorf("store %s: %w", where, err)
	}
	if o.Password != "" {
		cfg.ConnConfig.Password = o.Password
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		// Which replica holds a claim or a lock, in pg_stat_activity.
		cfg.ConnConfig.RuntimeParams["application_name"] = fmt.Sprintf("sift-%d", os.Getpid())
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database that does not answer (a cut network) must not hold
		// a claim or the leadership check for the kernel's TCP timeout.
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.MaxConns = 8
	cfg.HealthCheckPeriod = 5 * time.Second
	s := &Store{connCfg: cfg.ConnConfig.Copy(), where: where, leads: map[string]string{}}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.wrapOpen(err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, s.wrapOpen(err)
	}
	if o.ReadOnly {
		if err := s.checkVersion(ctx); err != nil {
			s.pool.Close()
			return nil, err
		}
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("store %s: %w", where, err)
	}
	s.mu.Lock()
	_, err = s.sessionLocked(ctx)
	s.mu.Unlock()
	if err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// wrapOpen names the store and, for the common mistakes, the fix.
func (s *Store) wrapOpen(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Errorf("store %s: %w (check the user in halts.store and the password in halts.store_password_file or _env)", s.where, err)
		case "3D000":
			return fmt.Errorf("store %s: %w (create the database, e.g. createdb -O sift sift)", s.where, err)
		}
	}
	return fmt.Errorf("store %s: %w", s.where, err)
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Replicas starting together migrate one after the other.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockMigrate); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("written by a newer Sift (schema %d, this one knows %d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating to schema %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// checkVersion refuses a database this Sift would misread.
func (s *Store) checkVersion(ctx context.Context) error {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		return fmt.Errorf("store %s: no store there yet (sift serve creates it)", s.where)
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", s.where, err)
	}
	if v != len(migrations) {
		return fmt.Errorf("store %s: schema %d, this Sift reads %d (run this version's sift serve once to migrate it)", s.where, v, len(migrations))
	}
	return nil
}

// sessionLocked returns the live session connection, connecting (with a
// fresh id, and no lease held) when there is none or it broke. s.mu is held.
func (s *Store) sessionLocked(ctx context.Context) (*pgx.Conn, error) {
	if s.session != nil {
		pctx, cancel := context.WithTimeout(ctx, connectTimeout)
		_, err := s.session.Exec(pctx, `SELECT 1`)
		cancel()
		if err == nil {
			return s.session, nil
		}
		_ = s.session.Close(context.WithoutCancel(ctx))
		s.session = nil
		clear(s.leads) // the locks went with the connection
	}
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, s.wrapOpen(err)
	}
	for range 16 {
		id := randomID()
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockSession, id).Scan(&ok); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil, wrap(err)
		}
		if ok {
			s.session, s.id = conn, id
			return conn, nil
		}
	}
	_ = conn.Close(context.WithoutCancel(ctx))
	return nil, errors.New("store: no free session id")
}

// randomID is a session id: positive, so that it reads the same as an oid
// in pg_locks.
func randomID() int32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int32(binary.BigEndian.Uint32(b[:]) &^ (1 << 31))
}

// Ping checks that the database answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { return wrap(s.pool.Ping(ctx)) }

// Close ends the session (its claims and leads free at once) and the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.session != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Unlocked before the connection closes: the server frees the
		// locks of a closed connection only when its process has ended,
		// and the next leader should not wait for that.
		_, _ = s.session.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		_ = s.session.Close(ctx)
		cancel()
		s.session = nil
	}
	s.mu.Unlock()
	s.pool.Close()
	return nil
}

const haltColumns = `fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at,
	firings, resolved_at, post_state, post_attempts, next_attempt_at, channel, ts, posted_at, updated_at,
	firings_at_update, summary, resolve_edited, resolve_replied, failures, parent, joined, joined_announced`

func scanHalt(row pgx.Row) (halts.Halt, error) {
	var h halts.Halt
	var kind, state, source string
	var fired, last, resolved, next, posted, updated int64
	err := row.Scan(&h.Fingerprint, &h.Key, &source, &h.Name, &kind, &h.Scope.Name, &h.Reason, &h.URL, &fired, &last,
		&h.Firings, &resolved, &state, &h.PostAttempts, &next, &h.Channel, &h.TS, &posted, &updated,
		&h.FiringsAtUpdate, &h.Summary, &h.ResolveEdited, &h.ResolveReplied, &h.Failures, &h.Parent, &h.Joined, &h.JoinedAnnounced)
	if err != nil {
		return halts.Halt{}, err
	}
	h.Source = halts.Source(source)
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

// inTx runs f in a transaction, again when PostgreSQL asks for it (a
// serialization failure or a deadlock it broke).
func (s *Store) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, f)
		var pe *pgconn.PgError
		if attempt < 3 && errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
			continue
		}
		return err
	}
}

// Fire implements halts.Store.
func (s *Store) Fire(ctx context.Context, events []halts.Event, now, coalesceSince time.Time) ([]halts.Fired, error) {
	var out []halts.Fired
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = make([]halts.Fired, 0, len(events))
		// One replica's notices at a time: the read-then-insert of a new
		// halt, and the search for a halt of the same scope to join, must
		// not interleave with another replica's.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockFire); err != nil {
			return err
		}
		for _, e := range events {
			f, err := fire(ctx, tx, e, now, coalesceSince)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

func fire(ctx context.Context, tx pgx.Tx, e halts.Event, now, coalesceSince time.Time) (halts.Fired, error) {
	at := e.At
	if at.IsZero() {
		at = now
	}
	last, err := scanHalt(tx.QueryRow(ctx, `SELECT `+haltColumns+` FROM halts WHERE key = $1
		ORDER BY resolved_at = 0 DESC, fired_at DESC LIMIT 1`, e.Key))
	switch {
	case err == nil && last.Open():
		if _, err := tx.Exec(ctx, `UPDATE halts SET firings = firings + 1, last_fired_at = greatest(last_fired_at, $1)
			WHERE fingerprint = $2 OR (fingerprint = $3 AND resolved_at = 0)`, halts.Nanos(at), last.Fingerprint, last.Parent); err != nil {
			return halts.Fired{}, err
		}
		last.Firings++
		if at.After(last.LastFiredAt) {
			last.LastFiredAt = at
		}
		return halts.Fired{Halt: last, Result: halts.FireAgain}, nil
	case err == nil && !e.Recurring:
		return halts.Fired{Halt: last, Result: halts.FireIgnored}, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return halts.Fired{}, err
	}
	h := halts.Halt{
		Fingerprint: halts.Fingerprint(e.Key, at), Key: e.Key, Source: e.Source, Name: e.Name, Scope: e.Scope,
		Reason: e.Reason, URL: e.URL, FiredAt: at, LastFiredAt: at, Firings: 1, PostState: halts.PostPending,
	}
	res := halts.FireNew
	var parent string
	err = tx.QueryRow(ctx, `SELECT fingerprint FROM halts WHERE scope_kind = $1 AND scope_name = $2 AND resolved_at = 0 AND parent = ''
		AND (post_state IN ('pending', 'posting') OR (post_state = 'posted' AND posted_at >= $3)) ORDER BY fired_at, seq LIMIT 1`,
		string(e.Scope.Kind), e.Scope.Name, halts.Nanos(coalesceSince)).Scan(&parent)
	switch {
	case err == nil:
		h.Parent, h.PostState, res = parent, halts.PostJoined, halts.FireJoined
		if _, err := tx.Exec(ctx, `UPDATE halts SET joined = joined + 1, firings = firings + 1 WHERE fingerprint = $1`, parent); err != nil {
			return halts.Fired{}, err
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return halts.Fired{}, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO halts (fingerprint, key, source, name, scope_kind, scope_name, reason, url, fired_at, last_fired_at, post_state, parent)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		h.Fingerprint, h.Key, string(h.Source), h.Name, string(h.Scope.Kind), h.Scope.Name, h.Reason, h.URL, halts.Nanos(at), halts.Nanos(at), string(h.PostState), h.Parent)
	if err != nil {
		return halts.Fired{}, err
	}
	return halts.Fired{Halt: h, Result: res}, nil
}

// Resolve implements halts.Store.
func (s *Store) Resolve(ctx context.Context, e halts.Event, now time.Time) (halts.Halt, bool, error) {
	got, err := s.ResolveAll(ctx, []halts.Event{e}, now)
	if err != nil {
		return halts.Halt{}, false, err
	}
	return got[0].Halt, got[0].OK, nil
}

// ResolveAll implements halts.BatchResolver: the notices of an
// Alertmanager group in one transaction.
func (s *Store) ResolveAll(ctx context.Context, events []halts.Event, now time.Time) ([]halts.Resolved, error) {
	var out []halts.Resolved
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = make([]halts.Resolved, 0, len(events))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockFire); err != nil {
			return err
		}
		for _, e := range events {
			h, ok, err := resolve(ctx, tx, e, now)
			if err != nil {
				return err
			}
			out = append(out, halts.Resolved{Halt: h, OK: ok})
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

func resolve(ctx context.Context, tx pgx.Tx, e halts.Event, now time.Time) (halts.Halt, bool, error) {
	at := e.At
	if at.IsZero() {
		at = now
	}
	h, err := scanHalt(tx.QueryRow(ctx, `SELECT `+haltColumns+` FROM halts WHERE key = $1 AND resolved_at = 0`, e.Key))
	if errors.Is(err, pgx.ErrNoRows) {
		return halts.Halt{}, false, nil
	}
	if err != nil {
		return halts.Halt{}, false, err
	}
	// A clock that disagrees with the source must not make a halt end
	// before it began.
	if at.Before(h.FiredAt) {
		at = h.FiredAt
	}
	if _, err := tx.Exec(ctx, `UPDATE halts SET resolved_at = $1 WHERE fingerprint = $2`, halts.Nanos(at), h.Fingerprint); err != nil {
		return halts.Halt{}, false, err
	}
	h.ResolvedAt = at
	return h, true, nil
}

// OpenHalts implements halts.Store.
func (s *Store) OpenHalts(ctx context.Context, source halts.Source, name string) ([]halts.Halt, error) {
	return s.halts(ctx, `WHERE resolved_at = 0 AND source = $1 AND name = $2 ORDER BY fired_at, seq`, string(source), name)
}

// JoinedHalts implements halts.Store.
func (s *Store) JoinedHalts(ctx context.Context, fp string, offset, limit int) ([]halts.Halt, error) {
	return s.halts(ctx, `WHERE parent = $1 ORDER BY fired_at, seq LIMIT $2 OFFSET $3`, fp, limit, offset)
}

// Halt implements halts.Store.
func (s *Store) Halt(ctx context.Context, fp string) (halts.Halt, error) {
	h, err := scanHalt(s.pool.QueryRow(ctx, `SELECT `+haltColumns+` FROM halts WHERE fingerprint = $1`, fp))
	if errors.Is(err, pgx.ErrNoRows) {
		return halts.Halt{}, fmt.Errorf("store: halt %s: %w", fp, halts.ErrNotFound)
	}
	if err != nil {
		return halts.Halt{}, fmt.Errorf("store: halt %s: %w", fp, err)
	}
	return h, nil
}

// Halts implements halts.Store.
func (s *Store) Halts(ctx context.Context, n int) ([]halts.Halt, error) {
	return s.halts(ctx, `ORDER BY fired_at DESC, seq DESC LIMIT $1`, n)
}

func (s *Store) halts(ctx context.Context, where string, args ...any) ([]halts.Halt, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+haltColumns+` FROM halts `+where, args...)
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

// Due implements halts.Store. The first conditions are the halts_live
// index's, so that the query reads the live halts only.
func (s *Store) Due(ctx context.Context, now, stillFailingBefore time.Time, limit int) ([]halts.Halt, error) {
	return s.halts(ctx, `WHERE parent = '' AND (resolved_at = 0 OR NOT resolve_replied) AND post_state != 'suppressed'
		AND next_attempt_at <= $1 AND (
			post_state IN ('pending', 'posting')
			OR (post_state = 'posted' AND resolved_at != 0 AND NOT EXISTS (
				SELECT 1 FROM halts j WHERE j.parent = halts.fingerprint AND j.resolved_at = 0))
			OR (post_state = 'posted' AND resolved_at = 0 AND joined > joined_announced)
			OR (post_state = 'posted' AND resolved_at = 0 AND firings > firings_at_update AND updated_at <= $2))
		ORDER BY fired_at, seq LIMIT $3`, halts.Nanos(now), halts.Nanos(stillFailingBefore), limit)
}

// Claim implements halts.Store. The UPDATE takes the halt's row lock; a
// concurrent claim waits for it and then re-checks the condition against
// the claim just made (READ COMMITTED re-evaluates the WHERE), so exactly
// one claimer wins. A claim is free when its lease ended or when the
// session of the Store that made it is gone.
func (s *Store) Claim(ctx context.Context, fp, owner string, now time.Time, lease time.Duration) (halts.Halt, bool, error) {
	s.mu.Lock()
	_, err := s.sessionLocked(ctx)
	id := s.id
	s.mu.Unlock()
	if err != nil {
		return halts.Halt{}, false, err
	}
	h, err := scanHalt(s.pool.QueryRow(ctx, `UPDATE halts SET claim_owner = $1, claim_until = $2, claim_session = $3
		WHERE fingerprint = $4 AND (claim_owner = '' OR claim_owner = $1 OR claim_until < $5
			OR NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
				AND classid::bigint = $6 AND objid::bigint = halts.claim_session AND objsubid = 2))
		RETURNING `+haltColumns, owner, halts.Nanos(now.Add(lease)), id, fp, halts.Nanos(now), lockSession))
	if err == nil {
		return h, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return halts.Halt{}, false, wrap(err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM halts WHERE fingerprint = $1)`, fp).Scan(&exists); err != nil {
		return halts.Halt{}, false, wrap(err)
	}
	if !exists {
		return halts.Halt{}, false, fmt.Errorf("store: halt %s: %w", fp, halts.ErrNotFound)
	}
	return halts.Halt{}, false, nil
}

// Release implements halts.Store.
func (s *Store) Release(ctx context.Context, fp, owner string) error {
	return s.exec(ctx, `UPDATE halts SET claim_owner = '', claim_until = 0, claim_session = 0 WHERE fingerprint = $1 AND claim_owner = $2`, fp, owner)
}

// BeginPost implements halts.Store.
func (s *Store) BeginPost(ctx context.Context, fp, channel string, summary []byte) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'posting', post_attempts = post_attempts + 1, channel = $1, summary = $2 WHERE fingerprint = $3`,
		channel, summary, fp)
}

// Posted implements halts.Store.
func (s *Store) Posted(ctx context.Context, fp, channel, ts string, at time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'posted', channel = $1, ts = $2, posted_at = $3, updated_at = $3, firings_at_update = firings WHERE fingerprint = $4`,
		channel, ts, halts.Nanos(at), fp)
}

// Suppress implements halts.Store.
func (s *Store) Suppress(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET post_state = 'suppressed' WHERE fingerprint = $1`, fp)
}

// Failed implements halts.Store.
func (s *Store) Failed(ctx context.Context, fp string, next time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET failures = failures + 1, next_attempt_at = $1 WHERE fingerprint = $2`, halts.Nanos(next), fp)
}

// Succeeded implements halts.Store.
func (s *Store) Succeeded(ctx context.Context, fp string) error {
	return s.exec(ctx, `UPDATE halts SET failures = 0, next_attempt_at = 0 WHERE fingerprint = $1 AND failures != 0`, fp)
}

// StillFailingSent implements halts.Store.
func (s *Store) StillFailingSent(ctx context.Context, fp string, firings int, at time.Time) error {
	return s.update(ctx, fp, `UPDATE halts SET updated_at = $1, firings_at_update = $2 WHERE fingerprint = $3`, halts.Nanos(at), firings, fp)
}

// JoinedAnnounced implements halts.Store.
func (s *Store) JoinedAnnounced(ctx context.Context, fp string, n int) error {
	return s.update(ctx, fp, `UPDATE halts SET joined_announced = $1 WHERE fingerprint = $2`, n, fp)
}

// ResolveEdited implements halts.Store.
func (s *Store) ResolveEdited(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET resolve_edited = true WHERE fingerprint = $1`, fp)
}

// ResolveReplied implements halts.Store.
func (s *Store) ResolveReplied(ctx context.Context, fp string) error {
	return s.update(ctx, fp, `UPDATE halts SET resolve_replied = true WHERE fingerprint = $1`, fp)
}

// PostsSince implements halts.Store.
func (s *Store) PostsSince(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM halts WHERE posted_at != 0 AND posted_at >= $1`, halts.Nanos(since)).Scan(&n)
	return n, wrap(err)
}

func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.pool.Exec(ctx, q, args...)
	return wrap(err)
}

// update runs an UPDATE of the halt fp and says when there is no such halt.
func (s *Store) update(ctx context.Context, fp, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: halt %s: %w", fp, halts.ErrNotFound)
	}
	return nil
}

// FiringCounts implements halts.Store.
func (s *Store) FiringCounts(ctx context.Context) (map[halts.Source]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT source, count(*) FROM halts WHERE resolved_at = 0 GROUP BY source`)
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

// UseDelivery implements halts.Store. The primary key decides between two
// replicas that receive the same delivery.
func (s *Store) UseDelivery(ctx context.Context, id string, at, pruneBefore time.Time) (bool, error) {
	var fresh bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE received_at < $1`, halts.Nanos(pruneBefore)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO deliveries (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, halts.Nanos(at))
		if err != nil {
			return err
		}
		fresh = tag.RowsAffected() == 1
		return nil
	})
	return fresh, wrap(err)
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
	var id int64
	err = s.pool.QueryRow(ctx, `INSERT INTO triages (at, origin, scope_kind, scope_name, outcome, duration_ns, headline,
		top_kind, top_key, top_summary, top_minions, counts, states, halt, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
		halts.Nanos(r.At), r.Origin, string(r.Scope.Kind), r.Scope.Name, r.Outcome, int64(r.Duration), r.Headline,
		string(r.TopKind), r.TopKey, r.TopSummary, r.TopMinions, string(counts), string(st), r.Halt, r.Error).Scan(&id)
	return id, wrap(err)
}

// Triages implements halts.Store.
func (s *Store) Triages(ctx context.Context, n int) ([]halts.TriageRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+halts.TriageColumns+` FROM triages ORDER BY at DESC, id DESC LIMIT $1`, n)
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
	rows, err := s.pool.Query(ctx, `SELECT states FROM triages WHERE at >= $1 AND states != '[]'`, halts.Nanos(since))
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
	b := halts.Nanos(before)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p = halts.Pruned{}
		// A cleared halt goes once its announcement is done (or was never
		// owed: joined and suppressed halts have no post to edit), and not
		// while a halt that joined it is open or its own parent is.
		tag, err := tx.Exec(ctx, `DELETE FROM halts WHERE resolved_at != 0 AND resolved_at < $1
			AND (resolve_replied OR post_state IN ('joined', 'suppressed'))
			AND NOT EXISTS (SELECT 1 FROM halts j WHERE j.parent = halts.fingerprint AND j.resolved_at = 0)
			AND (parent = '' OR NOT EXISTS (SELECT 1 FROM halts p WHERE p.fingerprint = halts.parent AND p.resolved_at = 0))`, b)
		if err != nil {
			return err
		}
		p.Halts = tag.RowsAffected()
		if tag, err = tx.Exec(ctx, `DELETE FROM triages WHERE at < $1`, b); err != nil {
			return err
		}
		p.Triages = tag.RowsAffected()
		if tag, err = tx.Exec(ctx, `DELETE FROM deliveries WHERE received_at < $1`, b); err != nil {
			return err
		}
		p.Deliveries = tag.RowsAffected()
		return nil
	})
	return p, wrap(err)
}

// Lead implements halts.Store with a session-level advisory lock per
// lease: the leader holds it as long as its session lives, whatever ttl
// says, and loses it with the session (a crash, a restart, a network cut),
// when another replica's next Lead takes it.
func (s *Store) Lead(ctx context.Context, lease, owner string, _ time.Time, _ time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.sessionLocked(ctx)
	if err != nil {
		return false, err
	}
	if holder, ok := s.leads[lease]; ok {
		return holder == owner, nil
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockLead, leaseKey(lease)).Scan(&ok); err != nil {
		return false, wrap(err)
	}
	if ok {
		s.leads[lease] = owner
	}
	return ok, nil
}

// leaseKey is the advisory lock key of a lease name.
func leaseKey(lease string) int32 {
	h := fnv.New32a()
	h.Write([]byte(lease))
	return int32(h.Sum32())
}
