package saltapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/triage"
)

const password = "s3cret-Pa55word-never-shown"

// sink records what a blame call delivers, and how many polls the fake had
// served when each answer arrived.
type sink struct {
	srv      *fakesalt.Server
	expected []string
	answers  map[string]json.RawMessage
	absent   map[string]triage.Absence
	notes    []string
	order    []string
	atPoll   []int
	onAnswer func(a triage.MinionAnswer)
}

func newSink(srv *fakesalt.Server) *sink {
	return &sink{srv: srv, answers: map[string]json.RawMessage{}, absent: map[string]triage.Absence{}}
}

func (s *sink) Expected(ids []string) { s.expected = append(s.expected, ids...) }
func (s *sink) Note(note string)      { s.notes = append(s.notes, note) }

func (s *sink) Absent(ids []string, why triage.Absence) {
	for _, id := range ids {
		s.absent[id] = why
	}
}

func (s *sink) Answer(a triage.MinionAnswer) {
	s.answers[a.ID] = a.Raw
	s.order = append(s.order, a.ID)
	if s.srv != nil {
		s.atPoll = append(s.atPoll, s.srv.Polls())
	}
	if s.onAnswer != nil {
		s.onAnswer(a)
	}
}

func lab() *fakesalt.Master {
	ams := map[string]string{"datacenter": "ams01"}
	return &fakesalt.Master{
		Name: "salt-lab", Username: "sift", Password: password, Eauth: "sharedsecret",
		Minions: []*fakesalt.Minion{
			{ID: "web-1", Grains: ams, Answer: fakesalt.FailedState(fakesalt.Failure{})},
			{ID: "web-2", Grains: ams, Answer: fakesalt.Healthy(), Delay: 60 * time.Millisecond},
			{ID: "web-3", Grains: ams, Answer: fakesalt.ModuleMissing(), Delay: 120 * time.Millisecond},
			{ID: "db-1", Grains: ams, Unreachable: true},
			{ID: "ghost-1", Grains: ams, NotAccepted: true},
			{ID: "web-9", Grains: map[string]string{"datacenter": "fra02"}, Answer: fakesalt.Healthy()},
		},
	}
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// start is where the virtual clocks of the tests start.
var start = time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)

// config is a client of srv, polling on a virtual clock shared with srv:
// no test waits on, or depends on, the wall clock.
func config(srv *fakesalt.Server, logs *logBuffer) Config {
	clock := fakesalt.NewClock(start)
	srv.UseClock(clock.Now)
	log := logrus.New()
	log.SetLevel(logrus.TraceLevel)
	if logs != nil {
		log.SetOutput(logs)
	} else {
		log.SetOutput(&logBuffer{})
	}
	return Config{
		Name: "salt-lab", URL: srv.URL(), Eauth: "sharedsecret", Username: "sift", Password: password,
		Timeout: 200 * time.Millisecond, GatherJobTimeout: 100 * time.Millisecond,
		PollInterval: 25 * time.Millisecond, Log: log, Clock: clock,
	}
}

// elapsed is how much virtual time a client of cfg spent.
func elapsed(cfg Config) time.Duration { return cfg.Clock.Now().Sub(start) }

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestBlameListDeliversEveryKindOfAnswer(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	c := newClient(t, config(srv, nil))
	s := newSink(nil)
	ids := []string{"web-1", "db-1", "ghost-1", "web-3", "nosuch-9"}
	if err := c.Blame(ctx(t), triage.Target{Master: "salt-lab", Minions: ids}, s); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.expected, ids) {
		t.Errorf("expected %v, want %v", s.expected, ids)
	}
	if !jsonEqual(s.answers["web-1"], fakesalt.FailedState(fakesalt.Failure{})) {
		t.Errorf("web-1 = %.200s", s.answers["web-1"])
	}
	// db-1 is connected but hung: asked, and silent.
	if string(s.answers["db-1"]) != "false" {
		t.Errorf("unreachable db-1 = %s, want false", s.answers["db-1"])
	}
	// The master has no key for these: they are not asked.
	if want := map[string]triage.Absence{"ghost-1": triage.NotAMinion, "nosuch-9": triage.NotAMinion}; !maps.Equal(s.absent, want) {
		t.Errorf("absent %v, want %v", s.absent, want)
	}
	// The module-missing tracebacks reach the domain verbatim.
	var real struct {
		Return []map[string]json.RawMessage `json:"return"`
	}
	_ = json.Unmarshal(fakesalt.Sample("48-local-multi-fun-module-missing.json"), &real)
	if !jsonEqual(s.answers["web-3"], real.Return[0]["web-1"]) {
		t.Errorf("web-3 = %.200s", s.answers["web-3"])
	}
	if len(s.answers) != 3 || srv.Calls("local") != 1 || srv.Calls("runner") != 2 || srv.Logins() != 1 || len(s.notes) != 0 {
		t.Errorf("%d answers, %d local calls, %d runner calls, %d logins, notes %q",
			len(s.answers), srv.Calls("local"), srv.Calls("runner"), srv.Logins(), s.notes)
	}

	// The token is reused by the next call.
	if err := c.Blame(ctx(t), triage.Target{Minions: []string{"web-1"}}, newSink(nil)); err != nil {
		t.Fatal(err)
	}
	if srv.Logins() != 1 {
		t.Errorf("second call logged in again: %d logins", srv.Logins())
	}
}

func TestBlameListSkipsWhatPresenceRulesOut(t *testing.T) {
	m := lab()
	m.Minions = append(m.Minions, &fakesalt.Minion{ID: "web-4", Grains: map[string]string{"datacenter": "ams01"}, Disconnected: true})
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	c := newClient(t, config(srv, nil))

	s := newSink(nil)
	if err := c.Blame(ctx(t), triage.Target{Minions: []string{"web-4", "web-1"}}, s); err != nil {
		t.Fatal(err)
	}
	if s.absent["web-4"] != triage.NotConnected || len(s.answers) != 1 || s.answers["web-1"] == nil {
		t.Errorf("absent %v, answers %v", s.absent, s.order)
	}

	// Nothing left to ask: no job at all.
	s = newSink(nil)
	if err := c.Blame(ctx(t), triage.Target{Minions: []string{"web-4", "web-7"}}, s); err != nil {
		t.Fatal(err)
	}
	want := map[string]triage.Absence{"web-4": triage.NotConnected, "web-7": triage.NotAMinion}
	if !maps.Equal(s.absent, want) || len(s.answers) != 0 || srv.Calls("local") != 1 {
		t.Errorf("absent %v, answers %v, %d local calls", s.absent, s.order, srv.Calls("local"))
	}
}

// TestBlameListWithoutPresence is a user who may not run the manage
// runner: every id is asked, Salt's no-response string tells the ids that
// are no minion, and the report says once why silent minions were waited for.
func TestBlameListWithoutPresence(t *testing.T) {
	m := lab()
	m.RunnerRefused = true
	m.Minions = append(m.Minions, &fakesalt.Minion{ID: "web-4", Disconnected: true})
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	logs := &logBuffer{}
	c := newClient(t, config(srv, logs))
	s := newSink(nil)
	if err := c.Blame(ctx(t), triage.Target{Minions: []string{"web-1", "web-4", "nosuch-9"}}, s); err != nil {
		t.Fatal(err)
	}
	if want := map[string]triage.Absence{"nosuch-9": triage.NotAMinion}; !maps.Equal(s.absent, want) {
		t.Errorf("absent %v, want %v", s.absent, want)
	}
	if string(s.answers["web-4"]) != "false" || s.answers["web-1"] == nil || len(s.answers) != 2 {
		t.Errorf("answers %v", s.order)
	}
	wantNote := "presence unknown: salt-lab refused the manage runner (HTTP 401), so minions that do not answer are waited for until Salt's timeout; grant @runner: [manage.present, manage.not_present] (see salt/README.md)"
	if !slices.Equal(s.notes, []string{wantNote}) {
		t.Errorf("notes %q", s.notes)
	}
	// A refused runner is no expired token: no new login.
	if srv.Logins() != 1 || !strings.Contains(logs.String(), "presence unknown") {
		t.Errorf("%d logins; logs:\n%s", srv.Logins(), logs)
	}
}

// TestBlameListRealAnswers feeds the client salt-api's captured bytes.
func TestBlameListRealAnswers(t *testing.T) {
	m := lab()
	m.RunnerRefused = true // every id is asked
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	c := newClient(t, config(srv, nil))
	cases := []struct {
		sample string
		ids    []string
		want   map[string]string
		absent []string
	}{
		// full_return wrapping, web-2 stopped: unwrapped true, false kept.
		{"30-local-stopped-minion-full-return.json", []string{"web-1", "web-2"}, map[string]string{"web-1": "true", "web-2": "false"}, nil},
		// A multi-function full_return: the ret dict is delivered.
		{"09-local-multi-fun-full-return.json", []string{"web-1", "web-2"}, map[string]string{
			"web-1": `{"test.ping": true, "grains.item": {"datacenter": "ams01"}}`,
			"web-2": `{"test.ping": true, "grains.item": {"datacenter": "ams01"}}`}, nil},
		// An id with no key answers the no-response string; an absent
		// minion is not delivered.
		{"18-local-list-unknown-id.json", []string{"web-1", "nosuch-9", "web-7"}, map[string]string{"web-1": "true"}, []string{"nosuch-9"}},
	}
	for _, tc := range cases {
		srv.Inject(fakesalt.Fault{Path: "/", Client: "local", Status: 200, Body: string(fakesalt.Sample(tc.sample))})
		s := newSink(nil)
		if err := c.Blame(ctx(t), triage.Target{Minions: tc.ids}, s); err != nil {
			t.Fatalf("%s: %v", tc.sample, err)
		}
		if len(s.answers) != len(tc.want) {
			t.Errorf("%s: answers %v", tc.sample, s.order)
		}
		for id, want := range tc.want {
			got, ok := s.answers[id]
			switch {
			case !ok:
				t.Errorf("%s: %s not delivered", tc.sample, id)
			case !jsonEqual(got, []byte(want)):
				t.Errorf("%s: %s = %s, want %s", tc.sample, id, got, want)
			}
		}
		for _, id := range tc.absent {
			if s.absent[id] != triage.NotAMinion {
				t.Errorf("%s: %s absent as %v", tc.sample, id, s.absent[id])
			}
		}
	}
}

func TestBlameExprCompletesOverSeveralPolls(t *testing.T) {
	m := lab()
	m.Minions = slices.DeleteFunc(m.Minions, func(mn *fakesalt.Minion) bool { return mn.Unreachable })
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	cfg := config(srv, nil)
	cfg.Timeout, cfg.GatherJobTimeout = 5*time.Second, 5*time.Second
	c := newClient(t, cfg)
	s := newSink(srv)
	if err := c.Blame(ctx(t), triage.Target{Master: "salt-lab", Datacenter: "ams01", Expr: "G@datacenter:ams01"}, s); err != nil {
		t.Fatal(err)
	}
	// web-3 answers 120 ms after the job starts: polls every 25 ms end soon after.
	if took := elapsed(cfg); took > time.Second {
		t.Errorf("took %v: it should stop once every expected minion answered", took)
	}
	if want := []string{"web-1", "web-2", "web-3"}; !slices.Equal(s.order, want) || !slices.Equal(s.expected, want) {
		t.Errorf("answers %v expected %v, want %v", s.order, s.expected, want)
	}
	if polls := slices.Compact(slices.Clone(s.atPoll)); len(polls) < 2 {
		t.Errorf("answers arrived at polls %v, want more than one poll", s.atPoll)
	}
	if !jsonEqual(s.answers["web-2"], fakesalt.Healthy()) {
		t.Errorf("web-2 = %.200s", s.answers["web-2"])
	}
	if srv.Calls("local_async") != 1 {
		t.Errorf("%d local_async calls", srv.Calls("local_async"))
	}
}

func TestBlameExprStopsAtTheDeadline(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	cfg := config(srv, nil)
	c := newClient(t, cfg)
	s := newSink(srv)
	if err := c.Blame(ctx(t), triage.Target{Expr: "G@datacenter:ams01"}, s); err != nil {
		t.Fatal(err)
	}
	// db-1 is connected and silent: waited for, 200 ms + 100 ms + one poll.
	if took := elapsed(cfg); took < 325*time.Millisecond || took > 400*time.Millisecond {
		t.Errorf("took %v, want 325 ms", took)
	}
	slices.Sort(s.expected)
	if want := []string{"db-1", "web-1", "web-2", "web-3"}; !slices.Equal(s.expected, want) {
		t.Errorf("expected %v, want %v", s.expected, want)
	}
	if _, ok := s.answers["db-1"]; ok || len(s.answers) != 3 || len(s.absent) != 0 {
		t.Errorf("answers %v, absent %v: the silent db-1 must not be delivered", s.order, s.absent)
	}
}

// TestBlameExprLastRead: an answer that reaches the master after the last
// regular poll and before the deadline is read all the same.
func TestBlameExprLastRead(t *testing.T) {
	m := lab()
	m.Minions[1].Delay = 310 * time.Millisecond // polls at 300 and 325 ms
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	cfg := config(srv, nil)
	s := newSink(srv)
	if err := newClient(t, cfg).Blame(ctx(t), exprTarget, s); err != nil {
		t.Fatal(err)
	}
	if s.answers["web-2"] == nil || len(s.answers) != 3 {
		t.Errorf("answers %v after %v", s.order, elapsed(cfg))
	}
}

// TestBlameExprPresence: minions the master lists as not connected are
// absent at once, and the job ends when the connected ones answered.
func TestBlameExprPresence(t *testing.T) {
	m := lab()
	m.Minions = slices.DeleteFunc(m.Minions, func(mn *fakesalt.Minion) bool { return mn.Unreachable })
	for _, id := range []string{"app-1", "app-2"} {
		m.Minions = append(m.Minions, &fakesalt.Minion{ID: id, Grains: map[string]string{"datacenter": "ams01"}, Disconnected: true})
	}
	m.Minions = append(m.Minions, &fakesalt.Minion{ID: "app-3", Grains: map[string]string{"datacenter": "fra02"}, Disconnected: true})
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	cfg := config(srv, nil)
	cfg.Timeout, cfg.GatherJobTimeout = 30*time.Second, 10*time.Second
	s := newSink(srv)
	if err := newClient(t, cfg).Blame(ctx(t), exprTarget, s); err != nil {
		t.Fatal(err)
	}
	if want := map[string]triage.Absence{"app-1": triage.NotConnected, "app-2": triage.NotConnected}; !maps.Equal(s.absent, want) {
		t.Errorf("absent %v, want %v (app-3 is not in the target)", s.absent, want)
	}
	if len(s.answers) != 3 || len(s.notes) != 0 {
		t.Errorf("answers %v, notes %q", s.order, s.notes)
	}
	if took := elapsed(cfg); took >= 30*time.Second {
		t.Errorf("took %v: the disconnected minions were waited for", took)
	}
}

// TestBlameExprPresenceUnknown: a master that cannot say who is connected
// costs the wait for the silent minions, never the triage, and the report
// says so once.
func TestBlameExprPresenceUnknown(t *testing.T) {
	cases := []struct {
		name  string
		setup func(srv *fakesalt.Server)
		note  string
	}{
		{"runner refused", func(srv *fakesalt.Server) { srv.Update(func(m *fakesalt.Master) { m.RunnerRefused = true }) },
			"presence unknown: salt-lab refused the manage runner (HTTP 401), so minions that do not answer are waited for until Salt's timeout; grant @runner: [manage.present, manage.not_present] (see salt/README.md)"},
		{"runner client disabled", func(srv *fakesalt.Server) {
			srv.Update(func(m *fakesalt.Master) { m.DisabledClients = []string{"runner"} })
		}, "presence unknown: salt-lab has the runner client disabled (HTTP 400), so minions that do not answer are waited for until Salt's timeout; add runner to netapi_enable_clients in the master config"},
		{"runner times out", func(srv *fakesalt.Server) {
			srv.Inject(fakesalt.Fault{Path: "/", Client: "runner", Status: 504, Body: fakesalt.PageGatewayTimeout()})
		}, "presence unknown: salt-lab did not answer the manage runner within 10s (HTTP 504), so minions that do not answer are waited for until Salt's timeout"},
		{"runner too old", func(srv *fakesalt.Server) {
			for range 2 {
				srv.Inject(fakesalt.Fault{Path: "/", Client: "runner", Status: 200, Body: `{"return": ["'manage.not_present' is not available."]}`})
			}
		}, `presence unknown: salt-lab answered the manage runner with something other than a list of minion ids ("'manage.not_present' is not available."), as a master without manage.present and manage.not_present does, so minions that do not answer are waited for until Salt's timeout`},
		{"no minion data cache", func(srv *fakesalt.Server) {
			srv.Update(func(m *fakesalt.Master) { m.NoMinionDataCache = true })
		}, "presence unknown: salt-lab lists none of its 6 minions as connected (manage.present is empty; is minion_data_cache off?), so minions that do not answer are waited for until Salt's timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := lab()
			m.Minions = append(m.Minions, &fakesalt.Minion{ID: "app-1", Grains: map[string]string{"datacenter": "ams01"}, Disconnected: true})
			srv := fakesalt.NewServer(m)
			defer srv.Close()
			tc.setup(srv)
			logs := &logBuffer{}
			cfg := config(srv, logs)
			s := newSink(srv)
			if err := newClient(t, cfg).Blame(ctx(t), exprTarget, s); err != nil {
				t.Fatal(err)
			}
			if len(s.answers) != 3 || len(s.absent) != 0 {
				t.Errorf("answers %v, absent %v", s.order, s.absent)
			}
			if !slices.Equal(s.notes, []string{tc.note}) {
				t.Errorf("notes %q\nwant %q", s.notes, tc.note)
			}
			if took := elapsed(cfg); took < 300*time.Millisecond {
				t.Errorf("took %v: silent minions must be waited for", took)
			}
			if srv.Logins() != 1 || !strings.Contains(logs.String(), "presence unknown") {
				t.Errorf("%d logins; logs:\n%s", srv.Logins(), logs)
			}
		})
	}
}

func TestTokenExpiryMidTriage(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	var statuses []int
	var mu sync.Mutex
	cfg := config(srv, nil)
	cfg.OnResponse = func(master string, status int) {
		mu.Lock()
		defer mu.Unlock()
		if master == "salt-lab" {
			statuses = append(statuses, status)
		}
	}
	c := newClient(t, cfg)
	s := newSink(srv)
	expired := false
	s.onAnswer = func(triage.MinionAnswer) {
		if !expired {
			expired = true
			srv.ExpireTokens()
		}
	}
	if err := c.Blame(ctx(t), triage.Target{Expr: "G@datacenter:ams01"}, s); err != nil {
		t.Fatal(err)
	}
	if srv.Logins() != 2 {
		t.Errorf("%d logins, want one more after the expiry", srv.Logins())
	}
	if len(s.answers) != 3 {
		t.Errorf("answers %v: a minion was lost across the new login", s.order)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(statuses, 401) || statuses[0] != 200 {
		t.Errorf("statuses seen by OnResponse: %v", statuses)
	}
}

func TestConcurrentCallsShareOneLogin(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	c := newClient(t, config(srv, nil))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Blame(ctx(t), triage.Target{Minions: []string{"web-1"}}, newSink(nil)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if srv.Logins() != 1 {
		t.Errorf("%d logins for 8 concurrent calls", srv.Logins())
	}
}

func TestEmptyTarget(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	c := newClient(t, config(srv, nil))
	s := newSink(srv)
	if err := c.Blame(ctx(t), triage.Target{Expr: "G@datacenter:par01"}, s); err != nil {
		t.Fatal(err)
	}
	if len(s.expected) != 0 || len(s.answers) != 0 || srv.Polls() != 0 {
		t.Errorf("expected %v answers %v polls %d", s.expected, s.order, srv.Polls())
	}
}

func TestMinionIDsRefusedBeforeAnyRequest(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	c := newClient(t, config(srv, nil))
	for _, ids := range [][]string{{"web-*"}, {"a,b"}, {"web-1", "G@role:db"}, {""}, {"web-1 or db-1"}} {
		err := c.Blame(ctx(t), triage.Target{Minions: ids}, newSink(nil))
		if err == nil || !strings.Contains(err.Error(), "minion id") {
			t.Errorf("%q: err %v", ids, err)
		}
	}
	if err := c.Blame(ctx(t), triage.Target{}, newSink(nil)); err == nil {
		t.Error("an empty target was accepted")
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests reached salt-api", srv.Requests())
	}
}

// failures are the failing masters and calls shared by the error tests.
type failure struct {
	name   string
	setup  func(srv *fakesalt.Server)
	target triage.Target
	check  func(t *testing.T, err error, srv *fakesalt.Server)
}

var listTarget = triage.Target{Minions: []string{"web-1"}}
var exprTarget = triage.Target{Expr: "G@datacenter:ams01"}

func failures() []failure {
	return []failure{
		{
			name:   "bad password",
			setup:  func(srv *fakesalt.Server) { srv.Update(func(m *fakesalt.Master) { m.Password = "another" }) },
			target: listTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 401 || he.Excerpt != "Could not authenticate using provided credentials" {
					t.Errorf("HTTPError %+v", he)
				}
				want := `salt-api salt-lab login: the master refused the credentials of user "sift" with eauth "sharedsecret" (check the password and the eauth)`
				if !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q, want prefix %q", err, want)
				}
				if srv.Logins() != 1 || srv.Requests() != 1 {
					t.Errorf("%d logins, %d requests: a refused login must not be retried", srv.Logins(), srv.Requests())
				}
			},
		},
		{
			name: "client local disabled",
			setup: func(srv *fakesalt.Server) {
				srv.Update(func(m *fakesalt.Master) { m.DisabledClients = []string{"local"} })
			},
			target: listTarget,
			check: func(t *testing.T, err error, _ *fakesalt.Server) {
				var cd *ClientDisabledError
				if !errors.As(err, &cd) || cd.Client != "local" || cd.Err.Status != 400 {
					t.Errorf("ClientDisabledError %+v", cd)
				}
				if !strings.Contains(err.Error(), "add local to netapi_enable_clients in the master config") {
					t.Errorf("error %q does not tell the fix", err)
				}
			},
		},
		{
			name: "client local_async disabled",
			setup: func(srv *fakesalt.Server) {
				srv.Update(func(m *fakesalt.Master) { m.DisabledClients = []string{"local_async"} })
			},
			target: exprTarget,
			check: func(t *testing.T, err error, _ *fakesalt.Server) {
				if !strings.Contains(err.Error(), "add local_async to netapi_enable_clients") {
					t.Errorf("error %q", err)
				}
			},
		},
		{
			name:   "master answers 500",
			setup:  func(srv *fakesalt.Server) { srv.Update(func(m *fakesalt.Master) { m.Down = true }) },
			target: listTarget,
			check: func(t *testing.T, err error, _ *fakesalt.Server) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 500 || !strings.HasPrefix(he.Excerpt, "The server encountered an unexpected condition") {
					t.Errorf("HTTPError %+v", he)
				}
				if strings.ContainsAny(err.Error(), "<>") {
					t.Errorf("HTML in the error: %q", err)
				}
			},
		},
		{
			name: "a proxy's 504 on the call is not retried",
			setup: func(srv *fakesalt.Server) {
				srv.Inject(fakesalt.Fault{Path: "/", Client: "local", Status: 504, Body: fakesalt.PageGatewayTimeout()})
			},
			target: listTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 504 || he.Excerpt != "The gateway server did not receive a timely response" {
					t.Errorf("HTTPError %+v", he)
				}
				if !strings.HasPrefix(err.Error(), "salt-api salt-lab local: HTTP 504") {
					t.Errorf("error %q", err)
				}
				if srv.Requests() != 4 || srv.Calls("local") != 1 {
					t.Errorf("%d requests, %d local calls, want login, presence and one call", srv.Requests(), srv.Calls("local"))
				}
			},
		},
		{
			name: "401 again after a new login",
			setup: func(srv *fakesalt.Server) {
				srv.Inject(fakesalt.Fault{Path: "/", Client: "local", Status: 401, Body: fakesalt.PageNoToken()})
				srv.Inject(fakesalt.Fault{Path: "/", Client: "local", Status: 401, Body: fakesalt.PageNoToken()})
			},
			target: listTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 401 || he.Excerpt != "No permission -- see authorization schemes" {
					t.Errorf("HTTPError %+v", he)
				}
				if !strings.Contains(err.Error(), "refused right after a new login") || srv.Logins() != 2 || srv.Calls("local") != 2 {
					t.Errorf("error %q after %d logins, %d requests", err, srv.Logins(), srv.Requests())
				}
			},
		},
		{
			name:   "malformed JSON",
			setup:  func(srv *fakesalt.Server) { srv.Update(func(m *fakesalt.Master) { m.Malformed = true }) },
			target: listTarget,
			check: func(t *testing.T, err error, _ *fakesalt.Server) {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Endpoint != "local" || !strings.HasPrefix(pe.Excerpt, `{"return": [{"web-ams01-001"`) {
					t.Errorf("ProtocolError %+v", pe)
				}
				if !strings.HasPrefix(err.Error(), "salt-api salt-lab local: unexpected answer from local: not JSON") {
					t.Errorf("error %q", err)
				}
			},
		},
		{
			name: "unknown jid",
			setup: func(srv *fakesalt.Server) {
				srv.Inject(fakesalt.Fault{Path: "/jobs/", Status: 200, Body: `{"info": [{"jid": "20261128041950063129", "Error": "Cannot contact returner or no job with this jid", "StartTime": "2026, Nov 28 04:19:50.063129", "Result": {}}], "return": [{}]}`})
			},
			target: exprTarget,
			check: func(t *testing.T, err error, _ *fakesalt.Server) {
				if !errors.Is(err, ErrUnknownJob) || !strings.Contains(err.Error(), "Cannot contact returner or no job with this jid") || !strings.HasPrefix(err.Error(), "salt-api salt-lab jobs 2") {
					t.Errorf("error %q", err)
				}
			},
		},
		{
			name: "polls keep failing past the deadline",
			setup: func(srv *fakesalt.Server) {
				for range 50 {
					srv.Inject(fakesalt.Fault{Path: "/jobs/", Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"})
				}
			},
			target: exprTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				var he *HTTPError
				// Polls at 25, 50, 100 and 200 ms, then the last read at the deadline (325 ms).
				if !errors.As(err, &he) || he.Status != 502 || he.Excerpt != "502 Bad Gateway" || srv.Polls() != 5 {
					t.Errorf("HTTPError %+v after %d polls", he, srv.Polls())
				}
			},
		},
		{
			name: "user not permitted to poll",
			setup: func(srv *fakesalt.Server) {
				srv.Inject(fakesalt.Fault{Path: "/jobs/", Status: 401, Body: fakesalt.PageRunnerRefused("sift")})
			},
			target: exprTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				want := `salt-api salt-lab jobs 2`
				if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), `user "sift" is not permitted to run this (check its external_auth permissions): HTTP 401: Authentication failure of type "token" occurred for user sift.`) {
					t.Errorf("error %q", err)
				}
				if srv.Logins() != 1 || srv.Polls() != 1 {
					t.Errorf("%d logins, %d polls: a refusal is not an expired token", srv.Logins(), srv.Polls())
				}
			},
		},
		{
			name:   "connection refused",
			setup:  func(srv *fakesalt.Server) { srv.Close() },
			target: listTarget,
			check: func(t *testing.T, err error, srv *fakesalt.Server) {
				var ue *UnreachableError
				if !errors.As(err, &ue) || ue.TLS || ue.Master != "salt-lab" {
					t.Errorf("UnreachableError %+v", ue)
				}
				want := "salt-api salt-lab login: cannot reach " + srv.URL() + "/login: "
				if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
					t.Errorf("error %q, want prefix %q", err, want)
				}
			},
		},
	}
}

func TestFailures(t *testing.T) {
	for _, f := range failures() {
		t.Run(f.name, func(t *testing.T) {
			srv := fakesalt.NewServer(lab())
			defer srv.Close()
			f.setup(srv)
			logs := &logBuffer{}
			c := newClient(t, config(srv, logs))
			s := newSink(srv)
			err := c.Blame(ctx(t), f.target, s)
			if err == nil {
				t.Fatal("no error")
			}
			f.check(t, err, srv)
		})
	}
}

func TestPasswordNeverShown(t *testing.T) {
	logs := &logBuffer{}
	for _, f := range failures() {
		srv := fakesalt.NewServer(lab())
		f.setup(srv)
		c := newClient(t, config(srv, logs))
		err := c.Blame(ctx(t), f.target, newSink(srv))
		if err == nil || strings.Contains(err.Error(), password) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), password) {
			t.Errorf("%s: error %v", f.name, err)
		}
		srv.Close()
	}
	// A successful triage with a re-login logs too.
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	c := newClient(t, config(srv, logs))
	s := newSink(srv)
	s.onAnswer = func(triage.MinionAnswer) { srv.ExpireTokens() }
	if err := c.Blame(ctx(t), exprTarget, s); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); out == "" || strings.Contains(out, password) {
		t.Errorf("logs (%d bytes) show the password or are empty", len(out))
	}
	cfg := config(srv, nil)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)} {
		if strings.Contains(s, password) {
			t.Errorf("config printed with its password: %s", s)
		}
	}
	if _, err := New(Config{Name: "x", URL: "ftp://sift:" + password + "@nope", Password: password}); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("config error %v", err)
	}
	// A password written into the URL is hidden as well.
	closed := fakesalt.NewServer(lab())
	closed.Close()
	inURL := config(closed, logs)
	inURL.URL = strings.Replace(closed.URL(), "http://", "http://sift:"+password+"@", 1)
	err := newClient(t, inURL).Blame(ctx(t), listTarget, newSink(nil))
	if err == nil || strings.Contains(err.Error(), password) || strings.Contains(inURL.String(), password) {
		t.Errorf("password in the URL shown: %v / %s", err, inURL)
	}
	if strings.Contains(logs.String(), password) {
		t.Error("logs show the password of the URL")
	}
}

func TestTLS(t *testing.T) {
	srv := fakesalt.NewTLSServer(lab())
	defer srv.Close()

	c := newClient(t, config(srv, nil))
	err := c.Blame(ctx(t), listTarget, newSink(nil))
	var ue *UnreachableError
	if !errors.As(err, &ue) || !ue.TLS || !strings.Contains(err.Error(), "set tls_ca_file") || !strings.Contains(err.Error(), srv.URL()) {
		t.Fatalf("without the CA: %v", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config(srv, nil)
	cfg.TLSCAFile = caFile
	c = newClient(t, cfg)
	s := newSink(nil)
	if err := c.Blame(ctx(t), listTarget, s); err != nil || len(s.answers) != 1 {
		t.Fatalf("with the CA: %v, answers %v", err, s.order)
	}

	cfg = config(srv, nil)
	cfg.InsecureSkipVerify = true
	if err := newClient(t, cfg).Blame(ctx(t), listTarget, newSink(nil)); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}

	cfg.TLSCAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "tls_ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestContextEndsTheCall(t *testing.T) {
	m := lab()
	m.Minions[0].Delay = time.Hour
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	cfg := config(srv, nil)
	cfg.Timeout = time.Minute
	c := newClient(t, cfg)
	cctx, cancel := context.WithCancel(context.Background())
	s := newSink(srv)
	s.onAnswer = func(triage.MinionAnswer) { cancel() }
	err := c.Blame(cctx, exprTarget, s)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}

	// A synchronous call waiting on a slow minion ends with the context too.
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	err = c.Blame(short, triage.Target{Minions: []string{"web-1"}}, newSink(nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v", err)
	}
}

func TestWrongMaster(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	err := newClient(t, config(srv, nil)).Blame(ctx(t), triage.Target{Master: "salt-us", Minions: []string{"web-1"}}, newSink(nil))
	if err == nil || srv.Requests() != 0 {
		t.Errorf("err %v after %d requests", err, srv.Requests())
	}
}

// TestPollFaultsLoseNoAnswer: a poll that breaks is made again, and every
// answer the master holds is delivered.
func TestPollFaultsLoseNoAnswer(t *testing.T) {
	cases := []struct {
		name  string
		fault fakesalt.Fault
	}{
		{"truncated body", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultTruncate}},
		{"malformed JSON", fakesalt.Fault{Path: "/jobs/", Status: 200, Body: `{"info": [{"jid": `}},
		{"HTML 502 of a proxy", fakesalt.Fault{Path: "/jobs/", Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>"}},
		{"HTML 500 of CherryPy", fakesalt.Fault{Path: "/jobs/", Status: 500, Body: fakesalt.PageInternalError()}},
		{"reset connection", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultReset}},
		{"answer past the poll timeout", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultStall}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := lab()
			m.Minions = slices.DeleteFunc(m.Minions, func(mn *fakesalt.Minion) bool { return mn.Unreachable })
			srv := fakesalt.NewServer(m)
			defer srv.Close()
			// The first three polls fail; web-3 answers at 120 ms.
			for range 3 {
				srv.Inject(tc.fault)
			}
			cfg := config(srv, nil)
			// A poll that a busy machine slows past the poll timeout is
			// retried as well: the deadline is far.
			cfg.Timeout = 30 * time.Second
			cfg.PollTimeout = 50 * time.Millisecond
			s := newSink(srv)
			if err := newClient(t, cfg).Blame(ctx(t), exprTarget, s); err != nil {
				t.Fatal(err)
			}
			if want := []string{"web-1", "web-2", "web-3"}; !slices.Equal(slices.Sorted(maps.Keys(s.answers)), want) {
				t.Errorf("answers %v, want %v", s.order, want)
			}
			if srv.Polls() < 4 {
				t.Errorf("%d polls: the faults were not all met", srv.Polls())
			}
		})
	}
}
