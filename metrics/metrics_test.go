package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sift-chatops/sift/demo"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/metrics"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/triage"
)

// demoTriager serves the demo fleet's fake masters and returns a Triager
// over them whose salt-api responses feed m.
func demoTriager(t *testing.T, m *metrics.Metrics) *triage.Triager {
	t.Helper()
	lab, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	c := lab.Config
	blamers := map[string]triage.Blamer{}
	for _, ms := range c.Masters {
		client, err := saltapi.New(saltapi.Config{
			Name: ms.Name, URL: ms.URL, Eauth: ms.Eauth, Username: ms.Username, Password: ms.Password.Reveal(),
			Timeout: c.Triage.Timeout, GatherJobTimeout: c.Triage.GatherJobTimeout, PollInterval: c.Triage.PollInterval,
			OnResponse: m.SaltAPIResponse,
		})
		if err != nil {
			t.Fatal(err)
		}
		blamers[ms.Name] = client
	}
	inv := triage.Inventory{Groups: map[string][]string{}}
	for _, dc := range c.Datacenters {
		inv.Datacenters = append(inv.Datacenters, triage.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target})
	}
	for _, g := range c.Groups {
		inv.Groups[g.Name] = g.Datacenters
	}
	return triage.New(inv, blamers, triage.Options{Deadline: c.Triage.Deadline, CommitURL: c.Links.CommitURL})
}

// scrape fetches /metrics from h and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of the series of family name with labels, and
// whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrapeAfterDemoTriage(t *testing.T) {
	m := metrics.New(metrics.Options{Masters: []string{"salt-eu", "salt-us"}})
	tr := demoTriager(t, m)
	ctx := context.Background()

	want := map[triage.CauseKind]int{}
	for _, s := range []triage.Scope{{Kind: triage.ScopeGroup, Name: "europe"}, {Kind: triage.ScopeDatacenter, Name: "iad04"}} {
		r, err := tr.Triage(ctx, s)
		if err != nil {
			t.Fatalf("triage %s: %v", s, err)
		}
		m.ObserveTriage(s, r, nil, r.Duration)
		for _, c := range r.Causes {
			want[c.Kind] += c.Minions
		}
	}
	// The demo's incident has a cause of every kind but release.
	for _, k := range []triage.CauseKind{triage.CauseCommit, triage.CauseExternalService, triage.CauseUnreachable, triage.CauseModuleMissing, triage.CauseBlameError} {
		if want[k] == 0 {
			t.Fatalf("the demo triage found no %s cause: %v", k, want)
		}
	}

	fams := scrape(t, m.Handler(nil))
	for _, k := range triage.CauseKinds {
		got, ok := value(fams, "sift_cause_minions_total", map[string]string{"kind": string(k)})
		if !ok || got != float64(want[k]) {
			t.Errorf("sift_cause_minions_total{kind=%q} = %v (present %v), want %d", k, got, ok, want[k])
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sift_triages_total", map[string]string{"scope_kind": "group", "outcome": "ok"}, 1},
		{"sift_triages_total", map[string]string{"scope_kind": "datacenter", "outcome": "ok"}, 1},
		{"sift_triages_total", map[string]string{"scope_kind": "minion", "outcome": "ok"}, 0},
		{"sift_triage_duration_seconds", map[string]string{"scope_kind": "group"}, 1},
		{"sift_top_causes_total", map[string]string{"kind": "commit"}, 1},
		{"sift_repeat_offender_triages", map[string]string{"state": "file.managed /etc/nginx/nginx.conf"}, 1},
		{"sift_halts_firing", map[string]string{"source": "rule"}, 0},
	}
	for _, c := range checks {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, master := range []string{"salt-eu", "salt-us"} {
		if got, _ := value(fams, "sift_salt_api_requests_total", map[string]string{"master": master, "code": "200"}); got == 0 {
			t.Errorf("no 200 counted for salt-api %s", master)
		}
	}
}

func TestOutcome(t *testing.T) {
	ok := &triage.Report{Datacenters: []triage.DatacenterResult{{Name: "a"}, {Name: "b"}}}
	partial := &triage.Report{Datacenters: []triage.DatacenterResult{{Name: "a"}, {Name: "b", Error: "down"}}}
	down := &triage.Report{Datacenters: []triage.DatacenterResult{{Name: "a", Error: "down"}}}
	tests := []struct {
		name string
		r    *triage.Report
		err  error
		want string
	}{
		{"every datacenter answered", ok, nil, metrics.OutcomeOK},
		{"minion triage", &triage.Report{}, nil, metrics.OutcomeOK},
		{"one datacenter failed", partial, nil, metrics.OutcomePartial},
		{"no master reached", down, nil, metrics.OutcomeUnreachable},
		{"cancelled", partial, context.Canceled, metrics.OutcomeCancelled},
		{"no report", nil, errors.New("unknown datacenter"), metrics.OutcomeError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := metrics.Outcome(tc.r, tc.err); got != tc.want {
				t.Errorf("Outcome = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLabelsStayBounded(t *testing.T) {
	m := metrics.New(metrics.Options{Masters: []string{"salt-eu"}})
	for i := range 500 {
		m.SlackError("chat.postMessage", "error_"+strings.Repeat("x", i%300))
		m.SaltAPIResponse("rogue-"+strings.Repeat("y", i), 200)
	}
	m.SaltAPIResponse("salt-eu", 0)
	m.ObserveTriage(triage.Scope{Kind: "bogus", Name: "x"}, nil, errors.New("bad"), time.Second)
	fams := scrape(t, m.Handler(nil))
	if n := len(fams["sift_slack_api_errors_total"].GetMetric()); n > 101 {
		t.Errorf("sift_slack_api_errors_total has %d series, want at most 101", n)
	}
	if got, _ := value(fams, "sift_slack_api_errors_total", map[string]string{"method": "other", "error": "other"}); got == 0 {
		t.Error("Slack errors past the cap are not counted as other")
	}
	if got, _ := value(fams, "sift_salt_api_requests_total", map[string]string{"master": "other", "code": "200"}); got != 500 {
		t.Errorf("responses of unconfigured masters = %v, want 500 under master=other", got)
	}
	if got, _ := value(fams, "sift_salt_api_requests_total", map[string]string{"master": "salt-eu", "code": "none"}); got != 1 {
		t.Errorf("a response with no status = %v, want 1 under code=none", got)
	}
	if got, _ := value(fams, "sift_triages_total", map[string]string{"scope_kind": "other", "outcome": "error"}); got != 1 {
		t.Errorf("a triage of an unknown scope kind = %v, want 1 under scope_kind=other", got)
	}
}

func TestOffenders(t *testing.T) {
	tests := []struct {
		name    string
		top     int
		tracked int
		seed    map[string]int
		adds    [][]string
		want    []metrics.StateCount
	}{
		{
			name: "ranked by triages, ties by name",
			top:  2, tracked: 10,
			adds: [][]string{{"b", "a"}, {"b"}, {"c", "a"}},
			want: []metrics.StateCount{{State: "a", Triages: 2}, {State: "b", Triages: 2}},
		},
		{
			name: "seeded counts add up",
			top:  1, tracked: 10,
			seed: map[string]int{"a": 5},
			adds: [][]string{{"a"}, {"b"}},
			want: []metrics.StateCount{{State: "a", Triages: 6}},
		},
		{
			name: "a full tally evicts the least named",
			top:  2, tracked: 2,
			adds: [][]string{{"a"}, {"a"}, {"b"}, {"c"}},
			want: []metrics.StateCount{{State: "a", Triages: 2}, {State: "c", Triages: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := metrics.NewOffenders(tc.top, tc.tracked)
			o.Seed(tc.seed)
			for _, a := range tc.adds {
				o.Add(a)
			}
			if got := o.Top(tc.top); !slices.Equal(got, tc.want) {
				t.Errorf("Top = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStateLabel(t *testing.T) {
	tests := []struct {
		sig  triage.Signature
		want string
	}{
		{triage.Signature{Fun: "file.managed", StateID: "/etc/nginx/nginx.conf", SLS: "webserver", Template: "Source file <path> not found"}, "file.managed /etc/nginx/nginx.conf"},
		{triage.Signature{SLS: "webserver", Template: "Rendering SLS failed"}, "compile_error webserver"},
		{triage.Signature{Fun: "cmd.run", StateID: "grep -q x /etc/hosts | sort", Template: "Command failed"}, "cmd.run grep -q x /etc/hosts | sort"},
		{triage.Signature{Template: "nothing names the state"}, ""},
		{triage.Signature{Fun: "cmd.run", StateID: strings.Repeat("z", 300)}, "cmd.run " + strings.Repeat("z", 111) + "…"},
	}
	for _, tc := range tests {
		if got := metrics.StateLabel(tc.sig); got != tc.want {
			t.Errorf("StateLabel(%+v) = %q, want %q", tc.sig, got, tc.want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ready := false
	m := metrics.New(metrics.Options{})
	m.HaltsFiring(func() (map[halts.Source]int, error) { return map[halts.Source]int{halts.SourceAlertmanager: 2}, nil })
	srv := httptest.NewServer(m.Handler(func() bool { return ready }))
	defer srv.Close()
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", got)
	}
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before Slack = %d, want 503", got)
	}
	ready = true
	if got := get("/readyz"); got != http.StatusOK {
		t.Errorf("/readyz once connected = %d, want 200", got)
	}
	if got, _ := value(scrape(t, m.Handler(nil)), "sift_halts_firing", map[string]string{"source": "alertmanager"}); got != 2 {
		t.Errorf("sift_halts_firing{source=alertmanager} = %v, want 2", got)
	}
}

// metricName finds the sift_ metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\bsift_[a-z_]+\b`)

// TestDashboardMetricsExist checks that every metric the Grafana dashboard
// queries is one Sift exports, so a rename cannot silently blank a panel.
func TestDashboardMetricsExist(t *testing.T) {
	m := metrics.New(metrics.Options{})
	// Every family with labels appears once it has a series.
	m.SaltAPIResponse("salt-eu", 200)
	m.SlackError("chat.postMessage", "ratelimited")
	m.WebhookRejected("pipeline", "bad_signature")
	m.Offenders().Add([]string{"file.managed /etc/motd"})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, f := range fams {
		have = append(have, f.GetName())
	}

	files, err := filepath.Glob("../deploy/grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard under deploy/grafana (%v)", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(dash.Panels) == 0 {
			t.Fatalf("%s: no panels", file)
		}
		for _, p := range dash.Panels {
			for _, target := range p.Targets {
				names := metricName.FindAllString(target.Expr, -1)
				if target.Expr != "" && len(names) == 0 {
					t.Errorf("%s: panel %q queries no sift_ metric: %s", file, p.Title, target.Expr)
				}
				for _, name := range names {
					base := name
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if trimmed, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(have, trimmed) {
							base = trimmed
						}
					}
					if !slices.Contains(have, base) {
						t.Errorf("%s: panel %q queries %s, which Sift does not export", file, p.Title, name)
					}
				}
			}
		}
	}
}
