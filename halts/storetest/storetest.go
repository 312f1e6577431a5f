// Package storetest is the conformance suite of halts.Store: every store
// (the embedded SQLite one, a shared database for several replicas) runs
// it from its own tests with
//
//	storetest.Run(t, func(t *testing.T) halts.Store { return openEmptyStore(t) })
//
// open must return an empty store, and close it when the test ends.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

// t0 is the suite's "now"; times are whole microseconds, which every SQL
// database keeps exactly.
var t0 = time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)

// Run runs every conformance test against stores from open.
func Run(t *testing.T, open func(t *testing.T) halts.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s halts.Store)
	}{
		{"FireNewAgainIgnored", testFire},
		{"FireRecurring", testFireRecurring},
		{"FireBatchIsAtomic", testFireBatchAtomic},
		{"Coalescing", testCoalescing},
		{"Resolve", testResolve},
		{"ResolveAll", testResolveAll},
		{"PostLifeCycle", testPostLifeCycle},
		{"Due", testDue},
		{"DueWaitsForJoinedToClear", testDueWaitsForJoined},
		{"Claim", testClaim},
		{"ClaimRace", testClaimRace},
		{"NotFound", testNotFound},
		{"BudgetAndSuppress", testBudget},
		{"Deliveries", testDeliveries},
		{"Triages", testTriages},
		{"FiringCounts", testFiringCounts},
		{"Prune", testPrune},
		{"Lead", testLead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, open(t))
		})
	}
}

func firing(key, scope string) halts.Event {
	return halts.Event{
		Source: halts.SourcePipeline, Key: key, Name: "release", Reason: "why " + key, URL: "https://ci.example.com/1",
		Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: scope}, Firing: true,
	}
}

func fire(t *testing.T, s halts.Store, now time.Time, window time.Duration, events ...halts.Event) []halts.Fired {
	t.Helper()
	got, err := s.Fire(context.Background(), events, now, now.Add(-window))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("Fire returned %d results for %d events", len(got), len(events))
	}
	return got
}

func get(t *testing.T, s halts.Store, fp string) halts.Halt {
	t.Helper()
	h, err := s.Halt(context.Background(), fp)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testFire(t *testing.T, s halts.Store) {
	ctx := context.Background()
	f := fire(t, s, t0, 0, firing("p/1", "ams01"))[0]
	if f.Result != halts.FireNew {
		t.Fatalf("first firing: %v, want FireNew", f.Result)
	}
	h := f.Halt
	if h.Fingerprint != halts.Fingerprint("p/1", t0) || h.PostState != halts.PostPending || h.Firings != 1 || !h.FiredAt.Equal(t0) || !h.Open() {
		t.Errorf("new halt %+v", h)
	}
	stored := get(t, s, h.Fingerprint)
	if stored.Key != "p/1" || stored.Source != halts.SourcePipeline || stored.Name != "release" || stored.Reason != "why p/1" ||
		stored.URL != "https://ci.example.com/1" || stored.Scope != h.Scope || !stored.FiredAt.Equal(t0) || stored.FiredAt.Location() != time.UTC {
		t.Errorf("stored halt %+v does not match the event", stored)
	}
	f = fire(t, s, t0.Add(time.Minute), 0, firing("p/1", "ams01"))[0]
	if f.Result != halts.FireAgain || f.Halt.Fingerprint != h.Fingerprint || f.Halt.Firings != 2 {
		t.Errorf("second firing: %v %+v, want FireAgain with 2 firings", f.Result, f.Halt)
	}
	if got := get(t, s, h.Fingerprint); got.Firings != 2 || !got.LastFiredAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after two firings: %d firings, last %s", got.Firings, got.LastFiredAt)
	}
	if _, ok, err := s.Resolve(ctx, halts.Event{Key: "p/1"}, t0.Add(2*time.Minute)); err != nil || !ok {
		t.Fatalf("Resolve = %v, %v", ok, err)
	}
	f = fire(t, s, t0.Add(3*time.Minute), 0, firing("p/1", "ams01"))[0]
	if f.Result != halts.FireIgnored {
		t.Errorf("firing after the resolution: %v, want FireIgnored (not recurring)", f.Result)
	}
	if hs, err := s.Halts(ctx, 10); err != nil || len(hs) != 1 {
		t.Errorf("Halts = %d, %v; want 1", len(hs), err)
	}
}

func testFireRecurring(t *testing.T, s halts.Store) {
	ctx := context.Background()
	e := firing("rule/r/datacenter/ams01", "ams01")
	e.Recurring, e.Source, e.Name = true, halts.SourceRule, "r"
	first := fire(t, s, t0, 0, e)[0].Halt
	if _, ok, err := s.Resolve(ctx, e, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("Resolve = %v, %v", ok, err)
	}
	f := fire(t, s, t0.Add(2*time.Minute), 0, e)[0]
	if f.Result != halts.FireNew || f.Halt.Fingerprint == first.Fingerprint {
		t.Errorf("recurring key firing again: %v %s, want a new halt", f.Result, f.Halt.Fingerprint)
	}
	open, err := s.OpenHalts(ctx, halts.SourceRule, "r")
	if err != nil || len(open) != 1 || open[0].Fingerprint != f.Halt.Fingerprint {
		t.Errorf("OpenHalts = %+v, %v; want the second halt only", open, err)
	}
}

func testFireBatchAtomic(t *testing.T, s halts.Store) {
	ctx := context.Background()
	events := make([]halts.Event, 0, 501)
	for i := range 500 {
		events = append(events, firing(fmt.Sprintf("p/%d", i), fmt.Sprintf("dc%03d", i)))
	}
	got := fire(t, s, t0, 0, events...)
	for i, f := range got {
		if f.Result != halts.FireNew || f.Halt.Key != events[i].Key {
			t.Fatalf("event %d: %v %s, want FireNew of %s (results in order)", i, f.Result, f.Halt.Key, events[i].Key)
		}
	}
	// A cancelled context fails the whole batch: nothing of it is stored.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Fire(cctx, []halts.Event{firing("p/x", "x1"), firing("p/y", "y1")}, t0, t0); err == nil {
		t.Fatal("Fire with a cancelled context succeeded")
	}
	hs, err := s.Halts(ctx, 1000)
	if err != nil || len(hs) != 500 {
		t.Errorf("Halts = %d, %v; want the 500 of the first batch only", len(hs), err)
	}
}

func testCoalescing(t *testing.T, s halts.Store) {
	ctx := context.Background()
	const window = 10 * time.Minute
	first := fire(t, s, t0, window, firing("am/1", "ams01"))[0].Halt
	// While the first is pending, alerts of its scope join it; other
	// scopes do not.
	got := fire(t, s, t0.Add(time.Second), window, firing("am/2", "ams01"), firing("am/3", "fra02"), firing("am/2", "ams01"))
	if got[0].Result != halts.FireJoined || got[0].Halt.Parent != first.Fingerprint || got[0].Halt.PostState != halts.PostJoined {
		t.Errorf("am/2: %v %+v, want joined to %s", got[0].Result, got[0].Halt, first.Fingerprint)
	}
	if got[1].Result != halts.FireNew {
		t.Errorf("am/3 of another scope: %v, want FireNew", got[1].Result)
	}
	if got[2].Result != halts.FireAgain || got[2].Halt.Fingerprint != got[0].Halt.Fingerprint {
		t.Errorf("am/2 again: %v, want FireAgain of the joined halt", got[2].Result)
	}
	parent := get(t, s, first.Fingerprint)
	if parent.Joined != 1 || parent.Firings != 3 {
		t.Errorf("parent: joined %d, firings %d; want 1 joined and 3 firings (its own, the join, the repeat)", parent.Joined, parent.Firings)
	}
	// Posted: it still takes in its scope within the window...
	must(t, s.BeginPost(ctx, first.Fingerprint, "C1", []byte(`{}`)))
	must(t, s.Posted(ctx, first.Fingerprint, "C1", "111.1", t0.Add(time.Minute)))
	if f := fire(t, s, t0.Add(5*time.Minute), window, firing("am/4", "ams01"))[0]; f.Result != halts.FireJoined {
		t.Errorf("am/4 within the window: %v, want FireJoined", f.Result)
	}
	// ...and not after it.
	if f := fire(t, s, t0.Add(time.Minute+window+time.Second), window, firing("am/5", "ams01"))[0]; f.Result != halts.FireNew || f.Halt.Parent != "" {
		t.Errorf("am/5 after the window: %v parent %q, want a halt of its own", f.Result, f.Halt.Parent)
	}
	joined, err := s.JoinedHalts(ctx, first.Fingerprint, 0, 10)
	if err != nil || len(joined) != 2 || joined[0].Key != "am/2" || joined[1].Key != "am/4" {
		t.Errorf("JoinedHalts = %+v, %v; want am/2 then am/4", joined, err)
	}
	rest, err := s.JoinedHalts(ctx, first.Fingerprint, 1, 10)
	if err != nil || len(rest) != 1 || rest[0].Key != "am/4" {
		t.Errorf("JoinedHalts after 1 = %+v, %v; want am/4", rest, err)
	}
	// A cleared halt takes in nothing.
	if _, ok, err := s.Resolve(ctx, halts.Event{Key: "am/3"}, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if f := fire(t, s, t0.Add(2*time.Minute), window, firing("am/6", "fra02"))[0]; f.Result != halts.FireNew {
		t.Errorf("am/6 after fra02's halt cleared: %v, want FireNew", f.Result)
	}
}

func testResolve(t *testing.T, s halts.Store) {
	ctx := context.Background()
	h := fire(t, s, t0, 0, firing("p/1", "ams01"))[0].Halt
	if _, ok, err := s.Resolve(ctx, halts.Event{Key: "p/unknown"}, t0); err != nil || ok {
		t.Errorf("Resolve of an unknown key = %v, %v; want false", ok, err)
	}
	// A source clock behind ours must not end a halt before it began.
	got, ok, err := s.Resolve(ctx, halts.Event{Key: "p/1", At: t0.Add(-time.Hour)}, t0.Add(time.Minute))
	if err != nil || !ok || !got.ResolvedAt.Equal(t0) {
		t.Errorf("Resolve = %v, %v, resolved at %s; want at the firing %s", ok, err, got.ResolvedAt, t0)
	}
	if stored := get(t, s, h.Fingerprint); stored.Open() {
		t.Error("halt still open after Resolve")
	}
	if _, ok, err := s.Resolve(ctx, halts.Event{Key: "p/1"}, t0.Add(time.Hour)); err != nil || ok {
		t.Errorf("second Resolve = %v, %v; want false", ok, err)
	}
}

func testPostLifeCycle(t *testing.T, s halts.Store) {
	ctx := context.Background()
	h := fire(t, s, t0, 0, firing("p/1", "ams01"))[0].Halt
	must(t, s.BeginPost(ctx, h.Fingerprint, "C1", []byte(`{"text":"x"}`)))
	got := get(t, s, h.Fingerprint)
	if got.PostState != halts.PostPosting || got.PostAttempts != 1 || got.Channel != "C1" || string(got.Summary) != `{"text":"x"}` {
		t.Errorf("after BeginPost: %+v", got)
	}
	fire(t, s, t0.Add(time.Second), 0, firing("p/1", "ams01"))
	must(t, s.Posted(ctx, h.Fingerprint, "C1", "111.1", t0.Add(time.Minute)))
	got = get(t, s, h.Fingerprint)
	if got.PostState != halts.PostPosted || got.TS != "111.1" || !got.PostedAt.Equal(t0.Add(time.Minute)) ||
		!got.UpdatedAt.Equal(got.PostedAt) || got.FiringsAtUpdate != 2 {
		t.Errorf("after Posted: %+v; want posted, ts 111.1, the 2 firings reported", got)
	}
	must(t, s.Failed(ctx, h.Fingerprint, t0.Add(time.Hour)))
	must(t, s.Failed(ctx, h.Fingerprint, t0.Add(2*time.Hour)))
	if got = get(t, s, h.Fingerprint); got.Failures != 2 || !got.NextAttemptAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after two failures: %d failures, next %s", got.Failures, got.NextAttemptAt)
	}
	must(t, s.Succeeded(ctx, h.Fingerprint))
	if got = get(t, s, h.Fingerprint); got.Failures != 0 || !got.NextAttemptAt.IsZero() {
		t.Errorf("after Succeeded: %d failures, next %s", got.Failures, got.NextAttemptAt)
	}
	must(t, s.StillFailingSent(ctx, h.Fingerprint, 5, t0.Add(3*time.Hour)))
	must(t, s.JoinedAnnounced(ctx, h.Fingerprint, 3))
	must(t, s.ResolveEdited(ctx, h.Fingerprint))
	if got = get(t, s, h.Fingerprint); got.FiringsAtUpdate != 5 || !got.UpdatedAt.Equal(t0.Add(3*time.Hour)) || got.JoinedAnnounced != 3 ||
		!got.ResolveEdited || got.ResolveReplied {
		t.Errorf("after the updates: %+v", got)
	}
	must(t, s.ResolveReplied(ctx, h.Fingerprint))
	if got = get(t, s, h.Fingerprint); !got.ResolveReplied {
		t.Error("ResolveReplied not kept")
	}
}

func dueKeys(t *testing.T, s halts.Store, now time.Time, interval time.Duration) []string {
	t.Helper()
	due, err := s.Due(context.Background(), now, now.Add(-interval), 100)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, h := range due {
		keys = append(keys, h.Key)
	}
	return keys
}

func testDue(t *testing.T, s halts.Store) {
	ctx := context.Background()
	const interval = 30 * time.Minute
	a := fire(t, s, t0, 0, firing("p/a", "a1"))[0].Halt
	b := fire(t, s, t0.Add(time.Second), 0, firing("p/b", "b1"))[0].Halt
	if got := dueKeys(t, s, t0.Add(time.Minute), interval); !slices.Equal(got, []string{"p/a", "p/b"}) {
		t.Fatalf("due = %v, want the two pending halts, oldest first", got)
	}
	if due, err := s.Due(ctx, t0.Add(time.Minute), t0, 1); err != nil || len(due) != 1 {
		t.Errorf("Due with limit 1 = %d, %v", len(due), err)
	}
	// A failed step waits for its next attempt.
	must(t, s.Failed(ctx, a.Fingerprint, t0.Add(time.Hour)))
	if got := dueKeys(t, s, t0.Add(time.Minute), interval); !slices.Equal(got, []string{"p/b"}) {
		t.Errorf("due = %v, want p/b while p/a waits", got)
	}
	must(t, s.Succeeded(ctx, a.Fingerprint))
	// Posted with nothing new: not due.
	for _, h := range []halts.Halt{a, b} {
		must(t, s.BeginPost(ctx, h.Fingerprint, "C1", nil))
		must(t, s.Posted(ctx, h.Fingerprint, "C1", "1.1", t0.Add(time.Minute)))
	}
	if got := dueKeys(t, s, t0.Add(2*time.Minute), interval); len(got) != 0 {
		t.Errorf("due = %v, want nothing after the posts", got)
	}
	// New firings: due once the interval since the last update passed.
	fire(t, s, t0.Add(3*time.Minute), 0, firing("p/a", "a1"))
	if got := dueKeys(t, s, t0.Add(4*time.Minute), interval); len(got) != 0 {
		t.Errorf("due = %v, want nothing within the interval", got)
	}
	if got := dueKeys(t, s, t0.Add(time.Minute+interval), interval); !slices.Equal(got, []string{"p/a"}) {
		t.Errorf("due = %v, want p/a after the interval", got)
	}
	// Resolved: due until both steps of the announcement are done.
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "p/b"}, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := dueKeys(t, s, t0.Add(6*time.Minute), interval); !slices.Equal(got, []string{"p/b"}) {
		t.Errorf("due = %v, want p/b to announce", got)
	}
	must(t, s.ResolveEdited(ctx, b.Fingerprint))
	if got := dueKeys(t, s, t0.Add(6*time.Minute), interval); !slices.Equal(got, []string{"p/b"}) {
		t.Errorf("due = %v, want p/b until its reply is sent", got)
	}
	must(t, s.ResolveReplied(ctx, b.Fingerprint))
	if got := dueKeys(t, s, t0.Add(6*time.Minute), interval); len(got) != 0 {
		t.Errorf("due = %v, want nothing", got)
	}
	// Joined halts not yet listed make the parent due.
	fire(t, s, t0.Add(7*time.Minute), 10*time.Minute, firing("p/a2", "a1"))
	if got := dueKeys(t, s, t0.Add(7*time.Minute), interval); !slices.Equal(got, []string{"p/a"}) {
		t.Errorf("due = %v, want p/a with a joined halt to list", got)
	}
	// A suppressed halt is never due.
	c := fire(t, s, t0.Add(8*time.Minute), 0, firing("p/c", "c1"))[0].Halt
	must(t, s.Suppress(ctx, c.Fingerprint))
	for _, k := range dueKeys(t, s, t0.Add(9*time.Minute), interval) {
		if k == "p/c" {
			t.Error("a suppressed halt is due")
		}
	}
}

func testDueWaitsForJoined(t *testing.T, s halts.Store) {
	ctx := context.Background()
	p := fire(t, s, t0, time.Hour, firing("am/1", "ams01"))[0].Halt
	fire(t, s, t0, time.Hour, firing("am/2", "ams01"))
	must(t, s.BeginPost(ctx, p.Fingerprint, "C1", nil))
	must(t, s.Posted(ctx, p.Fingerprint, "C1", "1.1", t0))
	must(t, s.JoinedAnnounced(ctx, p.Fingerprint, 1))
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "am/1"}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := dueKeys(t, s, t0.Add(2*time.Minute), time.Hour); len(got) != 0 {
		t.Errorf("due = %v, want nothing while a joined halt is open", got)
	}
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "am/2"}, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := dueKeys(t, s, t0.Add(4*time.Minute), time.Hour); !slices.Equal(got, []string{"am/1"}) {
		t.Errorf("due = %v, want am/1 to announce once every joined halt cleared", got)
	}
}

func testClaim(t *testing.T, s halts.Store) {
	ctx := context.Background()
	h := fire(t, s, t0, 0, firing("p/1", "ams01"))[0].Halt
	got, ok, err := s.Claim(ctx, h.Fingerprint, "a", t0, time.Minute)
	if err != nil || !ok || got.Fingerprint != h.Fingerprint || got.Key != "p/1" {
		t.Fatalf("Claim by a = %v, %v, %+v", ok, err, got)
	}
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "b", t0.Add(30*time.Second), time.Minute); err != nil || ok {
		t.Errorf("Claim by b while a holds it = %v, %v; want false", ok, err)
	}
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "a", t0.Add(30*time.Second), time.Minute); err != nil || !ok {
		t.Errorf("renewal by a = %v, %v; want true", ok, err)
	}
	// The lease runs from the renewal: b cannot take it at t0+1m.
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "b", t0.Add(time.Minute), time.Minute); err != nil || ok {
		t.Errorf("Claim by b before the renewed lease ended = %v, %v; want false", ok, err)
	}
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "b", t0.Add(2*time.Minute), time.Minute); err != nil || !ok {
		t.Errorf("Claim by b after a's lease ended = %v, %v; want true", ok, err)
	}
	must(t, s.Release(ctx, h.Fingerprint, "a")) // not a's any more: no effect
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "a", t0.Add(2*time.Minute), time.Minute); err != nil || ok {
		t.Errorf("Claim by a after its stale release = %v, %v; want false", ok, err)
	}
	must(t, s.Release(ctx, h.Fingerprint, "b"))
	if _, ok, err := s.Claim(ctx, h.Fingerprint, "a", t0.Add(2*time.Minute), time.Minute); err != nil || !ok {
		t.Errorf("Claim by a after b released = %v, %v; want true", ok, err)
	}
}

// testClaimRace: of many owners claiming at once, exactly one wins.
func testClaimRace(t *testing.T, s halts.Store) {
	ctx := context.Background()
	h := fire(t, s, t0, 0, firing("p/1", "ams01"))[0].Halt
	const owners = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	errs := []error{}
	for i := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.Claim(ctx, h.Fingerprint, fmt.Sprintf("owner-%d", i), t0, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || wins != 1 {
		t.Errorf("%d of %d concurrent claims won (errors %v), want exactly 1", wins, owners, errs)
	}
}

func testNotFound(t *testing.T, s halts.Store) {
	ctx := context.Background()
	const fp = "0000000000000000"
	checks := map[string]error{
		"Halt":      func() error { _, err := s.Halt(ctx, fp); return err }(),
		"BeginPost": s.BeginPost(ctx, fp, "C1", nil),
		"Posted":    s.Posted(ctx, fp, "C1", "1.1", t0),
		"Failed":    s.Failed(ctx, fp, t0),
		"Suppress":  s.Suppress(ctx, fp),
		"Claim":     func() error { _, _, err := s.Claim(ctx, fp, "a", t0, time.Minute); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, halts.ErrNotFound) {
			t.Errorf("%s of an unknown halt: %v, want ErrNotFound", name, err)
		}
	}
}

func testBudget(t *testing.T, s halts.Store) {
	ctx := context.Background()
	for i := range 3 {
		h := fire(t, s, t0, 0, firing(fmt.Sprintf("p/%d", i), fmt.Sprintf("dc%d", i)))[0].Halt
		must(t, s.BeginPost(ctx, h.Fingerprint, "C1", nil))
		must(t, s.Posted(ctx, h.Fingerprint, "C1", "1.1", t0.Add(time.Duration(i)*time.Hour)))
	}
	n, err := s.PostsSince(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PostsSince(t0+90m) = %d, %v; want 1", n, err)
	}
	if n, err = s.PostsSince(ctx, t0); err != nil || n != 3 {
		t.Errorf("PostsSince(t0) = %d, %v; want 3", n, err)
	}
	h := fire(t, s, t0, 0, firing("p/s", "dcs"))[0].Halt
	must(t, s.Suppress(ctx, h.Fingerprint))
	if got := get(t, s, h.Fingerprint); got.PostState != halts.PostSuppressed {
		t.Errorf("post state %s, want suppressed", got.PostState)
	}
	if n, err = s.PostsSince(ctx, t0); err != nil || n != 3 {
		t.Errorf("PostsSince after a suppression = %d, %v; want 3", n, err)
	}
}

func testDeliveries(t *testing.T, s halts.Store) {
	ctx := context.Background()
	if fresh, err := s.UseDelivery(ctx, "d-00000001", t0, t0.Add(-time.Hour)); err != nil || !fresh {
		t.Fatalf("first use = %v, %v", fresh, err)
	}
	if fresh, err := s.UseDelivery(ctx, "d-00000001", t0.Add(time.Second), t0.Add(-time.Hour)); err != nil || fresh {
		t.Errorf("replay = %v, %v; want not fresh", fresh, err)
	}
	// Once pruned, the id is forgotten (its timestamp is refused anyway).
	if fresh, err := s.UseDelivery(ctx, "d-00000001", t0.Add(2*time.Hour), t0.Add(time.Hour)); err != nil || !fresh {
		t.Errorf("use after the prune = %v, %v; want fresh", fresh, err)
	}
}

func testTriages(t *testing.T, s halts.Store) {
	ctx := context.Background()
	recs := []halts.TriageRecord{
		{At: t0, Origin: halts.OriginSlack, Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}, Outcome: "ok",
			Duration: 2 * time.Second, Headline: "it broke", TopKind: triage.CauseFailedState, TopKey: "k", TopSummary: "sum", TopMinions: 3,
			Counts: triage.Counts{Expected: 10, Failing: 3}, States: []string{"file.managed /etc/motd"}},
		{At: t0.Add(time.Minute), Origin: halts.OriginHalt, Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}, Outcome: "ok",
			States: []string{"file.managed /etc/motd", "pkg.installed nginx"}, Halt: "abc"},
		{At: t0.Add(2 * time.Minute), Origin: halts.OriginSlack, Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "nowhere"},
			Outcome: "error", Error: `unknown datacenter "nowhere"`},
	}
	var ids []int64
	for _, r := range recs {
		id, err := s.RecordTriage(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("ids %v, want distinct", ids)
	}
	got, err := s.Triages(ctx, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("Triages(2) = %d, %v", len(got), err)
	}
	if got[0].Outcome != "error" || got[0].Error == "" || got[1].Halt != "abc" {
		t.Errorf("Triages = %+v, want newest first", got)
	}
	all, err := s.Triages(ctx, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("Triages(10) = %d, %v", len(all), err)
	}
	first := all[2]
	want := recs[0]
	want.ID = ids[0]
	if first.ID != want.ID || !first.At.Equal(want.At) || first.Origin != want.Origin || first.Scope != want.Scope || first.Duration != want.Duration ||
		first.TopKind != want.TopKind || first.TopKey != want.TopKey || first.TopSummary != want.TopSummary || first.TopMinions != want.TopMinions ||
		first.Counts != want.Counts || !slices.Equal(first.States, want.States) {
		t.Errorf("stored triage %+v, want %+v", first, want)
	}
	counts, err := s.StateCounts(ctx, t0.Add(30*time.Second))
	if err != nil || counts["file.managed /etc/motd"] != 1 || counts["pkg.installed nginx"] != 1 || len(counts) != 2 {
		t.Errorf("StateCounts since t0+30s = %v, %v", counts, err)
	}
	if counts, err = s.StateCounts(ctx, t0); err != nil || counts["file.managed /etc/motd"] != 2 {
		t.Errorf("StateCounts since t0 = %v, %v", counts, err)
	}
}

func testFiringCounts(t *testing.T, s halts.Store) {
	ctx := context.Background()
	fire(t, s, t0, 0, firing("p/1", "ams01"), firing("p/2", "fra02"))
	am := firing("am/1", "iad01")
	am.Source = halts.SourceAlertmanager
	fire(t, s, t0, 0, am)
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "p/2"}, t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.FiringCounts(ctx)
	if err != nil || got[halts.SourcePipeline] != 1 || got[halts.SourceAlertmanager] != 1 || len(got) != 2 {
		t.Errorf("FiringCounts = %v, %v; want pipeline 1, alertmanager 1", got, err)
	}
}

func testPrune(t *testing.T, s halts.Store) {
	ctx := context.Background()
	const window = time.Hour
	old := t0.Add(-100 * 24 * time.Hour)
	cut := t0.Add(-90 * 24 * time.Hour)
	// An old halt, announced, with a joined halt: both go.
	done := fire(t, s, old, window, firing("p/done", "ams01"))[0].Halt
	fire(t, s, old, window, firing("p/done-joined", "ams01"))
	must(t, s.BeginPost(ctx, done.Fingerprint, "C1", nil))
	must(t, s.Posted(ctx, done.Fingerprint, "C1", "1.1", old))
	for _, k := range []string{"p/done", "p/done-joined"} {
		if _, _, err := s.Resolve(ctx, halts.Event{Key: k}, old.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, s.ResolveEdited(ctx, done.Fingerprint))
	must(t, s.ResolveReplied(ctx, done.Fingerprint))
	// An old halt still open, one cleared and not yet announced, and a
	// recent cleared one: all kept.
	fire(t, s, old, 0, firing("p/open", "fra02"))
	unann := fire(t, s, old, 0, firing("p/unannounced", "iad01"))[0].Halt
	must(t, s.BeginPost(ctx, unann.Fingerprint, "C1", nil))
	must(t, s.Posted(ctx, unann.Fingerprint, "C1", "1.2", old))
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "p/unannounced"}, old.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	recent := fire(t, s, t0.Add(-time.Hour), 0, firing("p/recent", "sin01"))[0].Halt
	must(t, s.Suppress(ctx, recent.Fingerprint))
	if _, _, err := s.Resolve(ctx, halts.Event{Key: "p/recent"}, t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{old, t0} {
		if _, err := s.RecordTriage(ctx, halts.TriageRecord{At: at, Origin: halts.OriginSlack, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UseDelivery(ctx, "d-old-0001", old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseDelivery(ctx, "d-new-0001", t0, old); err != nil {
		t.Fatal(err)
	}
	p, err := s.Prune(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if p.Halts != 2 || p.Triages != 1 || p.Deliveries != 1 {
		t.Errorf("Prune = %+v, want 2 halts, 1 triage, 1 delivery", p)
	}
	hs, err := s.Halts(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, h := range hs {
		keys = append(keys, h.Key)
	}
	slices.Sort(keys)
	if want := []string{"p/open", "p/recent", "p/unannounced"}; !slices.Equal(keys, want) {
		t.Errorf("halts after the prune %v, want %v", keys, want)
	}
	if recs, err := s.Triages(ctx, 10); err != nil || len(recs) != 1 {
		t.Errorf("triages after the prune = %d, %v; want 1", len(recs), err)
	}
	// The pruned delivery id is usable again; the kept one is not.
	if fresh, err := s.UseDelivery(ctx, "d-new-0001", t0, cut); err != nil || fresh {
		t.Errorf("kept delivery fresh = %v, %v", fresh, err)
	}
}

func testLead(t *testing.T, s halts.Store) {
	ctx := context.Background()
	ok, err := s.Lead(ctx, "rules", "a", t0, time.Minute)
	if err != nil || !ok {
		t.Fatalf("first Lead = %v, %v; want true", ok, err)
	}
	if ok, err = s.Lead(ctx, "rules", "a", t0.Add(30*time.Second), time.Minute); err != nil || !ok {
		t.Errorf("renewal = %v, %v; want true", ok, err)
	}
}

// testResolveAll runs only for a store that is a halts.BatchResolver.
func testResolveAll(t *testing.T, s halts.Store) {
	br, ok := s.(halts.BatchResolver)
	if !ok {
		t.Skip("the store resolves one notice at a time")
	}
	ctx := context.Background()
	fire(t, s, t0, 0, firing("p/1", "ams01"), firing("p/2", "fra02"))
	got, err := br.ResolveAll(ctx, []halts.Event{{Key: "p/1"}, {Key: "p/unknown"}, {Key: "p/2", At: t0.Add(-time.Hour)}, {Key: "p/1"}}, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !got[0].OK || got[1].OK || !got[2].OK || got[3].OK {
		t.Fatalf("ResolveAll = %+v, want resolved, not open, resolved, not open (already resolved in the batch)", got)
	}
	if !got[0].Halt.ResolvedAt.Equal(t0.Add(time.Minute)) || !got[2].Halt.ResolvedAt.Equal(t0) {
		t.Errorf("resolved at %s and %s, want now and the firing", got[0].Halt.ResolvedAt, got[2].Halt.ResolvedAt)
	}
	if open, err := s.FiringCounts(ctx); err != nil || len(open) != 0 {
		t.Errorf("FiringCounts = %v, %v; want nothing open", open, err)
	}
}
