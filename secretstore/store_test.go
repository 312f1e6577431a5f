package secretstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sift-chatops/sift/config"
)

// fakeSource answers ResolveSecret from a map the test changes; a key
// with an error set fails.
type fakeSource struct {
	mu    sync.Mutex
	vals  map[string]string
	errs  map[string]error
	reads map[string]int
}

func (f *fakeSource) set(key, v string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals[key], f.errs[key] = v, err
}

func (f *fakeSource) ResolveSecret(_ context.Context, key string, _ config.VaultReader) (config.Resolved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[key]++
	if err := f.errs[key]; err != nil {
		return config.Resolved{}, err
	}
	return config.Resolved{Value: config.Secret(f.vals[key]), From: "vault secret/sift#" + key, Version: f.reads[key]}, nil
}

func newFake() *fakeSource {
	return &fakeSource{vals: map[string]string{}, errs: map[string]error{}, reads: map[string]int{}}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestStoreRotationAndStaleness(t *testing.T) {
	ctx := context.Background()
	src := newFake()
	src.set("slack.bot_token", "xoxb-one", nil)
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := New(src, Options{MaxStaleness: time.Hour, Now: clk.now})
	var changed []string
	s.OnChange(func(k string) { changed = append(changed, k) })

	if v, err := s.Get(ctx, "slack.bot_token"); err != nil || v.Reveal() != "xoxb-one" {
		t.Fatalf("Get = %q, %v", v.Reveal(), err)
	}
	if _, err := s.Get(ctx, "slack.bot_token"); err != nil || src.reads["slack.bot_token"] != 1 {
		t.Errorf("second Get read the source again (%d reads), want the cached value", src.reads["slack.bot_token"])
	}

	// Rotation: the next refresh picks the new value up and tells listeners.
	src.set("slack.bot_token", "xoxb-two", nil)
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(ctx, "slack.bot_token"); v.Reveal() != "xoxb-two" {
		t.Errorf("after rotation Get = %q, want xoxb-two", v.Reveal())
	}
	if len(changed) != 1 || changed[0] != "slack.bot_token" {
		t.Errorf("listeners told %q, want one change of slack.bot_token", changed)
	}
	// Same value again: no change reported.
	_ = s.Refresh(ctx)
	if len(changed) != 1 {
		t.Errorf("an unchanged value was reported as changed: %q", changed)
	}

	// The source goes away: the last good value stays, ready until it is
	// older than MaxStaleness.
	down := errors.New("vault: secret/sift: connection refused")
	src.set("slack.bot_token", "", down)
	clk.add(30 * time.Minute)
	if err := s.Refresh(ctx); !errors.Is(err, down) {
		t.Errorf("Refresh = %v, want the source's error", err)
	}
	if v, _ := s.Get(ctx, "slack.bot_token"); v.Reveal() != "xoxb-two" {
		t.Errorf("while the source is down Get = %q, want the last good value", v.Reveal())
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready with a 30m old value = %v, want ready", err)
	}
	clk.add(31 * time.Minute)
	_ = s.Refresh(ctx)
	err := s.Ready()
	if err == nil || !strings.Contains(err.Error(), "secret slack.bot_token expired: last read 1h1m0s ago: vault: secret/sift: connection refused") {
		t.Errorf("Ready past MaxStaleness = %v", err)
	}
	if strings.Contains(err.Error(), "xoxb") {
		t.Errorf("Ready's error leaks the value: %v", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	if got := testutil.ToFloat64(gaugeOnly(s)); got != 1 {
		t.Errorf("sift_secrets_expired = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "sift_secret_read_errors_total", "sift_secret_age_seconds"); err != nil || n != 2 {
		t.Errorf("metrics: %d series, %v", n, err)
	}

	// Vault is back: ready again at the next refresh.
	src.set("slack.bot_token", "xoxb-two", nil)
	_ = s.Refresh(ctx)
	if err := s.Ready(); err != nil {
		t.Errorf("Ready after recovery = %v", err)
	}
}

// gaugeOnly exposes just the expired gauge, for testutil.ToFloat64.
func gaugeOnly(s *Store) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 16)
		s.Collect(all)
		close(all)
		for m := range all {
			if m.Desc() == s.expired {
				ch <- m
			}
		}
	})
}

func TestStoreNeverReadIsExpired(t *testing.T) {
	src := newFake()
	src.set("masters[0].password", "", errors.New("vault: secret/sift/eu: permission denied"))
	s := New(src, Options{MaxStaleness: time.Hour})
	if _, err := s.Get(context.Background(), "masters[0].password"); err == nil {
		t.Fatal("Get succeeded with a failing source")
	}
	if err := s.Ready(); err == nil {
		t.Error("ready with a secret that was never read")
	}
}

func TestStoreRunReloads(t *testing.T) {
	src := newFake()
	src.set("k", "v1", nil)
	s := New(src, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	changed := make(chan string, 1)
	s.OnChange(func(k string) { changed <- k })
	reload := make(chan struct{})
	done := make(chan struct{})
	go func() { s.Run(ctx, nil, reload); close(done) }()
	src.set("k", "v2", nil)
	reload <- struct{}{}
	if k := <-changed; k != "k" {
		t.Errorf("changed %q", k)
	}
	cancel()
	<-done
}

func TestStoreRunRefreshesOnTick(t *testing.T) {
	src := newFake()
	src.set("k", "v1", nil)
	s := New(src, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	changed := make(chan string, 1)
	s.OnChange(func(k string) { changed <- k })
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() { s.Run(ctx, tick, nil); close(done) }()
	src.set("k", "v2", nil)
	tick <- time.Time{}
	if k := <-changed; k != "k" {
		t.Errorf("changed %q", k)
	}
	if v, _ := s.Get(ctx, "k"); v.Reveal() != "v2" {
		t.Errorf("after a tick Get = %q", v.Reveal())
	}
	cancel()
	<-done
}

func TestStoreConcurrentRereads(t *testing.T) {
	src := newFake()
	src.set("k", "v", nil)
	s := New(src, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := s.Reread(context.Background(), "k"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if v, _ := s.Get(context.Background(), "k"); v.Reveal() != "v" {
		t.Errorf("Get = %q", v.Reveal())
	}
}

func TestTransportPutsCurrentTokens(t *testing.T) {
	src := newFake()
	src.set("slack.bot_token", "xoxb-real-1", nil)
	src.set("slack.app_token", "xapp-real-1", nil)
	store := New(src, Options{})
	type seen struct{ auth, token, other string }
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got <- seen{r.Header.Get("Authorization"), r.PostForm.Get("token"), r.PostForm.Get("channel")}
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{Store: store, Placeholders: map[string]string{
		"xoxb-placeholder": "slack.bot_token", "xapp-placeholder": "slack.app_token",
	}}}
	post := func(auth string, form url.Values) seen {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-got
	}
	if s := post("xoxb-placeholder", url.Values{"channel": {"C1"}}); s.auth != "Bearer xoxb-real-1" || s.other != "C1" {
		t.Errorf("header call: %+v", s)
	}
	if s := post("", url.Values{"token": {"xapp-placeholder"}, "channel": {"C2"}}); s.token != "xapp-real-1" || s.other != "C2" {
		t.Errorf("form call: %+v", s)
	}
	// Rotation: the next request carries the new value.
	src.set("slack.bot_token", "xoxb-real-2", nil)
	if err := store.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := post("xoxb-placeholder", nil); s.auth != "Bearer xoxb-real-2" {
		t.Errorf("after rotation: %+v", s)
	}
	// Anything else passes untouched.
	if s := post("xoxb-someone-else", url.Values{"token": {"other"}}); s.auth != "Bearer xoxb-someone-else" || s.token != "other" {
		t.Errorf("foreign token rewritten: %+v", s)
	}
}
