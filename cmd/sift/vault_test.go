package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
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

// TestServeWithVault runs sift serve with the Slack tokens and the master's
// password in Vault: all three are rotated in Vault and picked up after
// SIGHUP without a restart, then Vault dies and Sift keeps answering on the
// values it has, saying so in its metrics while staying ready.
func TestServeWithVault(t *testing.T) {
	s := vaulttest.Start(t)
	ctx := context.Background()
	if err := s.Root.Sys().PutPolicy("sift", `path "secret/data/sift/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	put := func(path string, data map[string]any) {
		t.Helper()
		if _, err := s.Root.KVv2("secret").Put(ctx, path, data); err != nil {
			t.Fatal(err)
		}
	}
	put("sift/slack", map[string]any{"app_token": "xapp-1-vault-old", "bot_token": "xoxb-vault-old"})
	put("sift/salt-eu", map[string]any{"password": "salt-vault-old"})
	tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"sift"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := vaulttest.WriteSecret(t, filepath.Join(t.TempDir(), "vault-token"), tok.Auth.ClientToken)

	m := &fakesalt.Master{Name: "salt-eu", Minions: minions("ams01", "web", 3, fakesalt.Healthy())}
	l := startLab(t, []*fakesalt.Master{m}, map[string]string{"ams01": "salt-eu"})
	salt := l.servers["salt-eu"]
	salt.Update(func(m *fakesalt.Master) { m.Password = "salt-vault-old" })
	fs := fakeslack.New(fakeslack.Options{PingInterval: 100 * time.Millisecond})
	defer fs.Close()
	addr := freeAddr(t)
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), `password: "`+testPassword+`"`, "password_vault: {path: sift/salt-eu, field: password}", 1) +
		fmt.Sprintf(`slack:
  app_token_vault: {path: sift/slack, field: app_token}
  bot_token_vault: {path: sift/slack, field: bot_token}
  api_url: %q
  audit_log: %s
  shutdown_grace: 2s
  progress_interval: 50ms
vault:
  address: %s
  auth: {method: token, token_file: %s}
metrics: {listen: %q}
`, fs.APIURL(), auditFile, s.Addr, tokenFile, addr)
	if err := os.WriteFile(l.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(rctx)
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"serve", "--config", l.config}, strings.NewReader(""), &stdout, &stderr)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
		audit, _ := os.ReadFile(auditFile)
		out := stdout.String() + stderr.String() + string(audit)
		for _, v := range []string{"xapp-1-vault", "xoxb-vault", "salt-vault-", tok.Auth.ClientToken} {
			if strings.Contains(out, v) {
				t.Errorf("the output holds a secret (%s…)", v[:6])
			}
		}
	}()
	if err := fs.Wait(rctx, func() bool { return fs.Connected() == 1 }); err != nil {
		t.Fatalf("no connection: %v", err)
	}
	metric := func(line string) {
		t.Helper()
		for {
			_, body := get(t, "http://"+addr+"/metrics")
			if strings.Contains(body, line) {
				return
			}
			select {
			case <-rctx.Done():
				t.Fatalf("metrics never showed %s:\n%s", line, body)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// A command is done when its audit record is written; "ok" means the
	// triage reached the master.
	answered := func() {
		t.Helper()
		records := func() []string {
			b, _ := os.ReadFile(auditFile)
			return strings.Split(strings.TrimSpace(string(b)), "\n")
		}
		n := len(records())
		if records()[0] == "" {
			n = 0
		}
		if _, err := fs.SendSlashCommand(rctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "ams01", UserID: "U0ALICE", ChannelID: "C0INCIDENT"}); err != nil {
			t.Fatal(err)
		}
		for len(records()) <= n || records()[0] == "" {
			select {
			case <-rctx.Done():
				t.Fatalf("command not answered")
			case <-time.After(50 * time.Millisecond):
			}
		}
		var rec struct{ Outcome, Headline string }
		if err := json.Unmarshal([]byte(records()[n]), &rec); err != nil || rec.Outcome != "ok" {
			t.Fatalf("command record %s (%v)", records()[n], err)
		}
	}
	answered()

	// Rotation in Vault: new Slack tokens, a new salt-api password (the
	// master changes it at the same time and drops the sessions).
	put("sift/slack", map[string]any{"app_token": "xapp-1-vault-new", "bot_token": "xoxb-vault-new"})
	put("sift/salt-eu", map[string]any{"password": "salt-vault-new"})
	salt.Update(func(m *fakesalt.Master) { m.Password = "salt-vault-new" })
	salt.ExpireTokens()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	metric(`sift_secret_changes_total{secret="slack.bot_token"} 1`)
	metric(`sift_secret_changes_total{secret="masters[0].password"} 1`)
	if err := fs.SendDisconnect(rctx, "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Wait(rctx, func() bool {
		opens := fs.CallsTo("apps.connections.open")
		return opens[len(opens)-1].Token == "xapp-1-vault-new" && fs.Connected() == 1
	}); err != nil {
		t.Fatalf("no reconnection with the new app token: %v", err)
	}
	logins := salt.Logins()
	answered()
	if salt.Logins() == logins {
		t.Error("the salt-api client did not log in again with the rotated password")
	}
	posts := fs.CallsTo("chat.postMessage")
	if got := posts[len(posts)-1].Token; got != "xoxb-vault-new" {
		t.Errorf("last post with %q, want the rotated bot token", got)
	}

	// Vault dies: the next reload fails, Sift keeps answering and stays
	// ready on its last good values.
	s.Stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	metric(`sift_secret_read_errors_total{secret="slack.bot_token"}`)
	answered()
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz with Vault down, values fresh: %d %s", code, body)
	}
}
