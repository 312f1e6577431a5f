package config

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// envOf returns an env lookup over m, as os.LookupEnv would over the process.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// fullEnv is the environment valid-full.yml expects.
var fullEnv = map[string]string{
	"SALT_US_PASSWORD":     "env-salt-us-secret-a7b2",
	"SIFT_PIPELINE_SECRET": "env-pipeline-secret-e3f9",
}

// secretValues are the distinctive secrets used across the testdata and
// tests; none may ever appear in an error or a summary.
var secretValues = []string{
	"salt-eu-password-7c1f",
	"env-salt-us-secret-a7b2",
	"am-bearer-full-9d3e",
	"inline-salt-ap-secret-31f0",
	"full-app-secret-5e8a",
	"full-bot-secret-2c9d",
	"env-pipeline-secret-e3f9",
	"unknown-key-secret-88aa",
	"two-sources-secret-1b3c",
	"swapped-app-secret-6f1d",
	"swapped-bot-secret-0c4e",
	"url-secret-4d4d",
}

// TestMain makes the testdata secret files private, as they are in a real
// deployment: a checkout gives them the umask's mode, which would add a
// "readable by others" warning to every summary.
func TestMain(m *testing.M) {
	files, _ := filepath.Glob("testdata/*.password")
	tokens, _ := filepath.Glob("testdata/*.token")
	for _, f := range append(files, tokens...) {
		if err := os.Chmod(f, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// loadAll loads the file and resolves every secret, as check-config does.
func loadAll(path string, env func(string) (string, bool)) (*Config, error) {
	c, err := Load(path, env)
	if err != nil {
		return nil, err
	}
	return c, c.Resolve(context.Background(), nil)
}

// parseAll parses data and resolves every secret.
func parseAll(data []byte, env func(string) (string, bool)) (*Config, error) {
	c, err := Parse(data, env)
	if err != nil {
		return nil, err
	}
	return c, c.Resolve(context.Background(), nil)
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range append(secretValues, leakValues...) {
		if strings.Contains(text, s) {
			t.Errorf("%s leaks secret %q:\n%s", what, s, text)
		}
	}
}

// golden compares got with the file at path, or rewrites it under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test ./config -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("mismatch with %s\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d invalid-*.yml files, want at least 10", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := loadAll(file, envOf(nil))
			if err == nil {
				t.Fatalf("Load succeeded, want an error; summary:\n%s", c.Summary())
			}
			assertNoSecret(t, "error", err.Error())
			golden(t, strings.TrimSuffix(file, ".yml")+".err", err.Error()+"\n")
		})
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
	}{
		{"testdata/valid-minimal.yml", nil},
		{"testdata/valid-full.yml", fullEnv},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			c, err := loadAll(tc.file, envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			s := c.Summary()
			assertNoSecret(t, "summary", s)
			if !strings.Contains(s, "<secret>") {
				t.Errorf("summary shows no <secret> placeholder:\n%s", s)
			}
			golden(t, strings.TrimSuffix(tc.file, ".yml")+".summary", s)
		})
	}
}

func TestLoadMinimal(t *testing.T) {
	c, err := loadAll("testdata/valid-minimal.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Masters: []Master{{
			Name: "salt-eu", URL: "http://127.0.0.1:8000", Eauth: "sharedsecret",
			Username: "sift", Password: "salt-eu-password-7c1f",
		}},
		Datacenters: []Datacenter{
			{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01", Minions: []string{}},
			{Name: "fra02", Master: "salt-eu", Target: "G@datacenter:fra02"},
		},
		Groups: []Group{{Name: "europe", Datacenters: []string{"ams01", "fra02"}}},
		Triage: Triage{
			Timeout: 30 * time.Second, GatherJobTimeout: 10 * time.Second,
			MaxParallelDatacenters: 16, PollInterval: time.Second, Deadline: 55 * time.Second,
		},
		Log: Log{Level: "info", Format: "auto"},
	}
	// Compare the exported parts only; Secret prints <secret>, so compare
	// revealed values explicitly.
	got := *c
	got.overrides, got.secretFrom, got.reported, got.secrets, got.env = nil, nil, nil, nil, nil
	want.Probes = defaultProbes()
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
		t.Errorf("config:\n got %s\nwant %s", g, w)
	}
	if p := c.Masters[0].Password.Reveal(); p != "salt-eu-password-7c1f" {
		t.Errorf("password read from file = %q, want the file's content without its newline", p)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := loadAll("testdata/valid-full.yml", envOf(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"salt-eu password from file", c.Masters[0].Password.Reveal(), "salt-eu-password-7c1f"},
		{"salt-us password from env", c.Masters[1].Password.Reveal(), "env-salt-us-secret-a7b2"},
		{"salt-ap password inline", c.Masters[2].Password.Reveal(), "inline-salt-ap-secret-31f0"},
		{"tls_ca_file relative to the config", c.Masters[0].TLSCAFile, filepath.Join("testdata", "ca.pem")},
		{"insecure", c.Masters[2].TLSInsecureSkipVerify, true},
		{"explicit target", c.Datacenters[0].Target, "G@datacenter:ams01 and not G@role:lab"},
		{"default target", c.Datacenters[3].Target, "G@datacenter:sin.3"},
		{"inventory", c.Datacenters[0].Minions, []string{"web01.ams01", "web02.ams01", "db01.ams01"}},
		{"timeout", c.Triage.Timeout, 45 * time.Second},
		{"poll", c.Triage.PollInterval, 500 * time.Millisecond},
		{"deadline", c.Triage.Deadline, 2 * time.Minute},
		{"parallel", c.Triage.MaxParallelDatacenters, 32},
		{"app token, newline trimmed", c.Slack.AppToken.Reveal(), "xapp-1-A0FULLAPP-full-app-secret-5e8a"},
		{"bot token, CRLF trimmed", c.Slack.BotToken.Reveal(), "xoxb-0000-full-bot-secret-2c9d"},
		{"api url", c.Slack.APIURL, "https://slack-gov.com/api/"},
		{"commands", c.Slack.Commands, Commands{Minion: "/sift-minion", Datacenter: "/sift-dc", Group: "/sift-group"}},
		{"authz group", c.Slack.Authz.Group, Access{Users: []string{"U123", "W0GRID"}, Usergroups: []string{"S0SRE"}}},
		{"authz minion open", c.Slack.Authz.Minion.Open(), true},
		{"audit log", c.Slack.AuditLog, "/var/log/sift/audit.log"},
		{"progress", c.Slack.ProgressInterval, 2 * time.Second},
		{"halts active", c.Halts.Active(), true},
		{"rules", len(c.Halts.Rules), 2},
		{"rule kind", c.Halts.Rules[1].ScopeKind, "group"},
		{"alertmanager label", c.Halts.Alertmanager.ScopeLabel, "dc"},
		{"alertmanager token from file", c.Halts.Alertmanager.BearerToken.Reveal(), "am-bearer-full-9d3e"},
		{"pipeline secret", c.Halts.Pipeline.Secret.Reveal(), "env-pipeline-secret-e3f9"},
		{"pipeline skew", c.Halts.Pipeline.MaxSkew, 2 * time.Minute},
		{"metrics", c.Metrics.Listen, "127.0.0.1:9184"},
		{"log", c.Log, Log{Level: "debug", Format: "json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g, w := fmt.Sprintf("%#v", tc.got), fmt.Sprintf("%#v", tc.want); g != w {
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}
}

// minimal is a valid file for tests that change one thing.
const minimal = `
masters:
  - name: salt-eu
    url: http://127.0.0.1:8000
    eauth: pam
    username: sift
    password: pw
datacenters:
  - name: ams01
    master: salt-eu
`

func TestDefaults(t *testing.T) {
	c, err := parseAll([]byte(minimal+"slack: {app_token: xapp-1, bot_token: xoxb-1}\nhalts: {}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"triage.timeout", c.Triage.Timeout, 30 * time.Second},
		{"triage.gather_job_timeout", c.Triage.GatherJobTimeout, 10 * time.Second},
		{"triage.max_parallel_datacenters", c.Triage.MaxParallelDatacenters, 16},
		{"triage.poll_interval", c.Triage.PollInterval, time.Second},
		{"triage.deadline", c.Triage.Deadline, 55 * time.Second},
		{"datacenter target", c.Datacenters[0].Target, "G@datacenter:ams01"},
		{"slack.api_url", c.Slack.APIURL, "https://slack.com/api/"},
		{"slack.commands", c.Slack.Commands, Commands{Minion: "/blame-minion", Datacenter: "/blame-dc", Group: "/blame-group"}},
		{"slack.audit_log", c.Slack.AuditLog, "stdout"},
		{"slack.shutdown_grace", c.Slack.ShutdownGrace, 30 * time.Second},
		{"slack.progress_interval", c.Slack.ProgressInterval, time.Second},
		{"halts.store", c.Halts.Store, "sift.db"},
		{"halts.still_failing_interval", c.Halts.StillFailingInterval, 30 * time.Minute},
		{"halts.active", c.Halts.Active(), false},
		{"metrics.listen", c.Metrics.Listen, ""},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "auto"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g, w := fmt.Sprintf("%#v", tc.got), fmt.Sprintf("%#v", tc.want); g != w {
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}

	c, err = parseAll([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Slack != nil || c.Halts != nil {
		t.Errorf("absent sections: slack %v, halts %v, want both nil", c.Slack, c.Halts)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name  string
		extra string // appended to minimal
		env   map[string]string
		check func(*Config) (got, want any)
	}{
		{"timeout", "", map[string]string{"SIFT_TRIAGE_TIMEOUT": "1m"},
			func(c *Config) (any, any) { return c.Triage.Timeout, time.Minute }},
		{"deadline follows overridden timeouts", "",
			map[string]string{"SIFT_TRIAGE_TIMEOUT": "1m", "SIFT_TRIAGE_GATHER_JOB_TIMEOUT": "20s"},
			func(c *Config) (any, any) { return c.Triage.Deadline, 95 * time.Second }},
		{"env beats file", "triage: {max_parallel_datacenters: 8}\n",
			map[string]string{"SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS": "64"},
			func(c *Config) (any, any) { return c.Triage.MaxParallelDatacenters, 64 }},
		{"empty variable counts as unset", "log: {level: warn}\n",
			map[string]string{"SIFT_LOG_LEVEL": ""},
			func(c *Config) (any, any) { return c.Log.Level, "warn" }},
		{"log", "", map[string]string{"SIFT_LOG_LEVEL": "debug", "SIFT_LOG_FORMAT": "json"},
			func(c *Config) (any, any) { return c.Log, Log{Level: "debug", Format: "json"} }},
		{"metrics", "", map[string]string{"SIFT_METRICS_LISTEN": ":9184"},
			func(c *Config) (any, any) { return c.Metrics.Listen, ":9184" }},
		{"halts.listen defaults to overridden metrics.listen", "halts: {}\n",
			map[string]string{"SIFT_METRICS_LISTEN": ":9184"},
			func(c *Config) (any, any) { return c.Halts.Listen, ":9184" }},
		{"master password", "", map[string]string{"SIFT_MASTER_SALT_EU_PASSWORD": "from-env"},
			func(c *Config) (any, any) { return c.Masters[0].Password.Reveal(), "from-env" }},
		{"slack tokens and url", "slack: {app_token: xapp-file, bot_token: xoxb-file}\n",
			map[string]string{"SIFT_SLACK_APP_TOKEN": "xapp-env", "SIFT_SLACK_BOT_TOKEN": "xoxb-env", "SIFT_SLACK_API_URL": "https://slack-gov.com/api/"},
			func(c *Config) (any, any) {
				return []string{c.Slack.AppToken.Reveal(), c.Slack.BotToken.Reveal(), c.Slack.APIURL},
					[]string{"xapp-env", "xoxb-env", "https://slack-gov.com/api/"}
			}},
		{"slack tokens alone create the section", "",
			map[string]string{"SIFT_SLACK_APP_TOKEN": "xapp-env", "SIFT_SLACK_BOT_TOKEN": "xoxb-env"},
			func(c *Config) (any, any) { return c.Slack.Commands.Datacenter, "/blame-dc" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseAll([]byte(minimal+tc.extra), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			got, want := tc.check(c)
			if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
				t.Errorf("got %s, want %s", g, w)
			}
			for name := range tc.env {
				if tc.env[name] != "" && !strings.Contains(c.Summary(), name) {
					t.Errorf("summary does not list %s as in effect", name)
				}
			}
		})
	}
}

func TestEnvOverrideErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad duration", map[string]string{"SIFT_TRIAGE_TIMEOUT": "3x"},
			`config: SIFT_TRIAGE_TIMEOUT: "3x" is not a duration (use e.g. 30s or 2m)`},
		{"not a number", map[string]string{"SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS": "many"},
			`config: SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS: "many" is not a whole number (use e.g. 16)`},
		{"out of range", map[string]string{"SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS": "0"},
			`config: triage.max_parallel_datacenters (from SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS): 0 is out of range (use 1 to 1024)`},
		{"log level", map[string]string{"SIFT_LOG_LEVEL": "loud"},
			`config: log.level (from SIFT_LOG_LEVEL): "loud" is not a log level (use one of trace, debug, info, warn, error, fatal, panic)`},
		{"log format", map[string]string{"SIFT_LOG_FORMAT": "xml"},
			`config: log.format (from SIFT_LOG_FORMAT): "xml" is not a log format (use auto, json or text)`},
		{"metrics listen", map[string]string{"SIFT_METRICS_LISTEN": "9184"},
			`config: metrics.listen (from SIFT_METRICS_LISTEN): "9184" is not host:port (write host:port, e.g. 127.0.0.1:9184, or leave it empty to turn metrics off)`},
		{"slack url", map[string]string{"SIFT_SLACK_API_URL": "slack.com", "SIFT_SLACK_APP_TOKEN": "xapp-1", "SIFT_SLACK_BOT_TOKEN": "xoxb-1"},
			`config: slack.api_url (from SIFT_SLACK_API_URL): "slack.com" is not an http or https URL ending in "/" (use https://slack.com/api/, or https://slack-gov.com/api/ for GovSlack)`},
		{"app token prefix, value hidden", map[string]string{"SIFT_SLACK_APP_TOKEN": "leaky-env-app-token-77", "SIFT_SLACK_BOT_TOKEN": "xoxb-1"},
			`config: slack.app_token (from SIFT_SLACK_APP_TOKEN): does not start with "xapp-" (use the app-level token, xapp-…, from the app's Basic Information → App-Level Tokens, with connections:write)`},
		{"only one token in env", map[string]string{"SIFT_SLACK_BOT_TOKEN": "xoxb-1"},
			`config: slack.app_token: not set (set one of app_token, app_token_file, app_token_env or app_token_vault, or export SIFT_SLACK_APP_TOKEN, to the app-level token, xapp-…, from the app's Basic Information → App-Level Tokens, with connections:write)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAll([]byte(minimal), envOf(tc.env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// leakValues are secrets only TestSecretsNeverInErrors uses.
var leakValues = []string{"LEAK-A1", "LEAK-B2", "LEAK-C3", "LEAK-D4", "LEAK-E5", "LEAK-F6", "LEAK-G7", "LEAK-H8"}

func TestSecretsNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	badApp := filepath.Join(dir, "app.token")
	if err := os.WriteFile(badApp, []byte("xoxp-LEAK-C3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	master := func(extra string) string {
		return "masters:\n  - name: salt-eu\n    url: http://127.0.0.1:8000\n    eauth: pam\n    username: sift\n" + extra
	}
	tests := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{"misspelt secret key", master("    pasword: LEAK-A1\n"), nil},
		{"two sources", master("    password: LEAK-B2\n    password_env: PW\n"), map[string]string{"PW": "LEAK-D4"}},
		{"secret of the wrong shape", master("    password: [LEAK-A1]\n"), nil},
		{"token prefixes", master("    password: pw\n") + "slack: {app_token: LEAK-A1, bot_token: xoxp-LEAK-B2}\n", nil},
		{"token from file", master("    password: pw\n") + "slack: {app_token_file: " + badApp + ", bot_token: xapp-LEAK-D4}\n", nil},
		{"credentials in url", strings.Replace(master("    password: pw\n"), "http://", "https://u:LEAK-E5@", 1), nil},
		{"env override with other problems", master("") + "datacenters: [{name: x, master: nope}]\n",
			map[string]string{"SIFT_MASTER_SALT_EU_PASSWORD": "LEAK-F6", "SIFT_SLACK_APP_TOKEN": "LEAK-G7"}},
		{"pipeline secret twice", master("    password: pw\n") +
			"halts: {channel: C1, listen: ':1', pipeline: {enabled: true, secret: LEAK-H8, secret_env: S}}\n",
			map[string]string{"S": "LEAK-A1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAll([]byte(tc.yaml), envOf(tc.env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			assertNoSecret(t, "error", err.Error())
			assertNoSecret(t, "error %+v", fmt.Sprintf("%+v", err))
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := loadAll("testdata/valid-full.yml", envOf(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	var j strings.Builder
	enc := json.NewEncoder(&j)
	enc.SetEscapeHTML(false) // so the test can look for "<secret>" verbatim
	if err := enc.Encode(c); err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s := Secret("plain-secret-value-42")
	tests := []struct{ name, text string }{
		{"%v", fmt.Sprintf("%v", c)},
		{"%+v", fmt.Sprintf("%+v", *c)},
		{"%#v", fmt.Sprintf("%#v", *c)},
		{"%s secret", fmt.Sprintf("%s", s)},
		{"%q secret", fmt.Sprintf("%q", s)},
		{"%x secret", fmt.Sprintf("%x", s)},
		{"%#v secret", fmt.Sprintf("%#v", s)},
		{"%d secret", fmt.Sprintf("%d", s)},
		{"Sprint secret", fmt.Sprint(s)},
		{"json", j.String()},
		{"yaml", string(y)},
		{"summary", c.Summary()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertNoSecret(t, tc.name, tc.text)
			if strings.Contains(tc.text, "plain-secret-value-42") || strings.Contains(tc.text, fmt.Sprintf("%x", "plain-secret-value-42")) {
				t.Errorf("%s leaks the secret: %s", tc.name, tc.text)
			}
			if !strings.Contains(tc.text, "<secret>") {
				t.Errorf("%s shows no <secret> placeholder: %s", tc.name, tc.text)
			}
		})
	}
	if s.Reveal() != "plain-secret-value-42" {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}

func TestErrorsWrap(t *testing.T) {
	_, err := parseAll([]byte(strings.Replace(minimal, "password: pw", "password_file: /nonexistent/sift/pw", 1)), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	_, err = Load("testdata/no-such-config.yml", nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"syntax", "masters: [\n", "config: yaml: line 1: did not find expected node content"},
		{"not a mapping", "- a\n- b\n", "config: the file: line 1: expected a mapping of keys, found a list (write key: value pairs under it)"},
		{"deadline shorter than timeout", minimal + "triage: {timeout: 30s, deadline: 10s}\n",
			"config: triage.deadline: 10s is shorter than triage.timeout 30s (raise it, or use 0 for timeout + gather_job_timeout + 15s)"},
		{"env-colliding master names", strings.Replace(minimal, "masters:\n", "masters:\n  - {name: salt_eu, url: 'http://a', eauth: pam, username: u, password: p}\n", 1),
			`config: masters[1].name: "salt-eu" and masters[0] share the override variable SIFT_MASTER_SALT_EU_PASSWORD (rename one)`},
		{"tls_ca_file with http", strings.Replace(minimal, "password: pw", "password: pw\n    tls_ca_file: testdata/ca.pem", 1),
			"config: masters[0].tls_ca_file: set but url is http (use an https url, or remove tls_ca_file)"},
		{"halts without slack", minimal + "halts: {channel: C0INC, listen: ':9185', alertmanager: {enabled: true, insecure_no_auth: true}}\n",
			"config: halts: halt sources are configured but there is no slack section (add one: halts are posted to Slack)"},
		{"webhooks without listener", minimal + "slack: {app_token: xapp-1, bot_token: xoxb-1}\nhalts: {channel: C0INC, alertmanager: {enabled: true, insecure_no_auth: true}}\n",
			"config: halts.listen: not set (alertmanager or pipeline is enabled: set halts.listen or metrics.listen, e.g. 127.0.0.1:9185)"},
		{"empty secret file", strings.Replace(minimal, "password: pw", "password_file: testdata/empty.password", 1),
			`config: masters[0].password_file: "testdata/empty.password" is empty (write the secret into it)`},
		{"unknown key in a merged mapping", "masters:\n  - <<: {eauth: pam, usrname: sift}\n    name: a\n",
			`config: line 2: unknown key "usrname" in a mapping merged with <<: (check its spelling)`},
		{"minion id too long", minimal + "    minions: [" + strings.Repeat("a", 256) + "]\n",
			`config: datacenters[0].minions[0]: "` + strings.Repeat("a", 80) + `…" is not a minion id (use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 255 characters)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAll([]byte(tc.yaml), nil)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	// Operators share master settings with YAML anchors and merge keys;
	// the strict checks must not call "<<" an unknown key.
	c, err := parseAll([]byte(`
masters:
  - &common {name: salt-eu, url: "http://a:8000", eauth: pam, username: sift, password: pw}
  - <<: *common
    name: salt-us
    url: http://b:8000
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Master("salt-us"); m.Eauth != "pam" || m.URL != "http://b:8000" {
		t.Errorf("merged master = %+v", *m)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	c.Masters = []Master{{Name: "m", URL: "https://m", Eauth: "pam", Username: "u", Password: "p"}}
	c.Datacenters = []Datacenter{{Name: "dc1", Master: "m", Target: "G@dc:1"}}
	c.Triage.Deadline = time.Minute
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Datacenters[0].Target = ""
	c.Triage.Deadline = 0
	want := "config: datacenters[0].target: empty (write a compound target, or remove the key for G@datacenter:<name>)\n" +
		"config: triage.deadline: 0s is not more than 0 (use e.g. 1m; in the file, 0 means timeout + gather_job_timeout + 15s)"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n got %v\nwant %s", err, want)
	}
	if s := c.Summary(); !strings.Contains(s, "none in effect") {
		t.Errorf("summary of a Config built in code:\n%s", s)
	}
}

func TestLookups(t *testing.T) {
	c, err := loadAll("testdata/valid-full.yml", envOf(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := c.Master("salt-us"); !ok || m.URL != "http://10.1.0.5:8000" {
		t.Errorf("Master(salt-us) = %v, %v", m, ok)
	}
	if _, ok := c.Master("salt-mars"); ok {
		t.Error("Master(salt-mars) found")
	}
	if dc, ok := c.Datacenter("iad1"); !ok || dc.Master != "salt-us" {
		t.Errorf("Datacenter(iad1) = %v, %v", dc, ok)
	}
	if _, ok := c.Datacenter("AMS01"); ok {
		t.Error("Datacenter is case-insensitive; names are compared verbatim")
	}
	if g, ok := c.Group("world"); !ok || len(g.Datacenters) != 3 {
		t.Errorf("Group(world) = %v, %v", g, ok)
	}
	if got, want := c.DatacenterNames(), []string{"ams01", "fra02", "iad1", "sin.3"}; !slices.Equal(got, want) {
		t.Errorf("DatacenterNames() = %v, want %v", got, want)
	}
	if got, want := c.GroupNames(), []string{"europe", "world"}; !slices.Equal(got, want) {
		t.Errorf("GroupNames() = %v, want %v", got, want)
	}
	if got, want := c.MasterNames(), []string{"salt-ap", "salt-eu", "salt-us"}; !slices.Equal(got, want) {
		t.Errorf("MasterNames() = %v, want %v", got, want)
	}
}

func TestMasterPasswordEnv(t *testing.T) {
	tests := []struct{ name, want string }{
		{"salt-eu", "SIFT_MASTER_SALT_EU_PASSWORD"},
		{"Salt_US2", "SIFT_MASTER_SALT_US2_PASSWORD"},
	}
	for _, tc := range tests {
		if got := MasterPasswordEnv(tc.name); got != tc.want {
			t.Errorf("MasterPasswordEnv(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
