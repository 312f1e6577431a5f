// Package e2e_test runs the halt sources end to end: a real Prometheus
// and Alertmanager, the real bot against the fake Slack, the demo fleet.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/demo"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/halts/rules"
	"github.com/sift-chatops/sift/halts/sqlite"
	"github.com/sift-chatops/sift/halts/webhook"
	"github.com/sift-chatops/sift/promapi"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/triage"
)

// e2eWait bounds every wait of the end-to-end tests: generous, as a busy
// CI machine is slow, but never unbounded.
const e2eWait = 90 * time.Second

// requireBinary returns the path of the first of names found, or skips
// the test, except in CI (CI=true), where a missing binary fails it.
func requireBinary(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s; .ci/install-prometheus installs it)", names[0], pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + ": CI must run this test")
	}
	t.Skip(msg)
	return ""
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago, for
// daemons that take an address rather than a listener.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startDaemon runs bin with args until the test ends, then kills it; its
// output is logged when the test failed.
func startDaemon(t *testing.T, bin string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
}

// waitReady polls url until it answers 200, within e2eWait.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last error %v)", url, e2eWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// e2e is Sift's halt pipeline with real parts around it: the demo fleet's
// fake salt-apis, the real bot posting to a fake Slack, a store on disk.
type e2e struct {
	t     *testing.T
	slack *fakeslack.Server
	svc   *halts.Service
	store *sqlite.Store
	log   *logrus.Logger
	g     *errgroup.Group
}

const e2eChannel = "C0INCIDENT"

func newE2E(t *testing.T) *e2e {
	t.Helper()
	log := logrus.New()
	log.SetOutput(haltstest.LogWriter(t))
	log.SetLevel(logrus.DebugLevel)

	lab, err := demo.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	c := lab.Config
	blamers := map[string]triage.Blamer{}
	for _, m := range c.Masters {
		client, err := saltapi.New(saltapi.Config{
			Name: m.Name, URL: m.URL, Eauth: m.Eauth, Username: m.Username, Password: m.Password.Reveal(),
			Timeout: c.Triage.Timeout, GatherJobTimeout: c.Triage.GatherJobTimeout, PollInterval: c.Triage.PollInterval,
		})
		if err != nil {
			t.Fatal(err)
		}
		blamers[m.Name] = client
	}
	inv := triage.Inventory{Groups: map[string][]string{}}
	for _, dc := range c.Datacenters {
		inv.Datacenters = append(inv.Datacenters, triage.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target})
	}
	tr := triage.New(inv, blamers, triage.Options{Deadline: c.Triage.Deadline, CommitURL: c.Links.CommitURL, Log: log})

	fs := fakeslack.New(fakeslack.Options{})
	t.Cleanup(fs.Close)
	b, err := bot.New(bot.Config{AppToken: "xapp-1-A0SIFT-1-test", BotToken: "xoxb-1-2-test", APIURL: fs.APIURL()},
		bot.Deps{Triagers: func(func(triage.Progress)) bot.Triager { return tr }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sift.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := halts.NewService(store, tr, b, halts.Options{Channel: e2eChannel, Tick: 200 * time.Millisecond, Log: log})

	ctx, cancel := context.WithCancel(context.Background())
	g, ctx := errgroup.WithContext(ctx)
	e := &e2e{t: t, slack: fs, svc: svc, store: store, log: log, g: g}
	g.Go(func() error { return svc.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("halts: %v", err)
		}
	})
	return e
}

// run runs f with the service until the test ends.
func (e *e2e) run(f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f(ctx); err != nil {
			e.t.Errorf("run: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// topLevel returns the channel's top-level messages whose blocks hold text.
func (e *e2e) topLevel(text string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range e.slack.Messages(e2eChannel) {
		if (m.ThreadTS == "" || m.ThreadTS == m.TS) && strings.Contains(string(m.Blocks), text) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until cond holds of the fake Slack, within e2eWait.
func (e *e2e) waitFor(what string, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := e.slack.Wait(ctx, cond); err != nil {
		e.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// checkPostedOnceThenResolved waits for the halt's post, then (after
// resolve) for its edit, and checks there is one top-level post.
func (e *e2e) checkPostedOnceThenResolved(title, headline string, resolve func()) {
	e.t.Helper()
	e.waitFor("the halt's post", func() bool {
		for _, m := range e.topLevel(title) {
			if strings.Contains(string(m.Blocks), headline) {
				return true
			}
		}
		return false
	})
	post := e.topLevel(title)[0]
	// The halt keeps firing while it is open; let that be seen before
	// it clears.
	e.waitFor("the halt's details in the thread", func() bool {
		for _, m := range e.slack.Thread(e2eChannel, post.TS) {
			if strings.Contains(m.Text, "Halt") || strings.Contains(string(m.Blocks), "*Halt*") {
				return true
			}
		}
		return false
	})
	resolve()
	e.waitFor("the resolved edit", func() bool {
		m, ok := e.slack.Message(e2eChannel, post.TS)
		return ok && m.Updates > 0 && strings.Contains(string(m.Blocks), "Resolved: ")
	})
	e.waitFor("the resolved reply", func() bool {
		for _, m := range e.slack.Thread(e2eChannel, post.TS) {
			if strings.Contains(m.Text, "cleared after") {
				return true
			}
		}
		return false
	})
	hs, err := e.store.Halts(context.Background(), 10)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(post.Blocks), halts.Marker(hs[0].Fingerprint)) {
		e.t.Errorf("the post does not carry the halt's marker %q", halts.Marker(hs[0].Fingerprint))
	}
	if len(hs) != 1 || hs[0].TS != post.TS || hs[0].Open() {
		e.t.Errorf("stored halts %+v: want one, resolved, posted at %s", hs, post.TS)
	}
	if n := len(e.topLevel(halts.Marker(hs[0].Fingerprint))); n != 1 {
		e.t.Errorf("%d top-level posts of the halt, want 1", n)
	}
	recs, err := e.store.Triages(context.Background(), 10)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].TopKind != triage.CauseCommit || recs[0].Halt != hs[0].Fingerprint {
		e.t.Errorf("triage records %+v: want one, with a commit top cause, for the halt", recs)
	}
}

func TestPrometheusRuleEndToEnd(t *testing.T) {
	bin := requireBinary(t, "prometheus", "prometheus")

	// The scrape target whose halt gauge the test flips.
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sift_test_salt_halt", Help: "Whether the pipeline halted a datacenter."}, []string{"datacenter"})
	reg.MustRegister(gauge)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: halt
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(target.URL, "http://"))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startDaemon(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	promURL := "http://" + addr
	waitReady(t, promURL+"/-/ready")

	e := newE2E(t)
	client, err := promapi.New(promURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := rules.New(e.svc, client, []rules.Rule{{
		Name: "salt-failures", Schedule: "@every 1s", Query: `sift_test_salt_halt > 0`,
		ScopeLabel: "datacenter", ScopeKind: triage.ScopeDatacenter,
	}}, rules.Options{PrometheusURL: promURL, Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.run(sched.Run)

	gauge.WithLabelValues("ams01").Set(1)
	e.checkPostedOnceThenResolved("Pipeline halt: salt-failures — datacenter ams01", "e4a91b2", func() {
		gauge.DeleteLabelValues("ams01")
	})
}

func TestAlertmanagerEndToEnd(t *testing.T) {
	bin := requireBinary(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	e := newE2E(t)

	const token = "am-to-sift-7d1f0c2b9e"
	mux := http.NewServeMux()
	mux.Handle("POST "+webhook.AlertmanagerPath, &webhook.AlertmanagerHook{
		Notifier: e.svc, ScopeLabel: "datacenter", ScopeKind: triage.ScopeDatacenter,
		Auth: &webhook.Auth{BearerToken: config.Secret(token)}, Refusals: webhook.NewRefusals(e.log, nil, time.Now), Now: time.Now,
	})
	sift := httptest.NewServer(mux)
	t.Cleanup(sift.Close)

	// Alertmanager sends the token it reads from a file, as docs/halts.md
	// shows.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "sift-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`route:
  receiver: sift
  group_by: [alertname, datacenter]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sift
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %q
`, sift.URL+webhook.AlertmanagerPath, tokenFile)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	// An empty cluster address turns clustering off: no gossip port opened.
	startDaemon(t, bin, "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	amURL := "http://" + addr
	waitReady(t, amURL+"/-/ready")

	start := time.Now().UTC()
	sendAlert := func(endsAt time.Time) {
		t.Helper()
		body, _ := json.Marshal([]map[string]any{{
			"labels":       map[string]string{"alertname": "SaltHighstateFailures", "datacenter": "fra02", "severity": "page"},
			"annotations":  map[string]string{"summary": "Salt highstate failures above 20% in fra02"},
			"startsAt":     start.Format(time.RFC3339Nano),
			"endsAt":       endsAt.Format(time.RFC3339Nano),
			"generatorURL": "http://127.0.0.1:9090/graph?g0.expr=salt_highstate_failed_ratio",
		}})
		resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
		}
	}
	sendAlert(start.Add(time.Hour))
	e.checkPostedOnceThenResolved("Pipeline halt: SaltHighstateFailures — datacenter fra02", "e4a91b2", func() {
		// An alert whose end has passed is resolved.
		sendAlert(time.Now().UTC().Add(-time.Second))
	})
}
