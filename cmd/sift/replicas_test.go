package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/webhook"
	"github.com/sift-chatops/sift/internal/pgtest"
)

// asSift makes the test binary run as sift itself (TestMain), so that the
// replicas test starts real `sift serve` processes it can kill.
const asSift = "SIFT_TEST_RUN_AS_SIFT"

func TestMain(m *testing.M) {
	if os.Getenv(asSift) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const (
	haSecret  = "hmac-replicas-4d2a-never-print-me"
	haChannel = "C0INCIDENT"
	// haInterval is still_failing_interval: a halt whose replica died must
	// be finished by the other one within it.
	haInterval = time.Minute
)

// replica is one `sift serve` process.
type replica struct {
	name string
	cmd  *exec.Cmd
	base string // http://addr of its webhooks and metrics
	logs *os.File
	// done is closed when the process has exited.
	done chan struct{}
}

func (r *replica) pid() int { return r.cmd.Process.Pid }

func (r *replica) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// startReplica runs `sift serve --config cfg` as a process of its own,
// stopped when t ends (give it the test, not a subtest, to keep it).
func startReplica(t *testing.T, name, cfg, base string) *replica {
	t.Helper()
	logs, err := os.Create(filepath.Join(filepath.Dir(cfg), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, base: base, logs: logs, done: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "serve", "--config", cfg)
	r.cmd.Env = append(os.Environ(), asSift+"=1")
	r.cmd.Stdout, r.cmd.Stderr = logs, logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		if r.running() {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(20 * time.Second):
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
		logs.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("%s (pid %d) logs:\n%s", name, r.pid(), tail(b, 6000))
		}
	})
	return r
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// slackProxy stands between the replicas and the fake Slack's Web API. When
// armed, it forwards the next top-level halt post to Slack (so the post is
// made) and holds back Slack's answer: the replica that sent it is then
// mid-post, with its message in the channel and no ts stored.
type slackProxy struct {
	target *url.URL
	rp     *httputil.ReverseProxy

	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when a post is held
	release chan struct{} // closed to let held answers go
}

func newSlackProxy(target string) *slackProxy {
	u, _ := url.Parse(target)
	return &slackProxy{target: u, rp: httputil.NewSingleHostReverseProxy(u), release: make(chan struct{})}
}

// arm holds the next halt post; the returned channel is closed once one is held.
func (p *slackProxy) arm() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.held = true, make(chan struct{})
	return p.held
}

func (p *slackProxy) releaseHeld() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

func (p *slackProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/chat.postMessage") {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	p.mu.Lock()
	hold := p.armed && form.Get("thread_ts") == "" && strings.Contains(form.Get("blocks")+form.Get("text"), halts.Marker(""))
	if hold {
		p.armed = false
	}
	held := p.held
	p.mu.Unlock()
	req, _ := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target.ResolveReference(r.URL).String(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if hold {
		close(held)
		select {
		case <-p.release:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// promCounter stands between each replica and a real Prometheus, under a
// path of its own (/a/, /b/), and counts the rule queries of each.
type promCounter struct {
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	counts map[string]int
}

func newPromCounter(target string) *promCounter {
	u, _ := url.Parse(target)
	return &promCounter{rp: httputil.NewSingleHostReverseProxy(u), counts: map[string]int{}}
}

func (p *promCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if rest == "api/v1/query" {
		p.mu.Lock()
		p.counts[who]++
		p.mu.Unlock()
	}
	r.URL.Path = "/" + rest
	p.rp.ServeHTTP(w, r)
}

func (p *promCounter) count(who string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[who]
}

// startPrometheus runs a real Prometheus (Debian's package) on 127.0.0.1
// for the rules to query; outside CI a missing binary skips the test.
func startPrometheus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed (.ci/install-prometheus installs it): CI must run this test")
		}
		t.Skip("prometheus is not installed (Debian package prometheus)")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := waitFor(ctx, "prometheus ready", func() (bool, error) {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		t.Fatal(err)
	}
	return base
}

// haLab is the replicas' world: PostgreSQL, salt-api, Slack, and the
// configuration of each replica.
type haLab struct {
	pg    *pgtest.Server
	db    string
	slack *fakeslack.Server
	proxy *slackProxy
	// proxyURL is where the replicas find Slack's Web API: the proxy.
	proxyURL string
	dcs      int
}

// config writes a replica's configuration, listening on addr and asking
// Prometheus through prom.
func (l *haLab) config(t *testing.T, base *lab, pwfile, addr, prom string) string {
	t.Helper()
	b, err := os.ReadFile(base.config)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`slack:
  app_token: %q
  bot_token: %q
  api_url: %q
  audit_log: stdout
  shutdown_grace: 2s
  progress_interval: 50ms
halts:
  channel: %s
  store: %q
  store_password_file: %q
  still_failing_interval: %s
  max_posts_per_hour: 3600
  listen: %q
  pipeline: {enabled: true, secret: %q, max_skew: 5m}
  prometheus_url: %q
  rules:
    - {name: salt-failures, schedule: "@every 1s", query: "sift_test_salt_failing > 0", scope_label: datacenter, scope_kind: datacenter}
metrics:
  listen: %q
log:
  level: debug
  format: json
`, testAppToken, testBotToken, l.proxyURL+"/api/", haChannel, l.pg.URL(l.db), pwfile, haInterval, addr, haSecret, prom, addr)
	path := filepath.Join(t.TempDir(), "sift.yml")
	if err := os.WriteFile(path, append(b, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	addr := freeAddr(t)
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + addr
}

// notify sends a signed pipeline notice of halt id to r, with a delivery
// id of its own, and returns the HTTP status.
func notify(r *replica, id, dc, status string) (int, error) {
	body := fmt.Sprintf(`{"id":%q,"scope":"dc %s","name":"release","status":%q}`, id, dc, status)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	d := make([]byte, 16)
	_, _ = rand.Read(d)
	delivery := hex.EncodeToString(d)
	req, err := http.NewRequest(http.MethodPost, r.base+webhook.PipelinePath, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderDelivery, delivery)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(haSecret), ts, delivery, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// storedHalt is a halt as the replicas' database holds it.
type storedHalt struct {
	fp, key, state, ts string
}

func (l *haLab) halts(ctx context.Context) ([]storedHalt, error) {
	cfg, err := pgx.ParseConfig(l.pg.URL(l.db))
	if err != nil {
		return nil, err
	}
	cfg.Password = pgtest.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT fingerprint, key, post_state, ts FROM halts ORDER BY fired_at`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedHalt, error) {
		var h storedHalt
		return h, row.Scan(&h.fp, &h.key, &h.state, &h.ts)
	})
}

// poster is the pid of the replica whose session claimed the halt being
// posted, from pg_stat_activity's application_name (sift-<pid>).
func (l *haLab) poster(ctx context.Context) (int, error) {
	cfg, err := pgx.ParseConfig(l.pg.URL(l.db))
	if err != nil {
		return 0, err
	}
	cfg.Password = pgtest.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var app string
	err = conn.QueryRow(ctx, `SELECT a.application_name FROM halts h
		JOIN pg_locks k ON k.locktype = 'advisory' AND k.granted AND k.objsubid = 2 AND k.classid::bigint = $1 AND k.objid::bigint = h.claim_session
		JOIN pg_stat_activity a ON a.pid = k.pid
		WHERE h.post_state = 'posting' AND h.claim_owner != '' LIMIT 1`, int64(0x53494602)).Scan(&app)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimPrefix(app, "sift-"))
}

// postsOf counts the top-level messages of the channel that carry the
// marker of halt fp.
func (l *haLab) postsOf(fp string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range l.slack.Messages(haChannel) {
		// A top-level message with replies has its own ts as thread_ts.
		if (m.ThreadTS == "" || m.ThreadTS == m.TS) && strings.Contains(m.Text+string(m.Blocks), halts.Marker(fp)) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or ctx ends; the replicas are other
// processes and the database another server, so there is nothing to wait
// on but their answers.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if errors.Is(err, errExited) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// errExited ends a wait on a replica that is no longer running.
var errExited = errors.New("the replica exited")

func ready(r *replica) (bool, error) {
	if !r.running() {
		return false, fmt.Errorf("%s: %w", r.name, errExited)
	}
	resp, err := http.Get(r.base + "/readyz")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, fmt.Errorf("/readyz %d", resp.StatusCode)
}

func notReady(r *replica) (bool, error) {
	if !r.running() {
		return false, fmt.Errorf("%s: %w", r.name, errExited)
	}
	resp, err := http.Get(r.base + "/readyz")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable, fmt.Errorf("/readyz %d", resp.StatusCode)
}

// envInt reads a positive integer from the environment, for longer runs
// than CI's.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestReplicas runs two `sift serve` processes against one PostgreSQL, one
// fake Slack (a socket each), one fake salt-api and one Prometheus:
//
//   - every halt notice reaches both replicas twice, all at once: each
//     halt is posted exactly once;
//   - the replica posting a halt is killed (SIGKILL) after Slack took the
//     post and before it could store it: the other replica finishes the
//     halt within still_failing_interval, with no second post;
//   - PostgreSQL stops: both replicas report not ready, keep answering
//     slash commands, and are ready again when it is back, without a
//     restart;
//   - the scheduled rules (against a real Prometheus) run on one replica
//     only, and on the other once the leader is killed.
//
// SIFT_HA_HALTS sets the number of halts (default 20), SIFT_HA_OUTAGE the
// outage in seconds (default 3).
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two sift processes")
	}
	nHalts := envInt("SIFT_HA_HALTS", 20)
	outage := time.Duration(envInt("SIFT_HA_OUTAGE", 3)) * time.Second

	pg := pgtest.Start(t)
	l := &haLab{pg: pg, db: pg.CreateDB(t), dcs: nHalts + 2}
	dcs := map[string]string{}
	var ms []*fakesalt.Minion
	for i := range l.dcs {
		dc := fmt.Sprintf("dc%03d", i)
		dcs[dc] = "salt-eu"
		ms = append(ms, minions(dc, "web", 2, fakesalt.FailedState(fakesalt.Failure{}))...)
	}
	base := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: ms}}, dcs)
	l.slack = fakeslack.New(fakeslack.Options{AppToken: testAppToken, BotToken: testBotToken, PingInterval: time.Second})
	t.Cleanup(l.slack.Close)
	l.proxy = newSlackProxy(strings.TrimSuffix(l.slack.APIURL(), "/api/"))
	t.Cleanup(l.proxy.releaseHeld)
	l.proxyURL = newLocalServer(t, l.proxy)

	pwfile := filepath.Join(t.TempDir(), "postgres-password")
	if err := os.WriteFile(pwfile, []byte(pgtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := newPromCounter(startPrometheus(t))
	promURL := newLocalServer(t, prom)
	addrA, addrB := freeAddr(t), freeAddr(t)
	cfgA, cfgB := l.config(t, base, pwfile, addrA, promURL+"/a"), l.config(t, base, pwfile, addrB, promURL+"/b")

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	a := startReplica(t, "replica-a", cfgA, "http://"+addrA)
	b := startReplica(t, "replica-b", cfgB, "http://"+addrB)
	for _, r := range []*replica{a, b} {
		if err := waitFor(ctx, r.name+" ready", func() (bool, error) { return ready(r) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitFor(ctx, "two sockets", func() (bool, error) { return l.slack.Connected() == 2, nil }); err != nil {
		t.Fatal(err)
	}

	t.Run("EachHaltPostedOnce", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, nHalts*4)
		for i := range nHalts {
			for _, r := range []*replica{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, err := notify(r, fmt.Sprintf("rel-%03d", i), fmt.Sprintf("dc%03d", i), "firing")
					if err == nil && code != http.StatusOK {
						err = fmt.Errorf("%s answered %d", r.name, code)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var stored []storedHalt
		err := waitFor(ctx, "every halt posted", func() (bool, error) {
			var err error
			stored, err = l.halts(ctx)
			if err != nil {
				return false, err
			}
			for _, h := range stored {
				if h.state != string(halts.PostPosted) {
					return false, nil
				}
			}
			return len(stored) == nHalts, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		perHalt := map[int]int{}
		for _, h := range stored {
			posts := l.postsOf(h.fp)
			perHalt[len(posts)]++
			if len(posts) != 1 || posts[0].TS != h.ts {
				t.Errorf("halt %s (%s): %d top-level posts, want 1 (stored ts %s)", h.key, h.fp, len(posts), h.ts)
			}
		}
		if t.Failed() {
			for _, m := range l.slack.Messages(haChannel) {
				t.Logf("in the channel: ts %s thread %q text %.200q blocks %.300s", m.TS, m.ThreadTS, m.Text, m.Blocks)
			}
		}
		t.Logf("%d halts, each noticed 4 times (twice on each replica, all at once): posts per halt %v", nHalts, perHalt)

		// sift history reads the shared store: one triage per halt,
		// whichever replica ran it.
		r := sift(t, "", "history", "--config", cfgA, "-n", "1000", "--format", "json")
		if r.code != 0 {
			t.Fatalf("sift history: exit %d\n%s", r.code, r.stderr)
		}
		var recs []struct {
			Origin string `json:"origin"`
			Halt   string `json:"halt"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
			t.Fatalf("sift history --format json: %v\n%s", err, r.stdout)
		}
		triaged := map[string]int{}
		for _, rec := range recs {
			if rec.Origin == halts.OriginHalt {
				triaged[rec.Halt]++
			}
		}
		for _, h := range stored {
			if triaged[h.fp] != 1 {
				t.Errorf("sift history lists %d triages of halt %s, want 1", triaged[h.fp], h.fp)
			}
		}
		if strings.Contains(r.stdout+r.stderr, pgtest.Password) {
			t.Error("sift history printed the database password")
		}
	})

	top := t
	t.Run("PosterKilledMidPost", func(t *testing.T) {
		held := l.proxy.arm()
		if code, err := notify(a, "rel-kill", fmt.Sprintf("dc%03d", nHalts), "firing"); err != nil || code != http.StatusOK {
			t.Fatalf("notice: %d, %v", code, err)
		}
		select {
		case <-held:
		case <-ctx.Done():
			t.Fatal("no halt post reached Slack")
		}
		var pid int
		if err := waitFor(ctx, "the posting replica", func() (bool, error) {
			var err error
			pid, err = l.poster(ctx)
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
		victim, survivor := a, b
		if pid == b.pid() {
			victim, survivor = b, a
		} else if pid != a.pid() {
			t.Fatalf("the halt is claimed by pid %d, neither replica (%d, %d)", pid, a.pid(), b.pid())
		}
		killed := time.Now()
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-victim.done
		l.proxy.releaseHeld()

		fctx, fcancel := context.WithTimeout(ctx, haInterval)
		defer fcancel()
		var h storedHalt
		err := waitFor(fctx, "the survivor to finish the halt", func() (bool, error) {
			stored, err := l.halts(fctx)
			if err != nil {
				return false, err
			}
			for _, s := range stored {
				if s.key == "pipeline/rel-kill" || strings.HasSuffix(s.key, "rel-kill") {
					h = s
					return s.state == string(halts.PostPosted), nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		takeover := time.Since(killed)
		if posts := l.postsOf(h.fp); len(posts) != 1 || posts[0].TS != h.ts {
			t.Errorf("halt %s: %d top-level posts after the poster died, want the one it made (ts %s)", h.fp, len(posts), h.ts)
		}
		t.Logf("%s (pid %d) killed mid-post; %s finished the halt %s later", victim.name, pid, survivor.name, takeover.Round(10*time.Millisecond))

		// Nothing is lost either: the halt clears through the survivor.
		if code, err := notify(survivor, "rel-kill", fmt.Sprintf("dc%03d", nHalts), "resolved"); err != nil || code != http.StatusOK {
			t.Fatalf("resolved notice: %d, %v", code, err)
		}
		if err := waitFor(fctx, "the resolution", func() (bool, error) {
			m, ok := l.slack.Message(haChannel, h.ts)
			return ok && m.Updates > 0 && len(l.slack.Thread(haChannel, h.ts)) > 0, nil
		}); err != nil {
			t.Fatal(err)
		}
		// The killed replica comes back, for what follows.
		if victim == a {
			a = startReplica(top, "replica-a2", cfgA, "http://"+addrA)
		} else {
			b = startReplica(top, "replica-b2", cfgB, "http://"+addrB)
		}
		for _, r := range []*replica{a, b} {
			if err := waitFor(ctx, r.name+" ready", func() (bool, error) { return ready(r) }); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("DatabaseOutage", func(t *testing.T) {
		pids := []int{a.pid(), b.pid()}
		if err := pg.Stop(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		for _, r := range []*replica{a, b} {
			if err := waitFor(ctx, r.name+" not ready", func() (bool, error) { return notReady(r) }); err != nil {
				t.Fatal(err)
			}
		}
		// Slash commands are still answered.
		before := len(l.slack.Messages(haChannel))
		sent, err := l.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "dc000", UserID: "U0ALICE", ChannelID: haChannel})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.slack.WaitAck(ctx, sent.EnvelopeID); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, "the answer to /blame-dc", func() (bool, error) {
			msgs := l.slack.Messages(haChannel)
			for _, m := range msgs[min(before, len(msgs)):] {
				if (m.ThreadTS == "" || m.ThreadTS == m.TS) && len(l.slack.Thread(haChannel, m.TS)) > 0 {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
		if wait := outage - time.Since(stopped); wait > 0 {
			time.Sleep(wait)
		}
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		for _, r := range []*replica{a, b} {
			if err := waitFor(ctx, r.name+" ready again", func() (bool, error) { return ready(r) }); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("PostgreSQL down %s; both replicas ready again %s after it came back", back.Sub(stopped).Round(10*time.Millisecond), time.Since(back).Round(10*time.Millisecond))
		if a.pid() != pids[0] || b.pid() != pids[1] || !a.running() || !b.running() {
			t.Error("a replica restarted during the outage")
		}
		// And halts are posted again, once.
		dc := fmt.Sprintf("dc%03d", nHalts+1)
		for _, r := range []*replica{a, b} {
			if code, err := notify(r, "rel-after", dc, "firing"); err != nil || code != http.StatusOK {
				t.Fatalf("notice after the outage to %s: %d, %v", r.name, code, err)
			}
		}
		err = waitFor(ctx, "the halt after the outage posted", func() (bool, error) {
			stored, err := l.halts(ctx)
			if err != nil {
				return false, err
			}
			for _, s := range stored {
				if strings.HasSuffix(s.key, "rel-after") && s.state == string(halts.PostPosted) {
					return len(l.postsOf(s.fp)) == 1, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RulesRunOnOneReplica", func(t *testing.T) {
		// Counts while the leader runs at least five checks: the other
		// replica runs none.
		leading := func(what string) (leader, other *replica, whoL, whoO string) {
			t.Helper()
			a0, b0 := prom.count("a"), prom.count("b")
			if err := waitFor(ctx, what, func() (bool, error) {
				return prom.count("a")-a0+prom.count("b")-b0 >= 5, nil
			}); err != nil {
				t.Fatal(err)
			}
			da, db := prom.count("a")-a0, prom.count("b")-b0
			t.Logf("%s: rule checks by replica a %d, by replica b %d", what, da, db)
			switch {
			case da > 0 && db == 0:
				return a, b, "a", "b"
			case db > 0 && da == 0:
				return b, a, "b", "a"
			}
			t.Fatalf("%s: both replicas ran the rules (a %d, b %d checks)", what, da, db)
			return nil, nil, "", ""
		}
		leader, other, _, whoO := leading("after the outage")
		before := prom.count(whoO)
		killed := time.Now()
		if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-leader.done
		if err := waitFor(ctx, "the other replica to run the rules", func() (bool, error) {
			return prom.count(whoO) > before, nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("rules leader (%s) killed; %s ran its first check %s later", leader.name, other.name, time.Since(killed).Round(10*time.Millisecond))
	})
}
