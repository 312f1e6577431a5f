package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/sift-chatops/sift/vault/vaulttest"
)

// TestVaultSecretsEndToEnd runs check-config and a triage with the master's
// password in a real Vault, and Slack tokens that are missing or forbidden.
func TestVaultSecretsEndToEnd(t *testing.T) {
	s := vaulttest.Start(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.Setup(t, key)
	ctx := context.Background()
	if _, err := s.Root.KVv2("secret").Put(ctx, "sift/salt-eu", map[string]any{"password": testPassword}); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"sift"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := vaulttest.WriteSecret(t, filepath.Join(t.TempDir(), "vault-token"), tok.Auth.ClientToken)
	vaultSection := fmt.Sprintf("vault:\n  address: %s\n  auth: {method: token, token_file: %s}\n", s.Addr, tokenFile)

	l := labWith(t, "password_vault: {path: sift/salt-eu, field: password}", vaultSection)
	r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
	if r.code != 0 {
		t.Fatalf("triage with the password in Vault: exit %d: %s", r.code, r.stderr)
	}
	r = sift(t, "", "check-config", "--config", l.config)
	if r.code != 0 || !regexp.MustCompile(`masters\[0\]\.password +vault secret/sift/salt-eu#password +found, version 2`).MatchString(r.stdout) {
		t.Errorf("check-config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	bad := labWith(t, "password_vault: {path: sift/salt-eu, field: password}", vaultSection+
		"slack:\n  app_token_vault: {path: sift/nothing-here, field: app_token}\n  bot_token_vault: {path: other/db, field: password}\n")
	r = sift(t, "", "check-config", "--config", bad.config)
	for _, want := range []string{
		`slack\.app_token +vault secret/sift/nothing-here#app_token +missing`,
		`slack\.bot_token +vault secret/other/db#password +forbidden`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("check-config lacks %s:\n%s", want, r.stdout)
		}
	}
	if r.code != 2 || !strings.Contains(r.stderr, "grant read on secret/data/other/db to Sift's policy") {
		t.Errorf("check-config: exit %d: %s", r.code, r.stderr)
	}
	for _, leak := range []string{"not-for-sift", tok.Auth.ClientToken} {
		if strings.Contains(r.stdout+r.stderr, leak) {
			t.Errorf("check-config printed a secret")
		}
	}
}
