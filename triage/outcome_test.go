package triage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// blameFunc is a Blamer scripted by the test.
type blameFunc func(ctx context.Context, t Target, sink Sink) error

func (f blameFunc) Blame(ctx context.Context, t Target, sink Sink) error { return f(ctx, t, sink) }

// answering answers for the minions of each datacenter; absent minions
// are named absent first, then the others answer healthy.
func answering(minions map[string][]string, absent map[string]Absence) blameFunc {
	return func(_ context.Context, t Target, sink Sink) error {
		ids := minions[t.Datacenter]
		sink.Expected(ids)
		var gone []string
		for _, id := range ids {
			if _, ok := absent[id]; ok {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			sink.Absent(gone, absent[gone[0]])
		}
		for _, id := range ids {
			if _, ok := absent[id]; !ok {
				sink.Answer(MinionAnswer{ID: id, Raw: healthyAnswer()})
			}
		}
		return nil
	}
}

func failing(err error) blameFunc {
	return func(context.Context, Target, Sink) error { return err }
}

// refused is the error a salt-api client returns for a master that is down.
func refused(master string) error {
	return fmt.Errorf("salt-api %s login: cannot reach https://%s:8000/login: %w", master, master,
		&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
}

// clock is a time that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAbsentMinionsAreUnreachableAtOnce(t *testing.T) {
	inv := Inventory{Datacenters: []Datacenter{{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01"}}}
	b := answering(map[string][]string{"ams01": {"web-1", "web-2", "web-3", "web-4"}}, map[string]Absence{"web-3": NotConnected, "web-4": NotConnected})
	var mu sync.Mutex
	var last Progress
	tr := New(inv, map[string]Blamer{"salt-eu": b}, Options{Progress: func(p Progress) {
		mu.Lock()
		last = p
		mu.Unlock()
	}})
	rep, err := tr.Triage(context.Background(), Scope{ScopeDatacenter, "ams01"})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Expected: 4, Answered: 2, Healthy: 2, Unreachable: 2}
	if rep.Counts != want {
		t.Errorf("counts = %+v, want %+v", rep.Counts, want)
	}
	var unreachable *Cause
	for i := range rep.Causes {
		if rep.Causes[i].Kind == CauseUnreachable {
			unreachable = &rep.Causes[i]
		}
	}
	if unreachable == nil || !slices.Equal(unreachable.MinionIDs, []string{"web-3", "web-4"}) ||
		!slices.Equal(unreachable.Evidence.Messages, []string{"not connected to master salt-eu"}) {
		t.Errorf("unreachable cause = %+v", unreachable)
	}
	if rep.Outcome != OutcomeComplete {
		t.Errorf("outcome = %q", rep.Outcome)
	}
	mu.Lock()
	defer mu.Unlock()
	// Absent minions are accounted for, not answers.
	if last.Kind != ProgressDatacenterFinished || last.DatacenterAnswered != 2 || last.DatacenterExpected != 4 {
		t.Errorf("last event = %+v", last)
	}
}

func TestNotesAreKeptOncePerDatacenter(t *testing.T) {
	inv := testInventory()
	const presence = "presence not available (runner refused): waited out Salt's timeout"
	b := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		sink.Expected(nil)
		if tg.Datacenter == "ams01" {
			sink.Note(presence)
			sink.Note(presence)
			sink.Note("second note")
		}
		return nil
	})
	tr := New(inv, map[string]Blamer{"salt-eu": b, "salt-uk": b}, Options{})
	rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Datacenters[0].Notes; !slices.Equal(got, []string{presence, "second note"}) {
		t.Errorf("ams01 notes = %q", got)
	}
	if got := rep.Datacenters[1].Notes; got != nil {
		t.Errorf("fra02 notes = %q", got)
	}
}

func TestMinionTriage(t *testing.T) {
	unknownTo := func(master string) blameFunc {
		return func(_ context.Context, tg Target, sink Sink) error {
			sink.Absent(tg.Minions, NotAMinion)
			return nil
		}
	}
	downOn := func(_ context.Context, tg Target, sink Sink) error {
		sink.Absent(tg.Minions, NotConnected)
		return nil
	}
	answers := func(_ context.Context, tg Target, sink Sink) error {
		sink.Answer(MinionAnswer{ID: tg.Minions[0], Raw: commitAnswer(tg.Minions[0])})
		return nil
	}
	tests := []struct {
		name         string
		eu, uk       blameFunc
		outcome      Outcome
		headline     string
		causeSummary string
		notes        []string
	}{
		{
			name: "not a minion of any master", eu: unknownTo("salt-eu"), uk: unknownTo("salt-uk"),
			outcome: OutcomeComplete, headline: "web-9 is not a minion of any master", causeSummary: "web-9 is not a minion of any master",
		},
		{
			name: "not connected to its master", eu: downOn, uk: unknownTo("salt-uk"),
			outcome: OutcomeComplete, headline: "1 of 1 minion unreachable; no failing highstates among the others",
			causeSummary: "1 minion did not answer the blame call",
		},
		{
			name: "unknown to one, the other down", eu: unknownTo("salt-eu"), uk: failing(refused("salt-uk")),
			outcome:  OutcomePartial,
			headline: "web-9 is not a minion of any master that answered; partial: 1 of 2 masters answered; salt-uk failed: connection refused",
		},
		{
			name: "no master answered", eu: failing(refused("salt-eu")), uk: failing(context.DeadlineExceeded),
			outcome: OutcomeFailed, headline: "no master answered: salt-eu (connection refused), salt-uk (timed out)",
		},
		{
			name: "found behind one master while the other is down", eu: answers, uk: failing(refused("salt-uk")),
			outcome: OutcomeComplete, headline: "commit e4a91b2 by John Doe explains 1 of 1 failing minion",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(testInventory(), map[string]Blamer{"salt-eu": tc.eu, "salt-uk": tc.uk}, Options{})
			rep, err := tr.Triage(context.Background(), Scope{ScopeMinion, "web-9"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != tc.outcome || !strings.HasPrefix(rep.Headline, tc.headline) {
				t.Errorf("outcome %q, headline %q\nwant    %q, %q", rep.Outcome, rep.Headline, tc.outcome, tc.headline)
			}
			if tc.causeSummary != "" {
				if len(rep.Causes) != 1 || rep.Causes[0].Summary != tc.causeSummary {
					t.Errorf("causes = %+v, want one saying %q", rep.Causes, tc.causeSummary)
				}
			}
			if reached := tc.outcome != OutcomeFailed; rep.Reached() != reached {
				t.Errorf("Reached() = %v", rep.Reached())
			}
		})
	}
}

func TestOutcomesAndHeadlines(t *testing.T) {
	minions := map[string][]string{
		"ams01": {"web-ams01-1", "web-ams01-2"},
		"fra02": {"web-fra02-1"},
		"lon03": {"web-lon03-1"},
	}
	commit := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		sink.Expected(minions[tg.Datacenter])
		for _, id := range minions[tg.Datacenter] {
			sink.Answer(MinionAnswer{ID: id, Raw: commitAnswer(id)})
		}
		return nil
	})
	// halfway answers one minion of its datacenter, then its master fails.
	halfway := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		sink.Expected(minions[tg.Datacenter])
		sink.Answer(MinionAnswer{ID: minions[tg.Datacenter][0], Raw: commitAnswer(minions[tg.Datacenter][0])})
		return fmt.Errorf("salt-api salt-eu jobs 2025: %w", syscall.ECONNRESET)
	})
	slow := blameFunc(func(ctx context.Context, _ Target, _ Sink) error {
		<-ctx.Done()
		return ctx.Err()
	})
	tests := []struct {
		name     string
		scope    Scope
		eu, uk   Blamer
		deadline time.Duration
		outcome  Outcome
		headline string
	}{
		{
			name: "complete", scope: Scope{ScopeGroup, "europe"}, eu: commit, uk: commit, outcome: OutcomeComplete,
			headline: "commit e4a91b2 by John Doe explains 4 of 4 failing minions in 3 datacenters",
		},
		{
			name: "one master refuses", scope: Scope{ScopeGroup, "europe"}, eu: commit, uk: failing(refused("salt-uk")), outcome: OutcomePartial,
			headline: "commit e4a91b2 by John Doe explains 3 of 3 failing minions in 2 datacenters; partial: 2 of 3 datacenters answered; lon03 failed: salt-uk connection refused",
		},
		{
			name: "one datacenter times out", scope: Scope{ScopeGroup, "europe"}, eu: commit, uk: slow, deadline: 20 * time.Millisecond, outcome: OutcomePartial,
			headline: "commit e4a91b2 by John Doe explains 3 of 3 failing minions in 2 datacenters; partial: 2 of 3 datacenters answered; lon03 failed: salt-uk timed out",
		},
		{
			name: "a master fails halfway", scope: Scope{ScopeDatacenter, "ams01"}, eu: halfway, uk: commit, outcome: OutcomePartial,
			headline: "commit e4a91b2 by John Doe explains 1 of 1 failing minion in 1 datacenter; partial: 0 of 1 datacenters answered; ams01 incomplete (1 of 2 minions answered): salt-eu connection reset",
		},
		{
			name: "no master answered", scope: Scope{ScopeDatacenter, "lon03"}, eu: commit, uk: failing(refused("salt-uk")), outcome: OutcomeFailed,
			headline: "no master answered: lon03 (salt-uk: connection refused)",
		},
		{
			name: "every master down", scope: Scope{ScopeGroup, "europe"}, eu: failing(errors.New("salt-api salt-eu login: HTTP 500: Internal Server Error")),
			uk: failing(refused("salt-uk")), outcome: OutcomeFailed,
			headline: "no master answered: ams01 (salt-eu: login: HTTP 500: Internal Server Error), fra02 (salt-eu: login: HTTP 500: Internal Server Error), lon03 (salt-uk: connection refused)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := testInventory()
			tr := New(inv, map[string]Blamer{"salt-eu": tc.eu, "salt-uk": tc.uk}, Options{Deadline: tc.deadline})
			rep, err := tr.Triage(context.Background(), tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != tc.outcome || rep.Headline != tc.headline {
				t.Errorf("outcome %q, headline\n%q\nwant %q,\n%q", rep.Outcome, rep.Headline, tc.outcome, tc.headline)
			}
			if reached := tc.outcome != OutcomeFailed; rep.Reached() != reached {
				t.Errorf("Reached() = %v", rep.Reached())
			}
		})
	}
}

func TestStoppedTriageSaysSo(t *testing.T) {
	clk := newClock()
	started := make(chan struct{})
	var once sync.Once
	stuck := blameFunc(func(ctx context.Context, tg Target, sink Sink) error {
		sink.Expected([]string{"web-1"})
		once.Do(func() { close(started) })
		<-ctx.Done()
		return ctx.Err()
	})
	tests := []struct {
		name  string
		rerun func(Scope) string
		want  string
	}{
		{"from a terminal", nil, "Sift was stopped before this triage finished (after 28 s); run it again with `sift triage dc ams01`"},
		{"from Slack", func(s Scope) string { return "`/blame-dc " + s.Name + "`" },
			"Sift was stopped before this triage finished (after 28 s); run it again with `/blame-dc ams01`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			started = make(chan struct{})
			once = sync.Once{}
			tr := New(testInventory(), map[string]Blamer{"salt-eu": stuck}, Options{Now: clk.Now, Rerun: tc.rerun})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-started
				clk.Advance(28 * time.Second)
				cancel()
			}()
			rep, err := tr.Triage(ctx, Scope{ScopeDatacenter, "ams01"})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v", err)
			}
			if rep.Outcome != OutcomeStopped || rep.Headline != tc.want {
				t.Errorf("outcome %q, headline %q\nwant %q", rep.Outcome, rep.Headline, tc.want)
			}
		})
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{refused("salt-eu"), "connection refused"},
		{fmt.Errorf("salt-api salt-eu jobs 1: %w", context.DeadlineExceeded), "timed out"},
		{deadlineError{30 * time.Second}, "timed out"},
		{&net.DNSError{Err: "no such host", Name: "salt-eu", IsNotFound: true}, "unknown host"},
		{errors.New("salt-api salt-eu local_async: client \"local_async\" is disabled\nmore"), "local_async: client \"local_async\" is disabled"},
		{errors.New(strings.Repeat("x", 400)), strings.Repeat("x", maxReason) + "…"},
	}
	for _, tc := range tests {
		if got := Reason(tc.err, "salt-eu"); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestOutcomeOfReportsWithoutOne(t *testing.T) {
	ok := DatacenterResult{Name: "ams01"}
	down := DatacenterResult{Name: "fra02", Error: "connection refused"}
	half := DatacenterResult{Name: "lon03", Error: "timed out", Counts: Counts{Answered: 3}}
	tests := []struct {
		dcs  []DatacenterResult
		want Outcome
	}{
		{nil, OutcomeComplete},
		{[]DatacenterResult{ok}, OutcomeComplete},
		{[]DatacenterResult{ok, down}, OutcomePartial},
		{[]DatacenterResult{down}, OutcomeFailed},
		{[]DatacenterResult{half}, OutcomePartial},
	}
	for _, tc := range tests {
		if got := OutcomeOf(&Report{Datacenters: tc.dcs}); got != tc.want {
			t.Errorf("OutcomeOf(%+v) = %q, want %q", tc.dcs, got, tc.want)
		}
	}
	if got := OutcomeOf(&Report{Outcome: OutcomeStopped}); got != OutcomeStopped {
		t.Errorf("OutcomeOf kept %q", got)
	}
}
