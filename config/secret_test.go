package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
	return path
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	plain := writeFile(t, filepath.Join(dir, "plain"), "s3cret-value\r\n", 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(plain, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := writeFile(t, filepath.Join(dir, "big"), strings.Repeat("x", MaxSecretFileSize+1), 0o600)
	justRight := writeFile(t, filepath.Join(dir, "max"), strings.Repeat("y", MaxSecretFileSize), 0o600)
	empty := writeFile(t, filepath.Join(dir, "empty"), "\n", 0o600)

	tests := []struct {
		name, path string
		want       string // value, when no error
		wantTarget string
		wantErr    string
	}{
		{"plain file, CRLF trimmed", plain, "s3cret-value", "", ""},
		{"symlink followed and reported", link, "s3cret-value", plain, ""},
		{"exactly the limit", justRight, strings.Repeat("y", MaxSecretFileSize), "", ""},
		{"FIFO refused without blocking", fifo, "", "", "is a named pipe (FIFO), not a regular file"},
		{"character device refused", "/dev/zero", "", "", `"/dev/zero" is a character device, not a regular file`},
		{"directory refused", dir, "", "", "is a directory, not a regular file"},
		{"too big", big, "", "", fmt.Sprintf("is %d bytes, more than the 65536 a secret file may hold", MaxSecretFileSize+1)},
		{"empty", empty, "", "", "is empty (write the secret into it)"},
		{"missing", filepath.Join(dir, "nope"), "", "", "no such file or directory (point it at a readable file)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A read that blocks would hang the test binary until its
			// -timeout; run it aside so the failure names the case.
			type result struct {
				v    string
				info FileInfo
				err  error
			}
			done := make(chan result, 1)
			go func() {
				v, info, err := ReadSecretFile(tc.path)
				done <- result{v, info, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("ReadSecretFile(%s) blocked", tc.path)
			}
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.v != tc.want {
				t.Errorf("value = %.20q…, want %.20q…", r.v, tc.want)
			}
			if r.info.Target != tc.wantTarget {
				t.Errorf("target = %q, want %q", r.info.Target, tc.wantTarget)
			}
		})
	}
	if _, _, err := ReadSecretFile(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestSecretFileWarningsAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	open := writeFile(t, filepath.Join(dir, "open.pw"), "pw-open\n", 0o644)
	private := writeFile(t, filepath.Join(dir, "private.pw"), "pw-private\n", 0o600)
	link := filepath.Join(dir, "current.pw")
	if err := os.Symlink("private.pw", link); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`masters:
  - {name: a, url: "http://a:8000", eauth: pam, username: u, password_file: %s}
  - {name: b, url: "http://b:8000", eauth: pam, username: u, password_file: %s}
  - {name: c, url: "http://c:8000", eauth: pam, username: u, password_file: %s}
`, open, private, link)
	c, err := Parse([]byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("masters[0].password_file: %s is readable by its group or others (mode 0644; chmod 600 it)", open)}
	if got := c.Warnings(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
	s := c.Summary()
	for _, line := range []string{
		"Warning: " + want[0],
		"password: <secret> (file " + link + " (symlink to " + private + "))",
	} {
		if !strings.Contains(s, line) {
			t.Errorf("summary lacks %q:\n%s", line, s)
		}
	}
	if c.Masters[2].Password.Reveal() != "pw-private" {
		t.Error("symlinked password not read")
	}
}

// lazyYAML names secrets none of which can be read: a missing file and an
// unset variable.
const lazyYAML = `masters:
  - {name: salt-eu, url: "http://a:8000", eauth: pam, username: u, password_file: /nonexistent/sift/salt-eu.pw}
  - {name: salt-us, url: "http://b:8000", eauth: pam, username: u, password: inline-pw}
slack: {app_token_env: SIFT_TEST_UNSET_APP, bot_token_env: SIFT_TEST_UNSET_BOT}
`

func TestSecretsResolvedLazily(t *testing.T) {
	c, err := Parse([]byte(lazyYAML), nil)
	if err != nil {
		t.Fatalf("Parse read secrets it should have left alone: %v", err)
	}
	ctx := context.Background()
	// A command that talks to salt-us only reads salt-us's password.
	if err := c.Resolve(ctx, nil, c.MasterPasswordKey("salt-us")); err != nil {
		t.Fatalf("Resolve(salt-us): %v", err)
	}
	if c.Masters[1].Password.Reveal() != "inline-pw" || c.Masters[0].Password != "" || c.Slack.BotToken != "" {
		t.Error("Resolve of one key filled others")
	}
	if !strings.Contains(c.Summary(), "password: <secret> (file /nonexistent/sift/salt-eu.pw, not read)") {
		t.Errorf("summary does not show the unread source:\n%s", c.Summary())
	}
	err = c.Resolve(ctx, nil)
	for _, want := range []string{
		"config: masters[0].password_file: open /nonexistent/sift/salt-eu.pw: no such file or directory",
		"config: slack.app_token_env: environment variable SIFT_TEST_UNSET_APP is not set or empty",
		"config: slack.bot_token_env: environment variable SIFT_TEST_UNSET_BOT is not set or empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(all) = %v, want it to report %q", err, want)
		}
	}
	if err := c.Resolve(ctx, nil, "masters[9].password"); err == nil {
		t.Error("Resolve of an unknown key succeeded")
	}
}

func TestEnvOverrideBeatsMissingSource(t *testing.T) {
	env := envOf(map[string]string{
		"SIFT_MASTER_SALT_EU_PASSWORD": "override-pw",
		"SIFT_SLACK_APP_TOKEN":         "xapp-override",
		"SIFT_SLACK_BOT_TOKEN":         "xoxb-override",
	})
	c, err := Parse([]byte(lazyYAML), env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(context.Background(), nil); err != nil {
		t.Fatalf("Resolve with overrides: %v", err)
	}
	got := []string{c.Masters[0].Password.Reveal(), c.Slack.AppToken.Reveal(), c.Slack.BotToken.Reveal()}
	if want := []string{"override-pw", "xapp-override", "xoxb-override"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("secrets = %q, want %q", got, want)
	}
	if s := c.Summary(); !strings.Contains(s, "bot_token: <secret> (env SIFT_SLACK_BOT_TOKEN (override))") {
		t.Errorf("summary does not name the override:\n%s", s)
	}
	// A bad override is reported by its variable at resolve time.
	c, err = Parse([]byte(lazyYAML), envOf(map[string]string{"SIFT_SLACK_BOT_TOKEN": "xoxp-user-token"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Resolve(context.Background(), nil, SlackBotTokenKey)
	if want := "config: slack.bot_token (from SIFT_SLACK_BOT_TOKEN): holds a user token"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Resolve = %v, want %q…", err, want)
	}
	assertNoSecret(t, "error", fmt.Sprint(err))
	if err != nil && strings.Contains(err.Error(), "xoxp-user-token") {
		t.Errorf("error leaks the token: %v", err)
	}
}

// fakeVault answers ReadKV from a map of "mount/path" to versions.
type fakeVault struct {
	kv   map[string]KV
	errs map[string]error
	seen []string
}

func (f *fakeVault) ReadKV(_ context.Context, mount, path string) (KV, error) {
	f.seen = append(f.seen, mount+"/"+path)
	if err := f.errs[mount+"/"+path]; err != nil {
		return KV{}, err
	}
	kv, ok := f.kv[mount+"/"+path]
	if !ok {
		return KV{}, fmt.Errorf("%s/%s: %w", mount, path, ErrVaultNotFound)
	}
	return kv, nil
}

const vaultSection = `vault:
  address: https://vault.example.com:8200
  auth: {method: approle, role_id: r-1, secret_id_file: /run/sift/secret-id}
`

func TestVaultReferences(t *testing.T) {
	yml := `masters:
  - {name: eu, url: "http://a:8000", eauth: pam, username: u, password_vault: {path: sift/salt-eu, field: password}}
  - {name: us, url: "http://b:8000", eauth: pam, username: u, password_vault: {mount: kv/, path: /sift/salt-us/, field: pw}}
  - {name: ap, url: "http://c:8000", eauth: pam, username: u, password_vault: {path: sift/gone, field: pw}}
  - {name: cn, url: "http://d:8000", eauth: pam, username: u, password_vault: {path: sift/salt-eu, field: nofield}}
slack:
  app_token_vault: {path: sift/slack, field: app_token}
  bot_token_vault: {path: sift/slack, field: bot_token}
` + vaultSection
	c, err := Parse([]byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := c.SecretRef("masters[1].password")
	if ref.Vault == nil || *ref.Vault != (VaultRef{Mount: "kv", Path: "sift/salt-us", Field: "pw"}) {
		t.Errorf("ref = %+v, want mount and path trimmed of slashes", ref.Vault)
	}
	if !c.NeedsVault(SlackBotTokenKey) || c.NeedsVault() != true {
		t.Error("NeedsVault = false")
	}
	fv := &fakeVault{kv: map[string]KV{
		"secret/sift/salt-eu": {Data: map[string]any{"password": "vault-eu-pw-1a2b"}, Version: 3},
		"kv/sift/salt-us":     {Data: map[string]any{"pw": "vault-us-pw-3c4d"}, Version: 1},
		"secret/sift/slack":   {Data: map[string]any{"app_token": "xapp-vault-5e6f", "bot_token": "xoxb-vault-7a8b"}, Version: 7},
	}}
	err = c.Resolve(context.Background(), fv)
	want := "config: masters[2].password_vault: secret/sift/gone: not found\n" +
		`config: masters[3].password_vault: field missing: secret/sift/salt-eu version 3 has no field "nofield" (add it, or fix field)`
	if err == nil || err.Error() != want {
		t.Errorf("Resolve:\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrVaultNotFound) || !errors.Is(err, ErrVaultFieldMissing) {
		t.Errorf("error %v does not wrap the Vault sentinels", err)
	}
	if c.Masters[0].Password.Reveal() != "vault-eu-pw-1a2b" || c.Slack.BotToken.Reveal() != "xoxb-vault-7a8b" {
		t.Error("Vault values not stored")
	}
	s := c.Summary()
	for _, line := range []string{
		"password: <secret> (vault secret/sift/salt-eu#password version 3)",
		"bot_token: <secret> (vault secret/sift/slack#bot_token version 7)",
		"auth: approle at auth/approle, role_id r-1, secret_id_file /run/sift/secret-id",
	} {
		if !strings.Contains(s, line) {
			t.Errorf("summary lacks %q:\n%s", line, s)
		}
	}
	for _, v := range []string{"vault-eu-pw-1a2b", "vault-us-pw-3c4d", "xapp-vault-5e6f", "xoxb-vault-7a8b"} {
		if strings.Contains(s, v) || strings.Contains(fmt.Sprintf("%+v %#v", c, c), v) {
			t.Errorf("a printed form leaks %q", v)
		}
	}
}

func TestVaultConfigErrors(t *testing.T) {
	master := func(pw string) string {
		return "masters:\n  - {name: eu, url: \"http://a:8000\", eauth: pam, username: u, " + pw + "}\n"
	}
	vref := "password_vault: {path: sift/eu, field: password}"
	tests := []struct{ name, yaml, want string }{
		{"two sources", master("password_file: /x, "+vref) + vaultSection,
			"config: masters[0].password: set by password_file and password_vault (keep exactly one of password, password_file, password_env, password_vault)"},
		{"unknown key in a reference", master("password_vault: {path: sift/eu, feild: password}") + vaultSection,
			`config: masters[0].password_vault.feild: unknown key on line 2 (did you mean "field"?)`},
		{"field missing", master("password_vault: {path: sift/eu}") + vaultSection,
			"config: masters[0].password_vault: field not set (write e.g. password_vault: {path: sift/salt-eu, field: password})"},
		{"data/ in the path", master("password_vault: {path: data/sift/eu, field: pw}") + vaultSection,
			`config: masters[0].password_vault.path: "data/sift/eu" starts with data/ (write the path as ` + "`vault kv get`" + ` takes it, without data/)`},
		{"reference without a vault section", master(vref),
			"config: masters[0].password_vault: set but there is no vault section (add vault: with address and auth, see docs/secrets.md)"},
		{"bad address", master(vref) + "vault: {address: vault:8200, auth: {method: token, token_env: VAULT_TOKEN}}\n",
			"config: vault.address: is not an http or https URL with a host (write e.g. https://vault.example.com:8200)"},
		{"unknown method", master(vref) + "vault: {address: 'https://v:8200', auth: {method: userpass}}\n",
			`config: vault.auth.method: "userpass" is not an auth method Sift supports (use token, approle, kubernetes or jwt)`},
		{"key of another method", master(vref) + "vault: {address: 'https://v:8200', auth: {method: token, token_env: T, role: sift}}\n",
			"config: vault.auth.role: is not used by method token (remove it; token takes token_file, token_env)"},
		{"token needs one source", master(vref) + "vault: {address: 'https://v:8200', auth: {method: token}}\n",
			"config: vault.auth: method token needs exactly one of token_file (e.g. a Vault Agent sink) and token_env"},
		{"approle role_id twice", master(vref) + "vault: {address: 'https://v:8200', auth: {method: approle, role_id: a, role_id_file: /b}}\n",
			"config: vault.auth: method approle needs exactly one of role_id and role_id_file"},
		{"wrapped without file", master(vref) + "vault: {address: 'https://v:8200', auth: {method: approle, role_id: a, secret_id_wrapped: true}}\n",
			"config: vault.auth.secret_id_wrapped: set but secret_id_file is not (point secret_id_file at the wrapping token)"},
		{"jwt without role", master(vref) + "vault: {address: 'https://v:8200', auth: {method: jwt, jwt_file: /t}}\n",
			"config: vault.auth.role: not set (name the Vault role of method jwt that Sift logs in as)"},
		{"probe allow entry", master("password: p") + "probes: {allow: ['https://vault.example.com/v1/sys', '*.example.com']}\n",
			`config: probes.allow[0]: "https://vault.example.com/v1/sys" is neither an origin nor a host suffix (write e.g. https://vault.example.com:8200 or .example.com)` + "\n" +
				`config: probes.allow[1]: "*.example.com" is neither an origin nor a host suffix (write e.g. https://vault.example.com:8200 or .example.com)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestVaultDefaults(t *testing.T) {
	c, err := Parse([]byte("masters:\n  - {name: eu, url: \"http://a:8000\", eauth: pam, username: u, password: p}\n"+
		"vault: {address: 'https://v:8200', auth: {method: kubernetes, role: sift}}\n"+
		"probes: {allow: ['https://v:8200', .example.com]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Vault
	if v.Auth.Mount != "kubernetes" || v.Auth.JWTFile != KubernetesTokenFile || v.RefreshInterval != 5*time.Minute || v.MaxStaleness != 24*time.Hour {
		t.Errorf("vault defaults = %+v", *v)
	}
	if !c.Probes.Enabled() || c.Probes.Timeout != 3*time.Second || c.Probes.MaxParallel != 4 {
		t.Errorf("probes = %+v", c.Probes)
	}
	if Default().Probes.Enabled() {
		t.Error("probes on by default")
	}
}

func TestCheckSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, filepath.Join(dir, "us.pw"), "file-pw\n", 0o600)
	yml := `masters:
  - {name: eu, url: "http://a:8000", eauth: pam, username: u, password_vault: {path: sift/salt-eu, field: password}}
  - {name: us, url: "http://b:8000", eauth: pam, username: u, password_file: ` + pw + `}
  - {name: ap, url: "http://c:8000", eauth: pam, username: u, password_vault: {path: sift/gone, field: pw}}
  - {name: cn, url: "http://d:8000", eauth: pam, username: u, password_vault: {path: sift/locked, field: pw}}
  - {name: sa, url: "http://e:8000", eauth: pam, username: u, password_vault: {path: sift/salt-eu, field: nope}}
` + vaultSection
	c, err := Parse([]byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	fv := &fakeVault{
		kv:   map[string]KV{"secret/sift/salt-eu": {Data: map[string]any{"password": "vault-eu-pw-1a2b"}, Version: 4}},
		errs: map[string]error{"secret/sift/locked": fmt.Errorf("vault: secret/sift/locked: %w", ErrVaultForbidden)},
	}
	got, err := c.CheckSecrets(context.Background(), fv)
	want := `Secrets (5):
  masters[0].password  vault secret/sift/salt-eu#password  found, version 4
  masters[1].password  file ` + pw + `  found
  masters[2].password  vault secret/sift/gone#pw  missing
  masters[3].password  vault secret/sift/locked#pw  forbidden
  masters[4].password  vault secret/sift/salt-eu#nope  field missing
`
	// tabwriter pads the columns; compare field by field.
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if norm(got) != norm(want) {
		t.Errorf("CheckSecrets:\n%s\nwant\n%s", got, want)
	}
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("error = %v, want the three failures", err)
	}
	if strings.Contains(got, "vault-eu-pw-1a2b") || strings.Contains(fmt.Sprint(err), "vault-eu-pw-1a2b") {
		t.Error("a value leaked")
	}
}

func TestCAFileNeverBlocks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	yml := "masters:\n  - {name: eu, url: \"https://a:8000\", eauth: pam, username: u, password: p, tls_ca_file: " + fifo + "}\n" +
		"vault: {address: 'https://v:8200', ca_file: " + fifo + ", auth: {method: token, token_env: T}}\n"
	done := make(chan error, 1)
	go func() {
		_, err := Parse([]byte(yml), nil)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Parse blocked on a FIFO")
	}
	for _, want := range []string{"masters[0].tls_ca_file: \"" + fifo + "\" is a named pipe (FIFO)", "vault.ca_file: \"" + fifo + "\" is a named pipe (FIFO)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse = %v, want %q", err, want)
		}
	}
}
