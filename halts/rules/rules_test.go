package rules_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/halts/rules"
	"github.com/sift-chatops/sift/promapi"
	"github.com/sift-chatops/sift/triage"
)

// fakeQuerier answers each query with the scripted samples or error; it
// panics on the calls listed in panicOn (1-based).
type fakeQuerier struct {
	mu      sync.Mutex
	samples []promapi.Sample
	err     error
	calls   int
	panicOn map[int]bool
	called  chan int
}

func (q *fakeQuerier) Query(context.Context, string) ([]promapi.Sample, error) {
	q.mu.Lock()
	q.calls++
	n := q.calls
	samples, err, panics := q.samples, q.err, q.panicOn[n]
	q.mu.Unlock()
	if q.called != nil {
		select {
		case q.called <- n:
		default:
		}
	}
	if panics {
		panic("query exploded")
	}
	return samples, err
}

func (q *fakeQuerier) set(err error, dcs ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.err = err
	q.samples = nil
	for _, dc := range dcs {
		q.samples = append(q.samples, promapi.Sample{Labels: map[string]string{"datacenter": dc, "job": "salt"}, Value: 0.4})
	}
}

var testRule = rules.Rule{
	Name: "salt-failures", Schedule: "@every 1s", Query: `salt_failed_ratio > 0.2`,
	ScopeLabel: "datacenter", ScopeKind: triage.ScopeDatacenter,
}

func openScopes(t *testing.T, r *haltstest.Rig) []string {
	t.Helper()
	hs, err := r.Svc.OpenHalts(context.Background(), halts.SourceRule, testRule.Name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Scope.Name)
	}
	return out
}

func TestRuleCheck(t *testing.T) {
	r := haltstest.NewRig(t, haltstest.NewPoster())
	q := &fakeQuerier{}
	sched, err := rules.New(r.Svc, q, []rules.Rule{testRule}, rules.Options{PrometheusURL: "http://prometheus.example.com:9090", Log: r.Log})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		err      error
		dcs      []string
		wantOpen string
		wantErr  bool
	}{
		{"two series fire", nil, []string{"ams01", "fra02"}, "ams01,fra02", false},
		{"the same again, and a duplicate series", nil, []string{"fra02", "ams01", "ams01"}, "ams01,fra02", false},
		{"ams01 gone: resolved", nil, []string{"fra02"}, "fra02", false},
		{"Prometheus down: nothing resolved", errors.New("prometheus query: connection refused"), nil, "fra02", true},
		{"series without the label skipped", nil, []string{"fra02", ""}, "fra02", false},
		{"ams01 halts again", nil, []string{"fra02", "ams01"}, "fra02,ams01", false},
		{"all clear", nil, nil, "", false},
	}
	for _, s := range steps {
		q.set(s.err, s.dcs...)
		r.Clock.Advance(time.Minute)
		err := sched.Check(context.Background(), testRule)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Check = %v, want error %v", s.name, err, s.wantErr)
		}
		if got := strings.Join(openScopes(t, r), ","); got != s.wantOpen {
			t.Fatalf("%s: open halts %q, want %q", s.name, got, s.wantOpen)
		}
	}
	// ams01 halted twice: two halts, each with its own fingerprint.
	var ams []halts.Halt
	for _, h := range r.Halts() {
		if h.Scope.Name == "ams01" {
			ams = append(ams, h)
		}
	}
	if len(ams) != 2 || ams[0].Fingerprint == ams[1].Fingerprint {
		t.Errorf("ams01 halts %+v: want two distinct halts", ams)
	}
	if h := ams[0]; !strings.Contains(h.Reason, "salt_failed_ratio > 0.2 returned 0.4") || !strings.HasPrefix(h.URL, "http://prometheus.example.com:9090/graph?g0.expr=") {
		t.Errorf("halt reason %q, url %q", h.Reason, h.URL)
	}
}

func TestNewRulesRefusesBadRules(t *testing.T) {
	r := haltstest.NewRig(t, haltstest.NewPoster())
	bad := testRule
	bad.Schedule = "every minute"
	badKind := testRule
	badKind.ScopeKind = "rack"
	_, err := rules.New(r.Svc, &fakeQuerier{}, []rules.Rule{bad, badKind}, rules.Options{})
	if err == nil || !strings.Contains(err.Error(), `schedule "every minute"`) || !strings.Contains(err.Error(), `scope kind "rack"`) {
		t.Errorf("NewRules = %v, want both problems", err)
	}
}

// TestPanickingCheckDoesNotStopScheduler runs the real cron scheduler: the
// first check panics, and later checks still run.
func TestPanickingCheckDoesNotStopScheduler(t *testing.T) {
	r := haltstest.NewRig(t, haltstest.NewPoster())
	r.Log.SetLevel(logrus.DebugLevel)
	q := &fakeQuerier{panicOn: map[int]bool{1: true}, called: make(chan int, 10)}
	q.set(nil, "ams01")
	sched, err := rules.New(r.Svc, q, []rules.Rule{testRule}, rules.Options{Log: r.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	var stopped bool
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}
	}
	defer stop()
	deadline := time.After(30 * time.Second)
	for n := 0; n < 3; {
		select {
		case n = <-q.called:
		case <-deadline:
			t.Fatalf("the scheduler stopped after %d checks", n)
		}
	}
	stop()
	if got := openScopes(t, r); len(got) != 1 || got[0] != "ams01" {
		t.Errorf("open halts %v: want ams01 from the checks after the panic", got)
	}
}

// TestFollowerRunsNoCheck: a replica that does not lead the rules asks at
// each turn and queries nothing.
func TestFollowerRunsNoCheck(t *testing.T) {
	r := haltstest.NewRig(t, haltstest.NewPoster())
	q := &fakeQuerier{}
	q.set(nil, "ams01")
	asked := make(chan struct{}, 10)
	follower := func(context.Context) (bool, error) {
		select {
		case asked <- struct{}{}:
		default:
		}
		return false, nil
	}
	sched, err := rules.New(r.Svc, q, []rules.Rule{testRule}, rules.Options{Leader: follower, Log: r.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	deadline := time.After(30 * time.Second)
	for range 2 {
		select {
		case <-asked:
		case <-deadline:
			t.Fatal("the scheduler never asked for the leadership")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	q.mu.Lock()
	calls := q.calls
	q.mu.Unlock()
	if calls != 0 || len(openScopes(t, r)) != 0 {
		t.Errorf("a follower ran %d queries and has open halts %v; want none", calls, openScopes(t, r))
	}
}
