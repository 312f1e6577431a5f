package probes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
)

func TestVaultState(t *testing.T) {
	tests := []struct {
		code  int
		state string
		ok    bool
	}{
		{200, "active, unsealed", true},
		{429, "standby", true},
		{472, "DR secondary", true},
		{473, "performance standby", true},
		{501, "not initialised", true},
		{503, "sealed", true},
		{500, "", false},
		{404, "", false},
	}
	for _, tc := range tests {
		if s, ok := VaultState(tc.code); s != tc.state || ok != tc.ok {
			t.Errorf("VaultState(%d) = %q, %v, want %q, %v", tc.code, s, ok, tc.state, tc.ok)
		}
	}
}

func TestAllowed(t *testing.T) {
	p := New(config.Probes{Allow: []string{"https://vault.example.com:8200", ".corp.example.net", "http://10.0.0.5:8080/"},
		Timeout: time.Second, MaxParallel: 1, CacheFor: time.Minute}, Options{})
	tests := []struct {
		url  string
		want bool
	}{
		{"https://vault.example.com:8200/v1/secret/data/x", true},
		{"https://VAULT.example.com:8200/", true},
		{"https://vault.example.com/v1/x", false},     // other port
		{"http://vault.example.com:8200/v1/x", false}, // other scheme
		{"https://vault.example.com.evil.io:8200/", false},
		{"https://evilvault.example.com:8200/", false},
		{"https://pkg.corp.example.net/repo", true},
		{"https://corp.example.net/", true},
		{"https://a.b.corp.example.net:8200/v1/sys", true},
		{"https://pkg.corp.example.net:22/", false}, // suffixes allow default ports and 8200 only
		{"https://xcorp.example.net/", false},
		{"https://corp.example.net.attacker.io/", false},
		{"http://10.0.0.5:8080/health", true},
		{"http://10.0.0.5:8081/", false},
		{"http://169.254.169.254/latest/meta-data/", false},
		{"https://user:pw@vault.example.com:8200/", false},
		{"file:///etc/passwd", false},
		{"gopher://vault.example.com:8200/", false},
		{"vault.example.com:8200", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := p.Allowed(tc.url); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
	if New(config.Probes{Timeout: time.Second, MaxParallel: 1}, Options{}).Allowed("https://vault.example.com:8200/") {
		t.Error("an empty allow-list allowed an origin")
	}
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

func TestProbeVaultHealthAndCache(t *testing.T) {
	var hits atomic.Int32
	var code atomic.Int32
	code.Store(503)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/v1/sys/health" || r.URL.Query().Get("sealedcode") != "503" || r.URL.Query().Get("standbyok") != "false" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	p := New(config.Probes{Allow: []string{srv.URL}, Timeout: 5 * time.Second, MaxParallel: 2, CacheFor: time.Minute}, Options{Now: clk.now})
	ctx := context.Background()
	origin, _ := Origin(srv.URL)

	r, ok := p.Probe(ctx, srv.URL+"/v1/kv/data/salt/pillar")
	if !ok || r.Status != 503 || r.Text != "Vault at "+origin.String()+" answers 503: sealed" {
		t.Fatalf("probe = %+v, %v", r, ok)
	}
	code.Store(429)
	if r, _ := p.Probe(ctx, srv.URL+"/v1/other"); r.Status != 503 || hits.Load() != 1 {
		t.Errorf("cached probe = %+v after %d hits, want the cached answer and one hit", r, hits.Load())
	}
	clk.add(2 * time.Minute)
	if r, _ := p.Probe(ctx, srv.URL+"/v1/other"); r.Text != "Vault at "+origin.String()+" answers 429: standby" || hits.Load() != 2 {
		t.Errorf("after the cache expired: %+v, %d hits", r, hits.Load())
	}
	// A plain origin gets a HEAD /.
	if r, _ := p.Probe(ctx, srv.URL+"/index.html"); !strings.HasPrefix(r.Text, origin.String()+" answers 404 Not Found in ") {
		t.Errorf("plain probe = %q", r.Text)
	}
}

func TestProbeRefusesWithoutConnecting(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	p := New(config.Probes{Allow: []string{"https://vault.example.com:8200"}, Timeout: time.Second, MaxParallel: 1, CacheFor: time.Minute}, Options{})
	if _, ok := p.Probe(context.Background(), srv.URL+"/v1/sys/health"); ok {
		t.Error("a URL outside the allow-list was probed")
	}
	if hits.Load() != 0 {
		t.Errorf("the server saw %d requests, want none", hits.Load())
	}
}

func TestProbeDoesNotFollowRedirects(t *testing.T) {
	var inner atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { inner.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer srv.Close()
	p := New(config.Probes{Allow: []string{srv.URL}, Timeout: 5 * time.Second, MaxParallel: 1, CacheFor: time.Minute}, Options{})
	r, _ := p.Probe(context.Background(), srv.URL)
	if r.Status != http.StatusFound || inner.Load() != 0 {
		t.Errorf("probe = %+v, redirect target hit %d times; want 302 reported and not followed", r, inner.Load())
	}
}

func TestProbeConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	p := New(config.Probes{Allow: []string{url}, Timeout: 5 * time.Second, MaxParallel: 1, CacheFor: time.Minute}, Options{})
	r, ok := p.Probe(context.Background(), url+"/v1/sys/health")
	if !ok || r.Err == nil || !strings.Contains(r.Text, "does not answer: dial: ") || !strings.HasPrefix(r.Text, "Vault at ") {
		t.Errorf("probe of a closed port = %+v", r)
	}
}

func TestProbeSharesOneRequestPerOrigin(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		hits.Add(1)
		<-release
	}))
	defer srv.Close()
	p := New(config.Probes{Allow: []string{srv.URL}, Timeout: time.Minute, MaxParallel: 4, CacheFor: time.Minute}, Options{})
	var wg sync.WaitGroup
	results := make(chan Result, 8)
	for range 8 {
		wg.Go(func() {
			r, _ := p.Probe(context.Background(), srv.URL)
			results <- r
		})
	}
	// Let the first request arrive, then answer it.
	for hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.Status != 200 {
			t.Errorf("result %+v", r)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests for 8 concurrent probes of one origin, want 1", n)
	}
}

func TestProbeConcurrencyBound(t *testing.T) {
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	handler := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	})
	var allow []string
	var urls []string
	for range 3 {
		srv := httptest.NewServer(handler)
		defer srv.Close()
		allow = append(allow, srv.URL)
		urls = append(urls, srv.URL)
	}
	p := New(config.Probes{Allow: allow, Timeout: time.Minute, MaxParallel: 1, CacheFor: time.Minute}, Options{})
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Go(func() { p.Probe(context.Background(), u) })
	}
	// Each probe is let through one at a time.
	for range urls {
		for inFlight.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		release <- struct{}{}
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d probes in flight at once, want at most 1", most.Load())
	}
}
