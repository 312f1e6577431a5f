// Package probes checks, from Sift's own host, the external services a
// triage names as causes: a Vault's seal and HA state from
// /v1/sys/health, any other http(s) origin's status, TLS validity and
// latency. URLs come from minion output, which an attacker may write, so
// only origins the configuration allows are ever contacted (no SSRF):
// everything else is refused before any connection. Probes are bounded in
// time and concurrency and cached per origin.
package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sift-chatops/sift/config"
)

// vaultHealthQuery asks /v1/sys/health to encode each state in the status
// code, the defaults spelt out so that no server setting changes them.
const vaultHealthQuery = "standbyok=false&perfstandbyok=false&activecode=200&standbycode=429" +
	"&drsecondarycode=472&performancestandbycode=473&sealedcode=503&uninitcode=501"

// VaultState names the state a /v1/sys/health status code stands for
// under vaultHealthQuery; ok is false for a code Vault does not use.
func VaultState(code int) (state string, ok bool) {
	switch code {
	case 200:
		return "active, unsealed", true
	case 429:
		return "standby", true
	case 472:
		return "DR secondary", true
	case 473:
		return "performance standby", true
	case 501:
		return "not initialised", true
	case 503:
		return "sealed", true
	}
	return "", false
}

// Result is what one probe saw.
type Result struct {
	// Origin is scheme://host:port.
	Origin string
	// Text says it in one line for the report, e.g. "Vault at
	// https://vault.example.com:8200 answers 503: sealed".
	Text string
	// Status is the HTTP status, 0 when none came back.
	Status int
	Err    error
	At     time.Time
}

// Options are New's optional dependencies.
type Options struct {
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Prober probes allowed origins. It is safe for concurrent use.
type Prober struct {
	allow  []string
	cfg    config.Probes
	client *http.Client
	now    func() time.Time
	slots  chan struct{}

	mu    sync.Mutex
	cache map[string]Result
	// inflight shares one probe among concurrent asks for an origin.
	inflight map[string]chan struct{}
}

// New returns a prober for cfg; with cfg.Allow empty it probes nothing.
func New(cfg config.Probes, opts Options) *Prober {
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                  nil, // an allowed origin is reached directly, as Sift sees it
			DialContext:            (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
			TLSHandshakeTimeout:    cfg.Timeout,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 16 << 10,
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Prober{
		allow: cfg.Allow, cfg: cfg, now: opts.Now,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect could point anywhere: it is reported, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		slots:    make(chan struct{}, max(cfg.MaxParallel, 1)),
		cache:    map[string]Result{},
		inflight: map[string]chan struct{}{},
	}
}

// Origin returns the origin (scheme://host:port, port always written) of
// raw, or false when raw is not an http(s) URL with a host.
func Origin(raw string) (*url.URL, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return nil, false
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(strings.ToLower(u.Hostname()), port)}, true
}

// Allowed reports whether raw's origin may be probed: it equals an origin
// of the allow-list, or its host ends in one of the list's host suffixes
// on the scheme's default port or Vault's 8200. Anything else, and
// anything that is not an http(s) URL, is refused.
func (p *Prober) Allowed(raw string) bool {
	o, ok := Origin(raw)
	if !ok {
		return false
	}
	host, port := o.Hostname(), o.Port()
	for _, a := range p.allow {
		if strings.HasPrefix(a, ".") {
			suffix := strings.ToLower(a)
			if (strings.HasSuffix(host, suffix) || host == suffix[1:]) &&
				(port == "8200" || (o.Scheme == "https" && port == "443") || (o.Scheme == "http" && port == "80")) {
				return true
			}
			continue
		}
		if ao, ok := Origin(a); ok && ao.String() == o.String() {
			return true
		}
	}
	return false
}

// IsVault reports whether raw looks like a Vault API URL (a path under /v1/).
func IsVault(raw string) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	return err == nil && strings.HasPrefix(u.Path, "/v1/")
}

// Probe checks raw's origin, from the cache when it was probed less than
// CacheFor ago. ok is false, and nothing is contacted, when the origin is
// not allowed.
func (p *Prober) Probe(ctx context.Context, raw string) (r Result, ok bool) {
	if !p.Allowed(raw) {
		return Result{}, false
	}
	o, _ := Origin(raw)
	vault := IsVault(raw)
	key := o.String()
	if vault {
		key += " vault"
	}
	for {
		p.mu.Lock()
		if c, hit := p.cache[key]; hit && p.now().Sub(c.At) < p.cfg.CacheFor {
			p.mu.Unlock()
			return c, true
		}
		wait, busy := p.inflight[key]
		if !busy {
			wait = make(chan struct{})
			p.inflight[key] = wait
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return Result{Origin: o.String(), Err: ctx.Err(), Text: fmt.Sprintf("%s: not probed: %v", o, ctx.Err())}, true
		}
	}
	r = p.probe(ctx, o, vault)
	p.mu.Lock()
	if !errors.Is(r.Err, context.Canceled) {
		p.cache[key] = r
	}
	close(p.inflight[key])
	delete(p.inflight, key)
	p.mu.Unlock()
	return r, true
}

func (p *Prober) probe(ctx context.Context, o *url.URL, vault bool) Result {
	r := Result{Origin: o.String(), At: p.now()}
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-ctx.Done():
		r.Err = ctx.Err()
		r.Text = fmt.Sprintf("%s: not probed: %v", o, ctx.Err())
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	target := o.String() + "/"
	method := http.MethodHead
	if vault {
		target = o.String() + "/v1/sys/health?" + vaultHealthQuery
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		r.Err = err
		r.Text = fmt.Sprintf("%s: %v", o, err)
		return r
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	latency := time.Since(start).Round(time.Millisecond)
	if err != nil {
		r.Err = err
		r.Text = fmt.Sprintf("%s does not answer: %s", o, reason(err))
		if vault {
			r.Text = "Vault at " + r.Text
		}
		return r
	}
	resp.Body.Close()
	r.Status = resp.StatusCode
	if vault {
		state, known := VaultState(resp.StatusCode)
		if !known {
			state = "not a Vault health answer"
		}
		r.Text = fmt.Sprintf("Vault at %s answers %d: %s", o, resp.StatusCode, state)
		return r
	}
	r.Text = fmt.Sprintf("%s answers %d %s in %s%s", o, resp.StatusCode, http.StatusText(resp.StatusCode), latency, tlsNote(resp.TLS))
	return r
}

// reason is a connection error without Go's "Get \"url\":" wrapping.
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return "TLS certificate not valid: " + ce.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Op + ": " + op.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}

// tlsNote says until when the server's certificate is valid.
func tlsNote(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return ", TLS certificate valid until " + cs.PeerCertificates[0].NotAfter.UTC().Format("2006-01-02")
}
