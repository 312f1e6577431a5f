package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/probes"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/triage"
)

// labWith is a lab whose configuration is extra appended to the lab's,
// with the master's inline password replaced by pw (a password_* line).
func labWith(t *testing.T, pw, extra string) *lab {
	t.Helper()
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: minions("ams01", "web", 3, fakesalt.Healthy())}},
		map[string]string{"ams01": "salt-eu"})
	data, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), `password: "`+testPassword+`"`, pw, 1)
	if err := os.WriteFile(l.config, []byte(s+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTriageReadsOnlyTheSecretsItUses(t *testing.T) {
	// The Slack section names a token file that does not exist and a
	// variable that is not set: serve would need them, triage does not.
	l := labWith(t, `password: "`+testPassword+`"`,
		"slack: {app_token_file: /nonexistent/sift/app.token, bot_token_env: SIFT_TEST_NEVER_SET_BOT}\n")
	r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
	if r.code != 0 {
		t.Fatalf("triage with unreadable Slack tokens: exit %d: %s", r.code, r.stderr)
	}
	r = sift(t, "", "check-config", "--config", l.config)
	if r.code != 2 || !strings.Contains(r.stderr, "slack.app_token_file: open /nonexistent/sift/app.token") ||
		!regexp.MustCompile(`slack.app_token +file /nonexistent/sift/app.token +unreadable`).MatchString(r.stdout) {
		t.Errorf("check-config reads every secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestMasterPasswordOverrideBeatsMissingFile(t *testing.T) {
	l := labWith(t, "password_file: /nonexistent/sift/salt-eu.password", "")
	r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "masters[0].password_file: open /nonexistent/sift/salt-eu.password") {
		t.Errorf("without the override: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("SIFT_MASTER_SALT_EU_PASSWORD", testPassword)
	r = sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
	if r.code != 0 {
		t.Fatalf("with SIFT_MASTER_SALT_EU_PASSWORD: exit %d: %s", r.code, r.stderr)
	}
	r = sift(t, "", "check-config", "--config", l.config)
	if r.code != 0 || !strings.Contains(r.stdout, "env SIFT_MASTER_SALT_EU_PASSWORD (override)") {
		t.Errorf("check-config with the override: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCheckConfigRefusesUnsafeSecretFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pw.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.password")
	if err := os.WriteFile(big, make([]byte, config.MaxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.password")
	if err := os.WriteFile(open, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		code       int
		want       string
	}{
		{"FIFO", fifo, 2, "is a named pipe (FIFO), not a regular file"},
		{"device", "/dev/zero", 2, `"/dev/zero" is a character device, not a regular file`},
		{"too big", big, 2, "more than the 65536 a secret file may hold"},
		{"readable by others", open, 0, "Warning: masters[0].password_file: " + open + " is readable by its group or others (mode 0644; chmod 600 it)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := labWith(t, "password_file: "+tc.file, "")
			r := sift(t, "", "check-config", "--config", l.config)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q:\n%s%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

func TestRotatedPasswordReadOnceOn401(t *testing.T) {
	m := &fakesalt.Master{Name: "salt-eu", Minions: minions("ams01", "web", 2, fakesalt.Healthy())}
	l := startLab(t, []*fakesalt.Master{m}, map[string]string{"ams01": "salt-eu"})
	srv := l.servers["salt-eu"]
	pwFile := filepath.Join(t.TempDir(), "salt-eu.password")
	if err := os.WriteFile(pwFile, []byte("old-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Update(func(m *fakesalt.Master) { m.Password = "old-password-1" })
	data, _ := os.ReadFile(l.config)
	cfgText := strings.Replace(string(data), `password: "`+testPassword+`"`, "password_file: "+pwFile, 1)
	c, err := config.Parse([]byte(cfgText), nil)
	if err != nil {
		t.Fatal(err)
	}
	reads := &countingResolver{c: c}
	store := secretstore.New(reads, secretstore.Options{})
	blamers, err := blamersOf(c, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := triage.New(inventoryOf(c), blamers, triageOptions(c, nil))
	ctx := context.Background()
	scope := triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}
	if rep, err := tr.Triage(ctx, scope); err != nil || !rep.Reached() {
		t.Fatalf("first triage: %v", err)
	}

	// The password is rotated on the master and in the file; the client's
	// token expires, its next login is refused with the old password, and
	// the store reads the file once more before anything is reported.
	srv.Update(func(m *fakesalt.Master) { m.Password = "new-password-2" })
	if err := os.WriteFile(pwFile, []byte("new-password-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	before := reads.n.Load()
	rep, err := tr.Triage(ctx, scope)
	if err != nil || !rep.Reached() || rep.Datacenters[0].Error != "" {
		t.Fatalf("triage after rotation: %v %+v", err, rep.Datacenters)
	}
	if n := reads.n.Load() - before; n != 1 {
		t.Errorf("the password was read %d times after the refusal, want once", n)
	}

	// A password that is simply wrong is reported after one re-read.
	srv.Update(func(m *fakesalt.Master) { m.Password = "third-password-3" })
	srv.ExpireTokens()
	before = reads.n.Load()
	rep, _ = tr.Triage(ctx, scope)
	if rep == nil || !strings.Contains(rep.Datacenters[0].Error, "refused the credentials") {
		t.Errorf("wrong password: %+v", rep)
	}
	if n := reads.n.Load() - before; n != 1 {
		t.Errorf("an unchanged wrong password was read %d times, want once before the refusal is reported", n)
	}
}

// countingResolver counts the reads of secrets.
type countingResolver struct {
	c *config.Config
	n atomic.Int32
}

func (r *countingResolver) ResolveSecret(ctx context.Context, key string, v config.VaultReader) (config.Resolved, error) {
	r.n.Add(1)
	return r.c.ResolveSecret(ctx, key, v)
}

func TestProbeCausesOnlyAllowedOrigins(t *testing.T) {
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sys/health" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer vault.Close()
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { otherHits.Add(1) }))
	defer other.Close()
	p := probes.New(config.Probes{Allow: []string{vault.URL}, Timeout: 5 * time.Second, MaxParallel: 2, CacheFor: time.Minute}, probes.Options{})
	rep := &triage.Report{Causes: []triage.Cause{
		{Kind: triage.CauseExternalService, Key: vault.URL, Evidence: triage.Evidence{ServiceURL: vault.URL,
			Messages: []string{"Error: pillar: " + vault.URL + "/v1/secret/data/salt: connection refused"}}},
		{Kind: triage.CauseExternalService, Key: other.URL, Evidence: triage.Evidence{ServiceURL: other.URL}},
		{Kind: triage.CauseCommit, Key: "abc"},
	}}
	probeCauses(context.Background(), p, rep)
	if got, want := rep.Causes[0].Evidence.Probe, "Vault at "+vault.URL+" answers 503: sealed (probed from Sift's host)"; got != want {
		t.Errorf("probe = %q, want %q", got, want)
	}
	if rep.Causes[1].Evidence.Probe != "" || otherHits.Load() != 0 {
		t.Errorf("an origin outside probes.allow was probed: %q, %d hits", rep.Causes[1].Evidence.Probe, otherHits.Load())
	}
}
