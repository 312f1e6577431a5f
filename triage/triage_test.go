package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBlamer answers from a fixed table of minions per datacenter.
type fakeBlamer struct {
	mu      sync.Mutex
	byDC    map[string]map[string]json.RawMessage // datacenter → minion → answer; nil answer = silent
	err     error
	latency time.Duration
	calls   []Target
}

func (f *fakeBlamer) Blame(ctx context.Context, t Target, sink Sink) error {
	f.mu.Lock()
	f.calls = append(f.calls, t)
	f.mu.Unlock()
	if f.latency > 0 {
		select {
		case <-time.After(f.latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.err != nil {
		return f.err
	}
	if len(t.Minions) > 0 {
		for _, dc := range f.byDC {
			for _, id := range t.Minions {
				if raw, ok := dc[id]; ok && raw != nil {
					sink.Answer(MinionAnswer{ID: id, Raw: raw})
				}
			}
		}
		return nil
	}
	minions := f.byDC[t.Datacenter]
	ids := make([]string, 0, len(minions))
	for id := range minions {
		ids = append(ids, id)
	}
	sink.Expected(ids)
	for id, raw := range minions {
		if raw != nil {
			sink.Answer(MinionAnswer{ID: id, Raw: raw})
		}
	}
	return nil
}

func fleet(dc string, n int, answer func(string) json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, n)
	for i := range n {
		id := fmt.Sprintf("web-%s-%03d", dc, i)
		if answer == nil {
			out[id] = nil
		} else {
			out[id] = answer(id)
		}
	}
	return out
}

func merge(ms ...map[string]json.RawMessage) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func testInventory() Inventory {
	return Inventory{
		Datacenters: []Datacenter{
			{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01"},
			{Name: "fra02", Master: "salt-eu", Target: "G@datacenter:fra02"},
			{Name: "lon03", Master: "salt-uk", Target: "G@datacenter:lon03"},
		},
		Groups: map[string][]string{"europe": {"ams01", "fra02", "lon03"}},
	}
}

func TestGroupWithOneMasterDown(t *testing.T) {
	eu := &fakeBlamer{byDC: map[string]map[string]json.RawMessage{
		"ams01": merge(fleet("ams01", 20, commitAnswer), fleet("ams01x", 3, nil)),
		"fra02": merge(fleet("fra02", 10, commitAnswer), fleet("fra02h", 5, func(string) json.RawMessage { return healthyAnswer() })),
	}}
	uk := &fakeBlamer{err: errors.New("salt-api salt-uk: connection refused")}
	var mu sync.Mutex
	var events []Progress
	tr := New(testInventory(), map[string]Blamer{"salt-eu": eu, "salt-uk": uk}, Options{
		MaxParallel: 2,
		Progress: func(p Progress) {
			mu.Lock()
			events = append(events, p)
			mu.Unlock()
		},
	})
	rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Reached() {
		t.Error("report says no master was reached")
	}
	want := Counts{Expected: 38, Answered: 35, Healthy: 5, Failing: 30, Unreachable: 3}
	if rep.Counts != want {
		t.Errorf("counts = %+v\nwant     %+v", rep.Counts, want)
	}
	if rep.Headline != "commit e4a91b2 by John Doe explains 30 of 30 failing minions in 2 datacenters; partial: 2 of 3 datacenters answered; lon03 failed: salt-uk connection refused" {
		t.Errorf("headline = %q", rep.Headline)
	}
	var lon DatacenterResult
	for _, dc := range rep.Datacenters {
		if dc.Name == "lon03" {
			lon = dc
		}
	}
	if !strings.Contains(lon.Error, "connection refused") || lon.Master != "salt-uk" {
		t.Errorf("lon03 result = %+v", lon)
	}
	if got := rep.Datacenters[0]; got.Name != "ams01" || got.Counts.Expected != 23 || got.Counts.Unreachable != 3 || got.Error != "" {
		t.Errorf("ams01 result = %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if events[0].Kind != ProgressStarted || events[0].DatacentersTotal != 3 {
		t.Errorf("first event = %+v", events[0])
	}
	last := events[len(events)-1]
	if last.Kind != ProgressDatacenterFinished || last.DatacentersDone != 3 || len(last.Running) != 0 {
		t.Errorf("last event = %+v", last)
	}
	finished := 0
	for _, e := range events {
		if e.Kind == ProgressDatacenterFinished {
			finished++
			if e.Datacenter == "lon03" && e.Err == nil {
				t.Error("lon03's finish event has no error")
			}
		}
	}
	if finished != 3 {
		t.Errorf("%d finish events, want 3", finished)
	}
}

func TestNoMasterReached(t *testing.T) {
	down := &fakeBlamer{err: errors.New("connection refused")}
	tr := New(testInventory(), map[string]Blamer{"salt-eu": down, "salt-uk": down}, Options{})
	rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reached() {
		t.Error("Reached() with every master down")
	}
}

func TestSlowDatacenterHitsDeadline(t *testing.T) {
	slow := &fakeBlamer{latency: time.Minute}
	fast := &fakeBlamer{byDC: map[string]map[string]json.RawMessage{"lon03": fleet("lon03", 4, func(string) json.RawMessage { return healthyAnswer() })}}
	tr := New(testInventory(), map[string]Blamer{"salt-eu": slow, "salt-uk": fast}, Options{Deadline: 50 * time.Millisecond})
	rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Healthy != 4 {
		t.Errorf("the fast datacenter's answers were lost: %+v", rep.Counts)
	}
	for _, dc := range rep.Datacenters[:2] {
		if !strings.Contains(dc.Error, "no complete answer within 50ms") {
			t.Errorf("%s error = %q", dc.Name, dc.Error)
		}
	}
}

func TestMinionScopeAsksEveryMaster(t *testing.T) {
	eu := &fakeBlamer{byDC: map[string]map[string]json.RawMessage{"ams01": {"web-ams01-001": commitAnswer("web-ams01-001")}}}
	uk := &fakeBlamer{byDC: map[string]map[string]json.RawMessage{"lon03": {"web-ams01-001": json.RawMessage(`"Minion did not return. [No response]"`)}}}
	tr := New(testInventory(), map[string]Blamer{"salt-eu": eu, "salt-uk": uk}, Options{})
	rep, err := tr.Triage(context.Background(), Scope{ScopeMinion, "web-ams01-001"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Failing != 1 || rep.Counts.Expected != 1 || rep.Counts.Unreachable != 0 {
		t.Errorf("counts = %+v", rep.Counts)
	}
	if len(eu.calls) != 1 || eu.calls[0].Expr != "" || len(eu.calls[0].Minions) != 1 || eu.calls[0].Minions[0] != "web-ams01-001" {
		t.Errorf("calls = %+v", eu.calls)
	}
	if !strings.HasPrefix(rep.Headline, "commit e4a91b2 by John Doe explains 1 of 1 failing minion") {
		t.Errorf("headline = %q", rep.Headline)
	}
}

func TestScopeErrorsBeforeAnyCall(t *testing.T) {
	b := &fakeBlamer{}
	tr := New(testInventory(), map[string]Blamer{"salt-eu": b, "salt-uk": b}, Options{})
	tests := []struct {
		scope Scope
		want  string
	}{
		{Scope{ScopeMinion, "web-*"}, `minion id "web-*": not a minion id`},
		{Scope{ScopeMinion, "a,b"}, `minion id "a,b": not a minion id`},
		{Scope{ScopeMinion, "G@os:Debian"}, "not a minion id"},
		{Scope{ScopeDatacenter, "ams1"}, `unknown datacenter "ams1" (did you mean ams01?)`},
		{Scope{ScopeGroup, "eu"}, `unknown group "eu"`},
	}
	for _, tc := range tests {
		_, err := tr.Triage(context.Background(), tc.scope)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.scope, err, tc.want)
		}
	}
	if len(b.calls) != 0 {
		t.Errorf("%d calls made for refused scopes", len(b.calls))
	}
}

func TestCancelledTriageKeepsWhatItHas(t *testing.T) {
	eu := &fakeBlamer{byDC: map[string]map[string]json.RawMessage{"ams01": fleet("ams01", 3, commitAnswer)}}
	slow := &fakeBlamer{latency: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Stopped once ams01 has answered, while lon03 still runs.
	tr := New(testInventory(), map[string]Blamer{"salt-eu": eu, "salt-uk": slow}, Options{Progress: func(p Progress) {
		if p.Kind == ProgressDatacenterFinished && p.Datacenter == "ams01" {
			cancel()
		}
	}})
	rep, err := tr.Triage(ctx, Scope{ScopeGroup, "europe"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if rep == nil || rep.Counts.Failing != 3 {
		t.Fatalf("partial report lost: %+v", rep)
	}
}
