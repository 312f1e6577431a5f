package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
)

// lab is a set of fake masters and a configuration file pointing at them.
type lab struct {
	servers map[string]*fakesalt.Server
	config  string
}

const testPassword = "pw-3f9a0c1d-never-print-me"

// startLab starts one fake salt-api per master; dcs maps a datacenter to its
// master. Every datacenter is in group "all".
func startLab(t *testing.T, masters []*fakesalt.Master, dcs map[string]string) *lab {
	t.Helper()
	l := &lab{servers: map[string]*fakesalt.Server{}}
	var b strings.Builder
	b.WriteString("masters:\n")
	for _, m := range masters {
		m.Username, m.Password, m.Eauth = "sift", testPassword, "sharedsecret"
		srv := fakesalt.NewServer(m)
		t.Cleanup(srv.Close)
		l.servers[m.Name] = srv
		fmt.Fprintf(&b, "  - {name: %s, url: %q, eauth: sharedsecret, username: sift, password: %q}\n", m.Name, srv.URL(), testPassword)
	}
	b.WriteString("datacenters:\n")
	var names []string
	for dc, master := range dcs {
		fmt.Fprintf(&b, "  - {name: %s, master: %s}\n", dc, master)
		names = append(names, dc)
	}
	fmt.Fprintf(&b, "groups:\n  - {name: all, datacenters: [%s]}\n", strings.Join(names, ", "))
	b.WriteString("triage: {timeout: 1s, gather_job_timeout: 1s, poll_interval: 50ms}\n")
	l.config = filepath.Join(t.TempDir(), "sift.yml")
	if err := os.WriteFile(l.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

// minions scripts n minions of datacenter dc answering answer.
func minions(dc, role string, n int, answer json.RawMessage) []*fakesalt.Minion {
	out := make([]*fakesalt.Minion, n)
	for i := range out {
		out[i] = &fakesalt.Minion{
			ID: fmt.Sprintf("%s-%s-%03d", role, dc, i+1), Grains: map[string]string{"datacenter": dc},
			Answer: answer, Delay: time.Duration(i%5) * 20 * time.Millisecond,
		}
	}
	return out
}

func silent(dc string, n int) []*fakesalt.Minion {
	out := minions(dc, "down", n, nil)
	for _, m := range out {
		m.Unreachable = true
	}
	return out
}

func concat(parts ...[]*fakesalt.Minion) []*fakesalt.Minion {
	var out []*fakesalt.Minion
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

type result struct {
	code   int
	stdout string
	stderr string
}

func sift(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	if err != nil {
		errb.WriteString("sift: " + err.Error() + "\n")
	}
	r := result{code: 0, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.code = exitCode(err)
	}
	if strings.Contains(r.stdout+r.stderr, testPassword) {
		t.Errorf("the password leaked into sift's output:\n%s%s", r.stdout, r.stderr)
	}
	return r
}

type jsonReport struct {
	Headline string         `json:"headline"`
	Counts   map[string]int `json:"counts"`
	Causes   []struct {
		Kind    string `json:"kind"`
		Key     string `json:"key"`
		Minions int    `json:"minions"`
	} `json:"causes"`
	Datacenters []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"datacenters"`
}

func decodeReport(t *testing.T, s string) jsonReport {
	t.Helper()
	var r jsonReport
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, s)
	}
	return r
}

func TestTriageEachCauseKindWins(t *testing.T) {
	release := fakesalt.Release("2025.10.22-1", "2025.10.22-3")
	repeated := fakesalt.FailedState(fakesalt.Failure{
		States:  []fakesalt.State{{ID: "ntp", SLS: "base.ntp", Fun: "service.running", Comment: "Service ntpd failed to start after 3 attempts"}},
		Commits: []fakesalt.Commit{},
		// The same codebase version before and after: no release to blame.
		FailedJob: fakesalt.Job{CodebaseVersion: "2025.10.22-1"}, LastSuccessJob: fakesalt.Job{CodebaseVersion: "2025.10.22-1"},
	})
	tests := []struct {
		name     string
		fleet    []*fakesalt.Minion
		wantKind string
		wantKey  string
		wantN    int
		headline string
	}{
		{"commit", concat(minions("ams01", "web", 30, fakesalt.FailedState(fakesalt.Failure{})), minions("ams01", "db", 5, fakesalt.Healthy())),
			"commit", fakesalt.ExampleCommit.ID, 30, "commit e4a91b2 by John Doe explains 30 of 30 failing minions in 1 datacenter"},
		{"release", concat(minions("ams01", "app", 12, release), minions("ams01", "db", 3, fakesalt.Healthy())),
			"release", "2025.10.22-3", 12, "release 2025.10.22-3 explains 12 of 12 failing minions in 1 datacenter"},
		{"external service", minions("ams01", "web", 9, fakesalt.CompileError(fakesalt.Failure{Commits: []fakesalt.Commit{}})),
			"external_service", "https://vault.example.com:8200", 9, "external service https://vault.example.com:8200 explains 9 of 9 failing minions in 1 datacenter"},
		{"failed state", concat(minions("ams01", "ntp", 7, repeated), minions("ams01", "db", 2, fakesalt.Healthy())),
			"failed_state", "", 7, "failed state service.running ntp explains 7 of 7 failing minions in 1 datacenter"},
		{"unreachable", concat(silent("ams01", 6), minions("ams01", "db", 2, fakesalt.Healthy())),
			"unreachable", "unreachable", 6, "6 of 8 minions unreachable in 1 datacenter; no failing highstates among the others"},
		{"module missing", concat(minions("ams01", "app", 5, fakesalt.ModuleMissing()), minions("ams01", "db", 2, fakesalt.Healthy())),
			"module_missing", "module_missing", 5, "blame module missing on 5 of 7 minions in 1 datacenter; no failing highstates among the others"},
		{"blame error", minions("ams01", "app", 4, fakesalt.BlameFailed("cache unreadable: permission denied")),
			"blame_error", "blame_error", 4, "blame module errors on 4 of 4 minions in 1 datacenter; no failing highstates among the others"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: tc.fleet}}, map[string]string{"ams01": "salt-eu"})
			r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			rep := decodeReport(t, r.stdout)
			top := rep.Causes[0]
			if top.Kind != tc.wantKind || (tc.wantKey != "" && top.Key != tc.wantKey) || top.Minions != tc.wantN {
				t.Errorf("top cause = %+v, want %s %s %d", top, tc.wantKind, tc.wantKey, tc.wantN)
			}
			if rep.Headline != tc.headline {
				t.Errorf("headline = %q\nwant       %q", rep.Headline, tc.headline)
			}
		})
	}
}

func TestTriageGroupWithOneMasterDown(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 10, fakesalt.FailedState(fakesalt.Failure{}))},
		{Name: "salt-us", Minions: minions("lon03", "web", 10, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu", "lon03": "salt-us"})
	l.servers["salt-us"].Close()
	r := sift(t, "", "triage", "group", "all", "--config", l.config, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 for a partial report: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Counts["failing"] != 10 {
		t.Errorf("counts = %v", rep.Counts)
	}
	var lon string
	for _, dc := range rep.Datacenters {
		if dc.Name == "lon03" {
			lon = dc.Error
		}
	}
	if !strings.Contains(lon, "salt-us") || !strings.Contains(lon, "connection refused") {
		t.Errorf("lon03 error = %q, want the master and why", lon)
	}
	if !strings.Contains(r.stderr, "lon03 failed") {
		t.Errorf("progress does not say lon03 failed:\n%s", r.stderr)
	}
}

func TestTriageMasterErrors(t *testing.T) {
	tests := []struct {
		name   string
		master fakesalt.Master
		prep   func(*fakesalt.Server)
		want   []string
	}{
		{"bad password", fakesalt.Master{}, func(s *fakesalt.Server) {
			s.Update(func(m *fakesalt.Master) { m.Password = "changed" })
		}, []string{"401", "sift", "sharedsecret"}},
		{"client disabled", fakesalt.Master{DisabledClients: []string{"local_async"}}, nil, []string{"netapi_enable_clients", "local_async"}},
		{"internal error", fakesalt.Master{Down: true}, nil, []string{"500"}},
		{"malformed JSON", fakesalt.Master{Malformed: true}, nil, []string{"JSON"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tc.master
			m.Name = "salt-eu"
			m.Minions = minions("ams01", "web", 3, fakesalt.Healthy())
			l := startLab(t, []*fakesalt.Master{&m}, map[string]string{"ams01": "salt-eu"})
			if tc.prep != nil {
				tc.prep(l.servers["salt-eu"])
			}
			r := sift(t, "", "triage", "dc", "ams01", "--config", l.config)
			if r.code != 1 {
				t.Errorf("exit %d, want 1 when no master could be reached", r.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q:\n%s\n%s", w, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestTriageTokenExpiresMidTriage(t *testing.T) {
	fleet := minions("ams01", "web", 20, fakesalt.FailedState(fakesalt.Failure{}))
	for i, m := range fleet {
		m.Delay = 100*time.Millisecond + time.Duration(i)*15*time.Millisecond
	}
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: fleet}}, map[string]string{"ams01": "salt-eu"})
	srv := l.servers["salt-eu"]
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for srv.Polls() < 2 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		srv.ExpireTokens()
	}()
	r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json", "--quiet")
	close(stop)
	<-done
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Counts["failing"] != 20 || rep.Counts["unreachable"] != 0 {
		t.Errorf("minions lost across the re-login: %v", rep.Counts)
	}
	if got := srv.Logins(); got != 2 {
		t.Errorf("%d logins, want 2 (one re-login)", got)
	}
}

func TestTriageRefusesPatternsBeforeAnyCall(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: minions("ams01", "web", 2, fakesalt.Healthy())}}, map[string]string{"ams01": "salt-eu"})
	for _, id := range []string{"web-*", "a,b", "G@os:Debian", "web-[12]", "web 1"} {
		r := sift(t, "", "triage", "minion", id, "--config", l.config)
		if r.code != 2 || !strings.Contains(r.stderr, "letters, digits") {
			t.Errorf("minion %q: exit %d, stderr %q", id, r.code, r.stderr)
		}
	}
	if n := l.servers["salt-eu"].Requests(); n != 0 {
		t.Errorf("%d requests reached salt-api for refused ids", n)
	}
}

func TestTriageMinion(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 2, fakesalt.FailedState(fakesalt.Failure{}))},
		{Name: "salt-us", Minions: minions("lon03", "web", 2, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu", "lon03": "salt-us"})
	r := sift(t, "", "triage", "minion", "web-ams01-001", "--config", l.config, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Counts["failing"] != 1 || rep.Counts["expected"] != 1 || rep.Causes[0].Kind != "commit" {
		t.Errorf("report = %+v", rep)
	}
}

func TestTriageInputFromStdin(t *testing.T) {
	doc := fmt.Sprintf(`{"web-1": %s, "web-2": %s, "web-3": false}`, fakesalt.FailedState(fakesalt.Failure{}), fakesalt.Healthy())
	r := sift(t, doc, "triage", "dc", "ams01", "--input", "-", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Counts["failing"] != 1 || rep.Counts["healthy"] != 1 || rep.Counts["unreachable"] != 1 {
		t.Errorf("counts = %v", rep.Counts)
	}
	r = sift(t, "not json", "triage", "dc", "ams01", "--input", "-")
	if r.code != 2 || !strings.Contains(r.stderr, "-: input:") {
		t.Errorf("bad input: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"triage", "dc", "ams01"}, "no configuration: pass --config FILE"},
		{[]string{"triage", "dc", "ams01", "--config", "/nonexistent/sift.yml"}, "/nonexistent/sift.yml"},
		{[]string{"demo", "--format", "xml"}, `--format "xml": use text or json`},
		{[]string{"triage", "--input", "-", "region", "x"}, `unknown scope "region"`},
	}
	t.Setenv("SIFT_CONFIG", "")
	for _, tc := range tests {
		r := sift(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sift %v: exit %d, stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu"}}, map[string]string{"ams01": "salt-eu"})
	r := sift(t, "", "check-config", "--config", l.config)
	if r.code != 0 || !strings.Contains(r.stdout, "<secret>") || !strings.Contains(r.stdout, "configuration OK") {
		t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("masters: []\ndatacenters:\n  - {name: ams01, master: nowhere}\n"), 0o600)
	r = sift(t, "", "check-config", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "datacenters[0].master") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

func TestDemo(t *testing.T) {
	r := sift(t, "", "demo", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if !strings.HasPrefix(rep.Headline, "commit e4a91b2 by John Doe explains") || len(rep.Datacenters) != 3 {
		t.Errorf("demo report = %+v", rep)
	}
	if !strings.Contains(r.stderr, "fra02 done") {
		t.Errorf("no progress lines:\n%s", r.stderr)
	}
	// The incident holds a rollback, and a chain of requisite failures
	// folded into the state at its root.
	var doc struct {
		Causes []struct {
			Kind, Key, Summary string
			Minions            int
			Evidence           struct {
				Dependents     *int   `json:"dependents"`
				RolledBackFrom string `json:"rolled_back_from"`
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	var rollback, chain bool
	for _, c := range doc.Causes {
		switch {
		case c.Kind == "rollback":
			rollback = c.Minions == 14 && strings.HasPrefix(c.Key, "1a2b3c4") && strings.HasPrefix(c.Evidence.RolledBackFrom, "9f8e7d6") &&
				strings.HasPrefix(c.Summary, "rollback to 1a2b3c4 from 9f8e7d6, taking out 1 commit touching /srv/salt/app/files/config.yml.j2")
		case c.Kind == "failed_state" && strings.HasPrefix(c.Key, "pkg.installed postgres-pkg "):
			chain = c.Minions == 9 && c.Evidence.Dependents != nil && *c.Evidence.Dependents == 2 &&
				strings.HasSuffix(c.Summary, "also broke 2 dependent states")
		case c.Kind == "failed_state":
			t.Errorf("a failed state other than the chain's root is a cause: %s %s", c.Key, c.Summary)
		}
	}
	if !rollback || !chain {
		t.Errorf("demo: rollback shown %v, requisite chain shown %v:\n%s", rollback, chain, r.stdout)
	}
}
