package halts_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

func TestStoreRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sift.db")
	s, err := halts.OpenStore(context.Background(), path)
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
	if _, err := halts.OpenStore(context.Background(), path); err == nil || !strings.Contains(err.Error(), "newer Sift") {
		t.Errorf("OpenStore = %v, want a refusal of the newer schema", err)
	}
}

func TestStoreRefusesURIPaths(t *testing.T) {
	for _, p := range []string{"", "sift.db?mode=ro", "sift#1.db"} {
		if s, err := halts.OpenStore(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("OpenStore(%q) accepted", p)
		}
	}
}

func TestTriageRecords(t *testing.T) {
	r := newRig(t, newPoster())
	ctx := context.Background()
	at := r.clock.Now()
	report := func(state string, minions int) *triage.Report {
		return &triage.Report{
			Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}, Headline: "it broke", StartedAt: at,
			Counts: triage.Counts{Expected: 10, Failing: minions},
			Causes: []triage.Cause{{Kind: triage.CauseFailedState, Key: state, Summary: "failed state", Minions: minions}},
		}
	}
	recs := []halts.TriageRecord{
		halts.NewTriageRecord(halts.OriginSlack, triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}, report("file.managed|/etc/motd|x", 3), nil, 2*time.Second, at),
		halts.NewTriageRecord(halts.OriginHalt, triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}, report("file.managed|/etc/motd|y", 4), nil, time.Second, at.Add(time.Minute)),
		halts.NewTriageRecord(halts.OriginSlack, triage.Scope{Kind: triage.ScopeDatacenter, Name: "nowhere"}, nil, errors.New(`unknown datacenter "nowhere"`), 0, at.Add(2*time.Minute)),
	}
	recs[1].At = at.Add(time.Minute)
	for _, rec := range recs {
		if _, err := r.store.RecordTriage(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.store.Triages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Outcome != "error" || got[0].Error == "" || got[0].TopKind != "" {
		t.Fatalf("newest triage %+v: want the error record first", got)
	}
	if g := got[1]; g.Origin != halts.OriginHalt || g.TopKind != triage.CauseFailedState || g.TopMinions != 4 ||
		g.Counts.Failing != 4 || g.Duration != time.Second || !slices.Equal(g.States, []string{"file.managed /etc/motd"}) {
		t.Errorf("second triage %+v", g)
	}
	counts, err := r.store.StateCounts(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if counts["file.managed /etc/motd"] != 2 || len(counts) != 1 {
		t.Errorf("StateCounts = %v, want the motd state named by 2 triages", counts)
	}
}

func TestFiringCounts(t *testing.T) {
	r := newRig(t, newPoster())
	r.notify(firing("pipeline/1", "ams01"))
	r.notify(firing("pipeline/2", "fra02"))
	r.notify(resolved("pipeline/2"))
	got, err := r.store.FiringCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["pipeline"] != 1 {
		t.Errorf("FiringCounts = %v, want pipeline: 1", got)
	}
}
