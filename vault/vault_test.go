package vault

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/vault/vaulttest"
)

// shared is the dev server most tests use; tests that stop or seal a
// server start their own.
func shared(t *testing.T) (*vaulttest.Server, *rsa.PrivateKey) {
	t.Helper()
	s := vaulttest.Start(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.Setup(t, key)
	return s, key
}

func newClient(t *testing.T, s *vaulttest.Server, auth config.VaultAuth, env map[string]string) *Client {
	t.Helper()
	if auth.Mount == "" {
		auth.Mount = auth.Method
	}
	c, err := New(config.Vault{Address: s.Addr, Auth: auth}, Options{Env: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds; the bound is generous because the
// events waited for (a renewal, a re-login) follow Vault's own TTLs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestVault(t *testing.T) {
	s, key := shared(t)
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("token: read at start, missing and forbidden named, never a value", func(t *testing.T) {
		tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"sift"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, s, config.VaultAuth{Method: "token", TokenEnv: "SIFT_VAULT_TOKEN"}, map[string]string{"SIFT_VAULT_TOKEN": tok.Auth.ClientToken})
		kv, err := c.ReadKV(ctx, "secret", "sift/salt-eu")
		if err != nil {
			t.Fatal(err)
		}
		if kv.Data["password"] != "vault-pw-1" || kv.Version != 1 {
			t.Errorf("ReadKV = %v version %d", kv.Data, kv.Version)
		}
		_, err = c.ReadKV(ctx, "secret", "sift/nope")
		if !errors.Is(err, config.ErrVaultNotFound) || !strings.Contains(err.Error(), "vault: secret/sift/nope: not found") {
			t.Errorf("missing secret: %v", err)
		}
		_, err = c.ReadKV(ctx, "secret", "other/db")
		if !errors.Is(err, config.ErrVaultForbidden) ||
			!strings.Contains(err.Error(), "vault: secret/other/db: permission denied (grant read on secret/data/other/db to Sift's policy)") {
			t.Errorf("forbidden secret: %v", err)
		}
		for _, leak := range []string{"not-for-sift", tok.Auth.ClientToken, s.Root.Token()} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error leaks a value: %v", err)
			}
		}
	})

	t.Run("token with a 10s TTL is renewed", func(t *testing.T) {
		tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{
			Policies: []string{"sift"}, TTL: "10s", ExplicitMaxTTL: "10m", Renewable: new(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		tokenFile := vaulttest.WriteSecret(t, filepath.Join(dir, "agent-sink"), tok.Auth.ClientToken)
		c := newClient(t, s, config.VaultAuth{Method: "token", TokenFile: tokenFile}, nil)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = c.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		lookup := func() *vaultapi.Secret {
			t.Helper()
			sec, err := s.Root.Auth().Token().Lookup(tok.Auth.ClientToken)
			if err != nil {
				t.Fatalf("the token is gone: %v", err)
			}
			return sec
		}
		// Created with a 10 s TTL: it must be renewed over and over and
		// still work once the first 10 s are long gone.
		firstExpiry, err := time.Parse(time.RFC3339Nano, lookup().Data["expire_time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		renewals := map[any]bool{}
		waitFor(t, "two renewals of the token", func() bool {
			if r := lookup().Data["last_renewal_time"]; r != nil {
				renewals[fmt.Sprint(r)] = true
			}
			return len(renewals) >= 2
		})
		waitFor(t, "the token's first expiry to pass", func() bool { return time.Now().After(firstExpiry.Add(time.Second)) })
		if _, err := c.ReadKV(ctx, "secret", "sift/salt-eu"); err != nil {
			t.Errorf("read after the first TTL ran out: %v", err)
		}
	})

	t.Run("approle: token max TTL forces a re-login with the secret_id file read again", func(t *testing.T) {
		sid, accessor := s.SecretID(t, "sift", false)
		sidFile := vaulttest.WriteSecret(t, filepath.Join(dir, "secret-id"), sid)
		c := newClient(t, s, config.VaultAuth{Method: "approle", RoleID: s.RoleID(t, "sift"), SecretIDFile: sidFile}, nil)
		if _, err := c.ReadKV(ctx, "secret", "sift/salt-eu"); err != nil {
			t.Fatal(err)
		}
		first := c.api.Token()
		// The first secret_id is gone (as when it expires); the
		// orchestrator put a new one in the file.
		if _, err := s.Root.Logical().Write("auth/approle/role/sift/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": accessor}); err != nil {
			t.Fatal(err)
		}
		sid2, _ := s.SecretID(t, "sift", false)
		vaulttest.WriteSecret(t, sidFile, sid2)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = c.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		waitFor(t, "a re-login after the token's max TTL", func() bool { return c.api.Token() != first })
		if _, err := c.ReadKV(ctx, "secret", "sift/salt-eu"); err != nil {
			t.Errorf("read after re-login: %v", err)
		}
	})

	t.Run("approle with a response-wrapped secret_id", func(t *testing.T) {
		wrapping, _ := s.SecretID(t, "static", true)
		c := newClient(t, s, config.VaultAuth{Method: "approle", RoleID: s.RoleID(t, "static"),
			SecretIDFile: vaulttest.WriteSecret(t, filepath.Join(dir, "wrapped"), wrapping), SecretIDWrapped: true}, nil)
		if _, err := c.ReadKV(ctx, "secret", "sift/salt-eu"); err != nil {
			t.Fatal(err)
		}
		// A wrapping token unwraps once: a second login with the same file
		// is refused, and says so.
		err := c.Login(ctx)
		if err == nil || !strings.Contains(err.Error(), "vault: login with approle at auth/approle: Vault answered 400: wrapping token is not valid") {
			t.Errorf("second login with a used wrapping token: %v", err)
		}
	})

	t.Run("jwt and kubernetes logins", func(t *testing.T) {
		jwtFile := vaulttest.WriteSecret(t, filepath.Join(dir, "jwt"), vaulttest.SignJWT(t, key, "sift"))
		for _, method := range []string{"jwt", "kubernetes"} {
			c := newClient(t, s, config.VaultAuth{Method: method, Role: "sift", JWTFile: jwtFile}, nil)
			if kv, err := c.ReadKV(ctx, "secret", "sift/salt-eu"); err != nil || kv.Data["password"] != "vault-pw-1" {
				t.Errorf("%s: ReadKV = %v, %v", method, kv.Data, err)
			}
		}
		bad := newClient(t, s, config.VaultAuth{Method: "jwt", Role: "sift", JWTFile: vaulttest.WriteSecret(t, filepath.Join(dir, "bad-jwt"), "not.a.jwt")}, nil)
		if _, err := bad.ReadKV(ctx, "secret", "sift/salt-eu"); err == nil || !strings.Contains(err.Error(), "vault: login with jwt at auth/jwt: Vault answered 400") {
			t.Errorf("bad JWT: %v", err)
		}
	})
}

func TestVaultTLS(t *testing.T) {
	s := vaulttest.StartWith(t, true)
	ctx := context.Background()
	if _, err := s.Root.KVv2("secret").Put(ctx, "sift/tls", map[string]any{"v": "over-tls"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"T": s.Root.Token()}
	tests := []struct {
		name, addr, caFile, serverName, wantErr string
	}{
		{"ca_file", s.Addr, s.CAFile, "", ""},
		{"server_name checked instead of the address's host", s.Addr, s.CAFile, "localhost", ""},
		{"system roots do not know the dev CA", s.Addr, "", "", "certificate signed by unknown authority"},
		{"wrong server_name", s.Addr, s.CAFile, "vault.example.com", "certificate is valid for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(config.Vault{Address: tc.addr, CAFile: tc.caFile, ServerName: tc.serverName,
				Auth: config.VaultAuth{Method: "token", TokenEnv: "T", Mount: "token"}},
				Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ReadKV(ctx, "secret", "sift/tls")
			if tc.wantErr == "" && err != nil {
				t.Errorf("ReadKV: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("ReadKV = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
