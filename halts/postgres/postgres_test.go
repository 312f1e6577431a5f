package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/postgres"
	"github.com/sift-chatops/sift/halts/storetest"
	"github.com/sift-chatops/sift/internal/pgtest"
	"github.com/sift-chatops/sift/triage"
)

var t0 = time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)

// open opens the store of database db as the replica called name (its
// connections' application_name).
func open(t *testing.T, srv *pgtest.Server, db, name string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), srv.URL(db)+"&application_name="+name, postgres.Options{Password: pgtest.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func event(key, scope string) halts.Event {
	return halts.Event{Source: halts.SourcePipeline, Key: key, Name: "release", Firing: true,
		Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: scope}}
}

// TestStore runs the conformance suite, then what only a shared database
// has to show: two replicas (two Stores on one database) at once.
func TestStore(t *testing.T) {
	srv := pgtest.Start(t)

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) halts.Store { return open(t, srv, srv.CreateDB(t), "a") })
	})

	t.Run("ReplicasFireOneHalt", func(t *testing.T) {
		db := srv.CreateDB(t)
		a, b := open(t, srv, db, "a"), open(t, srv, db, "b")
		// Each halt notice reaches both replicas twice, all at once.
		const notices = 20
		results := make(chan halts.FireResult, notices*4)
		var wg sync.WaitGroup
		for i := range notices {
			for _, s := range []*postgres.Store{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.Fire(context.Background(), []halts.Event{event(fmt.Sprintf("p/%d", i), fmt.Sprintf("dc%d", i))}, t0, t0)
					if err != nil {
						t.Error(err)
						return
					}
					results <- got[0].Result
				}()
			}
		}
		wg.Wait()
		close(results)
		count := map[halts.FireResult]int{}
		for r := range results {
			count[r]++
		}
		if count[halts.FireNew] != notices || count[halts.FireAgain] != 3*notices {
			t.Errorf("results %v: want %d new halts and %d repeats", count, notices, 3*notices)
		}
		hs, err := a.Halts(context.Background(), 100)
		if err != nil || len(hs) != notices {
			t.Fatalf("Halts = %d, %v; want %d", len(hs), err, notices)
		}
		for _, h := range hs {
			if h.Firings != 4 {
				t.Errorf("halt %s: %d firings, want 4", h.Key, h.Firings)
			}
		}
	})

	t.Run("ReplicasClaimOnce", func(t *testing.T) {
		db := srv.CreateDB(t)
		a, b := open(t, srv, db, "a"), open(t, srv, db, "b")
		fired, err := a.Fire(context.Background(), []halts.Event{event("p/1", "ams01")}, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		fp := fired[0].Halt.Fingerprint
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 16 {
			s := []*postgres.Store{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.Claim(context.Background(), fp, fmt.Sprintf("replica-%d", i), t0, time.Hour)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					wins++
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d claims won, want 1", wins)
		}
	})

	t.Run("ClaimOfADeadReplicaIsFree", func(t *testing.T) {
		db := srv.CreateDB(t)
		a, b := open(t, srv, db, "a"), open(t, srv, db, "b")
		ctx := context.Background()
		fired, err := a.Fire(ctx, []halts.Event{event("p/1", "ams01")}, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		fp := fired[0].Halt.Fingerprint
		if _, ok, err := a.Claim(ctx, fp, "a", t0, time.Hour); err != nil || !ok {
			t.Fatalf("a's claim = %v, %v", ok, err)
		}
		if _, ok, err := b.Claim(ctx, fp, "b", t0.Add(time.Minute), time.Hour); err != nil || ok {
			t.Fatalf("b's claim while a lives = %v, %v; want false", ok, err)
		}
		// a dies: its connections drop, as when the process is killed.
		terminate(t, srv, "a")
		if _, ok, err := b.Claim(ctx, fp, "b", t0.Add(2*time.Minute), time.Hour); err != nil || !ok {
			t.Fatalf("b's claim after a died, within a's lease = %v, %v; want true", ok, err)
		}
	})

	t.Run("LeadHandedOver", func(t *testing.T) {
		db := srv.CreateDB(t)
		a, b := open(t, srv, db, "a"), open(t, srv, db, "b")
		ctx := context.Background()
		lead := func(s *postgres.Store, owner string) bool {
			t.Helper()
			ok, err := s.Lead(ctx, "rules", owner, t0, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !lead(a, "a") || lead(b, "b") || !lead(a, "a") || lead(a, "other") {
			t.Fatal("a must lead alone, and keep leading")
		}
		if ok, err := b.Lead(ctx, "other-lease", "b", t0, time.Minute); err != nil || !ok {
			t.Errorf("another lease: %v, %v; want b to lead it", ok, err)
		}
		a.Close()
		if !lead(b, "b") {
			t.Error("a closed, b does not lead")
		}
		// b's session is cut (a crash of its connection): it stops
		// leading, and leads again once its new session takes the lock.
		c := open(t, srv, db, "c")
		terminate(t, srv, "b")
		if !lead(c, "c") {
			t.Error("b's session is gone and c does not lead")
		}
		if lead(b, "b") {
			t.Error("b still leads after its session was cut and c took over")
		}
	})

	t.Run("Migrations", func(t *testing.T) {
		db := srv.CreateDB(t)
		ctx := context.Background()
		if _, err := postgres.Open(ctx, srv.URL(db), postgres.Options{Password: pgtest.Password, ReadOnly: true}); err == nil ||
			!strings.Contains(err.Error(), "no store there yet") {
			t.Errorf("read-only open of an empty database: %v, want \"no store there yet\"", err)
		}
		s := open(t, srv, db, "a")
		if _, err := s.RecordTriage(ctx, halts.TriageRecord{At: t0, Origin: halts.OriginSlack, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Reopened, read-only (as sift history does): the triage is there.
		ro, err := postgres.Open(ctx, srv.URL(db), postgres.Options{Password: pgtest.Password, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := ro.Triages(ctx, 10)
		ro.Close()
		if err != nil || len(recs) != 1 {
			t.Errorf("Triages after reopening = %d, %v; want 1", len(recs), err)
		}
		// A schema from a newer Sift is refused, not misread.
		exec(t, srv, db, `INSERT INTO schema_migrations (version) VALUES (999)`)
		if _, err := postgres.Open(ctx, srv.URL(db), postgres.Options{Password: pgtest.Password}); err == nil ||
			!strings.Contains(err.Error(), "written by a newer Sift (schema 999") {
			t.Errorf("open of a newer schema: %v", err)
		}
	})

	t.Run("BadPasswordNamesTheFix", func(t *testing.T) {
		const wrong = "wrong-password-71c0"
		_, err := postgres.Open(context.Background(), srv.URL("postgres"), postgres.Options{Password: wrong})
		if err == nil || !strings.Contains(err.Error(), "halts.store_password_file") || strings.Contains(err.Error(), wrong) {
			t.Errorf("wrong password: %v", err)
		}
		url := strings.Replace(srv.URL("postgres"), "postgres@", "postgres:"+wrong+"@", 1)
		_, err = postgres.Open(context.Background(), url, postgres.Options{})
		if err == nil || strings.Contains(err.Error(), wrong) {
			t.Errorf("wrong password in the URL: %v (the password must not be printed)", err)
		}
	})
}

// TestStoreSurvivesAnOutage: the database stops and comes back; the Store
// fails meanwhile and works again after, without being reopened.
func TestStoreSurvivesAnOutage(t *testing.T) {
	srv := pgtest.Start(t)
	s := open(t, srv, srv.CreateDB(t), "a")
	ctx := context.Background()
	if ok, err := s.Lead(ctx, "rules", "a", t0, time.Minute); err != nil || !ok {
		t.Fatalf("Lead = %v, %v", ok, err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := s.Ping(cctx); err == nil {
		t.Error("Ping succeeded with the database down")
	}
	if ok, _ := s.Lead(cctx, "rules", "a", t0, time.Minute); ok {
		t.Error("Lead succeeded with the database down")
	}
	cancel()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the database came back: %v", err)
	}
	if _, err := s.Fire(ctx, []halts.Event{event("p/1", "ams01")}, t0, t0); err != nil {
		t.Errorf("Fire after the database came back: %v", err)
	}
	if ok, err := s.Lead(ctx, "rules", "a", t0, time.Minute); err != nil || !ok {
		t.Errorf("Lead after the database came back = %v, %v; want true", ok, err)
	}
}

func admin(t *testing.T, srv *pgtest.Server, db string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = pgtest.Password
	cfg.RuntimeParams["application_name"] = "pgtest-admin"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, srv *pgtest.Server, db, q string) {
	t.Helper()
	if _, err := admin(t, srv, db).Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

// terminate ends the sessions of the replica called name, as a crash of
// its process would, and waits (up to a minute) until they are gone and
// their locks with them.
func terminate(t *testing.T, srv *pgtest.Server, name string) {
	t.Helper()
	rows, err := admin(t, srv, "postgres").Query(context.Background(),
		`SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity WHERE application_name = $1`, name)
	if err != nil {
		t.Fatal(err)
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range ended {
		if !ok {
			t.Fatalf("a session of %s did not end within a minute", name)
		}
	}
	if len(ended) == 0 {
		t.Fatalf("%s has no session to end", name)
	}
}
