package vault

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/probes"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/vault/vaulttest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRotationSealAndOutage follows one Vault through a rotation, a seal
// and its death, with the secret store and the prober in front of it.
func TestRotationSealAndOutage(t *testing.T) {
	s := vaulttest.Start(t)
	ctx := context.Background()
	if err := s.Root.Sys().PutPolicy("sift", `path "secret/data/sift/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Root.KVv2("secret").Put(ctx, "sift/slack", map[string]any{"bot_token": "xoxb-rotation-1"}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"sift"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(`masters:
  - {name: eu, url: "http://127.0.0.1:1", eauth: pam, username: u, password: p}
slack:
  app_token: xapp-static
  bot_token_vault: {path: sift/slack, field: bot_token}
vault:
  address: `+s.Addr+`
  max_staleness: 1h
  auth: {method: token, token_env: SIFT_TEST_VAULT_TOKEN}
probes:
  allow: ["`+s.Addr+`"]
`), func(k string) (string, bool) {
		if k == "SIFT_TEST_VAULT_TOKEN" {
			return tok.Auth.ClientToken, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := New(*cfg.Vault, Options{Env: func(k string) (string, bool) { return tok.Auth.ClientToken, k == "SIFT_TEST_VAULT_TOKEN" }})
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	store := secretstore.New(cfg, secretstore.Options{Vault: vc, MaxStaleness: cfg.Vault.MaxStaleness, Now: clk.now})
	changed := make(chan string, 4)
	store.OnChange(func(k string) { changed <- k })

	v, err := store.Get(ctx, config.SlackBotTokenKey)
	if err != nil || v.Reveal() != "xoxb-rotation-1" {
		t.Fatalf("Get = %v", err)
	}

	// Rotation: a new version is picked up at the next refresh.
	if _, err := s.Root.KVv2("secret").Put(ctx, "sift/slack", map[string]any{"bot_token": "xoxb-rotation-2"}); err != nil {
		t.Fatal(err)
	}
	if err := store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k := <-changed; k != config.SlackBotTokenKey {
		t.Errorf("change of %q", k)
	}
	if v, _ := store.Get(ctx, config.SlackBotTokenKey); v.Reveal() != "xoxb-rotation-2" {
		t.Error("rotated token not picked up")
	}
	if st := store.Statuses(); len(st) != 1 || st[0].Version != 2 {
		t.Errorf("statuses = %+v, want version 2", st)
	}

	// Sealed: the probe says so; reads fail, the last good value stays.
	p := probes.New(cfg.Probes, probes.Options{Now: clk.now})
	if r, ok := p.Probe(ctx, s.Addr+"/v1/secret/data/salt/pillar"); !ok || r.Text != "Vault at "+s.Addr+" answers 200: active, unsealed" {
		t.Errorf("probe of a healthy Vault = %q, %v", r.Text, ok)
	}
	if err := s.Root.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute) // past the probe cache
	if r, _ := p.Probe(ctx, s.Addr+"/v1/secret/data/salt/pillar"); r.Text != "Vault at "+s.Addr+" answers 503: sealed" {
		t.Errorf("probe of a sealed Vault = %q", r.Text)
	}
	if err := store.Refresh(ctx); err == nil {
		t.Error("refresh from a sealed Vault succeeded")
	}
	if v, _ := store.Get(ctx, config.SlackBotTokenKey); v.Reveal() != "xoxb-rotation-2" {
		t.Error("last good value lost while Vault is sealed")
	}

	// Killed: Sift keeps working on the cached value and is ready until the
	// value is older than max_staleness.
	s.Stop()
	clk.add(30 * time.Minute)
	err = store.Refresh(ctx)
	if err == nil || strings.Contains(err.Error(), "xoxb-") {
		t.Errorf("refresh with Vault dead = %v", err)
	}
	if v, _ := store.Get(ctx, config.SlackBotTokenKey); v.Reveal() != "xoxb-rotation-2" {
		t.Error("last good value lost with Vault dead")
	}
	if err := store.Ready(); err != nil {
		t.Errorf("not ready 30m into the outage: %v", err)
	}
	if r, _ := p.Probe(ctx, s.Addr+"/v1/sys/health"); !strings.HasPrefix(r.Text, "Vault at "+s.Addr+" does not answer: ") {
		t.Errorf("probe of a dead Vault = %q", r.Text)
	}
	clk.add(31 * time.Minute)
	_ = store.Refresh(ctx)
	if err := store.Ready(); err == nil || !strings.Contains(err.Error(), "secret slack.bot_token expired") {
		t.Errorf("Ready past max_staleness = %v", err)
	}
}
