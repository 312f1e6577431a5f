package triage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallGuard bounds a wait that only a deadlock makes long.
const stallGuard = 10 * time.Second

func TestProgressConsumerDoesNotStallCollection(t *testing.T) {
	// The consumer holds its first event until every datacenter's minions
	// have been handed over. Were it called under the triage's lock, the
	// datacenters could hand over nothing and this would never end.
	inv := testInventory()
	var answered sync.WaitGroup
	answered.Add(len(inv.Datacenters))
	collected := make(chan struct{})
	go func() {
		answered.Wait()
		close(collected)
	}()
	b := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		defer answered.Done()
		ids := []string{"web-" + tg.Datacenter + "-1", "web-" + tg.Datacenter + "-2"}
		sink.Expected(ids)
		for _, id := range ids {
			sink.Answer(MinionAnswer{ID: id, Raw: healthyAnswer()})
		}
		return nil
	})
	stalled := false
	var events []Progress
	tr := New(inv, map[string]Blamer{"salt-eu": b, "salt-uk": b}, Options{
		ProgressInterval: time.Nanosecond,
		Progress: func(p Progress) {
			if len(events) == 0 {
				select {
				case <-collected:
				case <-time.After(stallGuard):
					stalled = true
				}
			}
			events = append(events, p)
		},
	})
	rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
	if err != nil {
		t.Fatal(err)
	}
	// Triage returns after the last event: no lock needed to read them.
	if stalled {
		t.Fatal("the datacenters handed over nothing while the progress consumer was busy")
	}
	if rep.Counts.Healthy != 6 {
		t.Errorf("counts = %+v", rep.Counts)
	}
	last := events[len(events)-1]
	if last.Kind != ProgressDatacenterFinished || last.DatacentersDone != 3 || last.MinionsAnswered != 6 {
		t.Errorf("last event = %+v", last)
	}
}

func TestProgressEventsComeInOrder(t *testing.T) {
	// Many datacenters finishing at once: the events a consumer sees say
	// what happened in the order it happened, whatever the scheduling.
	const n = 40
	inv := Inventory{Groups: map[string][]string{"all": nil}}
	for i := range n {
		name := fmt.Sprintf("dc%02d", i)
		inv.Datacenters = append(inv.Datacenters, Datacenter{Name: name, Master: "salt", Target: "G@datacenter:" + name})
		inv.Groups["all"] = append(inv.Groups["all"], name)
	}
	b := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		ids := make([]string, 5)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-%d", tg.Datacenter, i)
		}
		sink.Expected(ids)
		for _, id := range ids {
			sink.Answer(MinionAnswer{ID: id, Raw: healthyAnswer()})
		}
		return nil
	})
	var events []Progress
	tr := New(inv, map[string]Blamer{"salt": b}, Options{
		MaxParallel: n, ProgressInterval: time.Nanosecond,
		Progress: func(p Progress) {
			time.Sleep(50 * time.Microsecond) // a consumer slower than the triage
			events = append(events, p)
		},
	})
	if _, err := tr.Triage(context.Background(), Scope{ScopeGroup, "all"}); err != nil {
		t.Fatal(err)
	}
	if events[0].Kind != ProgressStarted {
		t.Fatalf("first event %+v", events[0])
	}
	started := map[string]bool{}
	finished := 0
	prevDone, prevAnswered := 0, 0
	for i, e := range events {
		if e.DatacentersDone < prevDone || e.MinionsAnswered < prevAnswered {
			t.Fatalf("event %d went back: done %d after %d, answered %d after %d", i, e.DatacentersDone, prevDone, e.MinionsAnswered, prevAnswered)
		}
		prevDone, prevAnswered = e.DatacentersDone, e.MinionsAnswered
		switch e.Kind {
		case ProgressDatacenterStarted:
			started[e.Datacenter] = true
		case ProgressDatacenterFinished:
			if !started[e.Datacenter] {
				t.Fatalf("event %d: %s finished before it started", i, e.Datacenter)
			}
			finished++
			if e.DatacentersDone != finished || e.DatacenterAnswered != 5 || e.DatacenterExpected != 5 {
				t.Errorf("finish event %d = %+v", i, e)
			}
		}
	}
	if finished != n {
		t.Errorf("%d finish events, want %d", finished, n)
	}
}

func TestProgressShowsEachDatacenterAndWhatIsPending(t *testing.T) {
	clk := newClock()
	release, hungStarted := make(chan struct{}), make(chan struct{})
	fast := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		<-hungStarted // so that fra02 is pending when ams01 ends
		ids := []string{"a-1", "a-2", "a-3"}
		sink.Expected(ids)
		for _, id := range ids[:2] {
			sink.Answer(MinionAnswer{ID: id, Raw: healthyAnswer()})
		}
		clk.Advance(4 * time.Second)
		return nil
	})
	hung := blameFunc(func(ctx context.Context, tg Target, sink Sink) error {
		sink.Expected([]string{"b-1"})
		close(hungStarted)
		<-release
		return nil
	})
	inv := Inventory{
		Datacenters: []Datacenter{{Name: "fra02", Master: "salt-eu", Target: "x"}, {Name: "ams01", Master: "salt-nl", Target: "y"}},
		Groups:      map[string][]string{"europe": {"fra02", "ams01"}},
	}
	var events []Progress
	tr := New(inv, map[string]Blamer{"salt-eu": hung, "salt-nl": fast}, Options{
		Now: clk.Now,
		Progress: func(p Progress) {
			events = append(events, p)
			if p.Kind == ProgressDatacenterFinished && p.Datacenter == "ams01" {
				close(release)
			}
		},
	})
	if _, err := tr.Triage(context.Background(), Scope{ScopeGroup, "europe"}); err != nil {
		t.Fatal(err)
	}
	var ams Progress
	for _, e := range events {
		if e.Kind == ProgressDatacenterFinished && e.Datacenter == "ams01" {
			ams = e
		}
	}
	if ams.Master != "salt-nl" || ams.DatacenterAnswered != 2 || ams.DatacenterExpected != 3 {
		t.Errorf("ams01's own counts: %+v", ams)
	}
	if len(ams.Pending) != 1 {
		t.Fatalf("pending when ams01 finished = %+v", ams.Pending)
	}
	want := PendingDatacenter{Name: "fra02", Master: "salt-eu", Answered: 0, Expected: 1, Waiting: 4 * time.Second}
	if ams.Pending[0] != want {
		t.Errorf("pending = %+v, want %+v", ams.Pending[0], want)
	}
}

func TestPanicReachesTheCaller(t *testing.T) {
	healthy := blameFunc(func(_ context.Context, tg Target, sink Sink) error {
		sink.Expected([]string{"web-1"})
		sink.Answer(MinionAnswer{ID: "web-1", Raw: healthyAnswer()})
		return nil
	})
	tests := []struct {
		name     string
		eu       Blamer
		progress func(Progress)
		where    string
	}{
		{
			name: "in a blamer",
			eu: blameFunc(func(context.Context, Target, Sink) error {
				var m map[string]int
				m["x"]++ // a nil map: the kind of bug a decoder has
				return nil
			}),
			where: "TestPanicReachesTheCaller",
		},
		{
			name: "in a progress callback", eu: healthy,
			progress: func(p Progress) {
				if p.Kind == ProgressDatacenterFinished {
					panic("consumer bug")
				}
			},
			where: "TestPanicReachesTheCaller",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(testInventory(), map[string]Blamer{"salt-eu": tc.eu, "salt-uk": healthy}, Options{Progress: tc.progress})
			var got any
			func() {
				defer func() { got = recover() }()
				_, _ = tr.Triage(context.Background(), Scope{ScopeGroup, "europe"})
			}()
			p, ok := got.(*PanicError)
			if !ok {
				t.Fatalf("recovered %v (%T), want a *PanicError", got, got)
			}
			if !strings.Contains(string(p.Stack), tc.where) {
				t.Errorf("stack does not show where it happened:\n%s", p.Stack)
			}
		})
	}
}

func TestSavedEvidenceProgressCountsAnswers(t *testing.T) {
	in := fmt.Sprintf(`{"web-1": %s, "web-2": %s, "web-3": %s}`, healthyAnswer(), healthyAnswer(), healthyAnswer())
	var last Progress
	tr := New(testInventory(), nil, Options{ProgressInterval: time.Nanosecond, Progress: func(p Progress) { last = p }})
	if _, err := tr.TriageInput(context.Background(), Scope{ScopeDatacenter, "ams01"}, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if last.MinionsAnswered != 3 {
		t.Errorf("last event = %+v, want 3 minions answered", last)
	}
}
