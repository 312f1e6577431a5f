package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/sqlite"
	"github.com/sift-chatops/sift/halts/storetest"
	"github.com/sift-chatops/sift/triage"
)

func open(t *testing.T) halts.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sift.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestStoreRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sift.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "newer Sift") {
		t.Errorf("Open = %v, want a refusal of the newer schema", err)
	}
}

func TestStoreRefusesURIPaths(t *testing.T) {
	for _, p := range []string{"", "sift.db?mode=ro", "sift#1.db"} {
		if s, err := sqlite.Open(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) accepted", p)
		}
	}
}

// TestMigratesVersion1 opens a store written by the previous Sift: its
// halts are kept and the new columns take their defaults.
func TestMigratesVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sift.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile(filepath.Join("testdata", "schema-v1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(v1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.Halt(context.Background(), "5f1c2a9be07d4c11")
	if err != nil {
		t.Fatal(err)
	}
	if h.Key != "pipeline/halt-1" || h.PostState != halts.PostPosted || h.TS != "1761127200.000001" || h.Parent != "" || h.Joined != 0 {
		t.Errorf("migrated halt %+v", h)
	}
	now := time.Date(2025, 10, 22, 11, 0, 0, 0, time.UTC)
	f, err := s.Fire(context.Background(), []halts.Event{{Source: halts.SourcePipeline, Key: "pipeline/halt-2", Name: "x",
		Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}, Firing: true}}, now, now.Add(-time.Hour))
	if err != nil || f[0].Result != halts.FireJoined {
		t.Errorf("firing on the migrated store = %+v, %v; want it to join the open ams01 halt", f, err)
	}
}

// TestFileIsPrivate: the store names the fleet's failures; only its owner
// reads it, whatever the umask.
func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sift.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A write makes SQLite create the journal files too.
	if _, err := s.RecordTriage(context.Background(), halts.TriageRecord{At: time.Now(), Origin: halts.OriginSlack}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := sqlite.OpenReadOnly(ctx, filepath.Join(dir, "missing", "sift.db")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v, want it named", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("OpenReadOnly created the directory")
	}
	path := filepath.Join(dir, "sift.db")
	if _, err := sqlite.OpenReadOnly(ctx, path); err == nil || !strings.Contains(err.Error(), "no store there yet") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("OpenReadOnly created the file")
	}
	w, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.RecordTriage(ctx, halts.TriageRecord{At: time.Now(), Origin: halts.OriginSlack, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if recs, err := r.Triages(ctx, 10); err != nil || len(recs) != 1 {
		t.Errorf("read-only Triages = %d, %v", len(recs), err)
	}
	if _, err := r.RecordTriage(ctx, halts.TriageRecord{Origin: halts.OriginSlack}); err == nil {
		t.Error("a read-only store accepted a write")
	}
}

// TestDueReadsTheLiveIndex: Due is served by the partial index of live
// halts (the query names it; SQLite refuses a query whose index cannot
// serve it), so a store of many cleared halts is not scanned whole.
func TestDueReadsTheLiveIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sift.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT fingerprint FROM halts INDEXED BY halts_live
		WHERE parent = '' AND (resolved_at = 0 OR resolve_replied = 0) AND post_state != 'suppressed' AND next_attempt_at <= 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "halts_live") {
		t.Errorf("plan %q, want the halts_live index", got)
	}
	if _, err := s.Due(context.Background(), time.Now(), time.Now(), 10); err != nil {
		t.Errorf("Due: %v", err)
	}
}

// TestReopenDropsClaims: a claim held by a process that died does not
// hold up the next one, which owns the file alone.
func TestReopenDropsClaims(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sift.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)
	f, err := s.Fire(ctx, []halts.Event{{Source: halts.SourcePipeline, Key: "p/1", Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}, Firing: true}}, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Claim(ctx, f[0].Halt.Fingerprint, "dead", now, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok, err := s.Claim(ctx, f[0].Halt.Fingerprint, "next", now.Add(time.Minute), time.Hour); err != nil || !ok {
		t.Errorf("Claim after a reopen = %v, %v; want the dead process's claim gone", ok, err)
	}
}
