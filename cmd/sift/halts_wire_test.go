package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/halts/webhook"
)

const (
	testHaltSecret = "hmac-7d1e-never-print-me"
	testAMToken    = "am-bearer-4c1d-never-print-me"
)

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// withHalts appends halts and metrics sections to the lab's configuration.
func withHalts(t *testing.T, l *lab, store, listen string) {
	t.Helper()
	f, err := os.OpenFile(l.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, `halts:
  channel: C0INCIDENT
  store: %q
  still_failing_interval: 1h
  alertmanager: {enabled: true, scope_label: datacenter, scope_kind: datacenter, bearer_token: %q}
  pipeline: {enabled: true, secret: %q, max_skew: 1m}
metrics:
  listen: %q
`, store, testAMToken, testHaltSecret, listen)
}

// signedPost sends a pipeline notice to the halt webhook.
func signedPost(t *testing.T, base, body, delivery string) (int, string) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, base+webhook.PipelinePath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderDelivery, delivery)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(testHaltSecret), ts, delivery, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeHaltsMetricsAndHistory(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: concat(
		minions("ams01", "web", 5, fakesalt.FailedState(fakesalt.Failure{})),
		minions("ams01", "db", 3, fakesalt.Healthy()),
	)}}, map[string]string{"ams01": "salt-eu"})
	fs := fakeslack.New(fakeslack.Options{AppToken: testAppToken, BotToken: testBotToken, PingInterval: 100 * time.Millisecond})
	defer fs.Close()
	withSlack(t, l, fs.APIURL(), testAppToken, "stdout")
	addr := freeAddr(t)
	withHalts(t, l, t.TempDir()+"/sift.db", addr)
	base := "http://" + addr

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"serve", "--config", l.config}, strings.NewReader(""), &stdout, &stderr)
	}()
	if err := fs.Wait(ctx, func() bool { return fs.Connected() == 1 }); err != nil {
		stop()
		t.Fatalf("no connection: %v (run: %v)", err, <-done)
	}
	// Ready once connected to Slack; the listener may start a moment later.
	for {
		if code, _ := get(t, base+"/readyz"); code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("/readyz never answered 200")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}

	firing := `{"id":"rel-2025.10.22-ams01","scope":"dc ams01","name":"release 2025.10.22","reason":"Salt failures above 20%","status":"firing"}`
	if code, answer := signedPost(t, base, firing, "delivery-0001"); code != http.StatusOK {
		t.Fatalf("firing: %d %s", code, answer)
	}
	if code, _ := signedPost(t, base, firing, "delivery-0002"); code != http.StatusOK {
		t.Fatalf("duplicate firing: %d", code)
	}
	topLevel := func() []fakeslack.Message {
		var out []fakeslack.Message
		for _, m := range fs.Messages("C0INCIDENT") {
			if (m.ThreadTS == "" || m.ThreadTS == m.TS) && strings.Contains(string(m.Blocks), "release 2025.10.22") {
				out = append(out, m)
			}
		}
		return out
	}
	if err := fs.Wait(ctx, func() bool { return len(topLevel()) > 0 }); err != nil {
		t.Fatalf("no halt post: %v\n%s", err, stderr.String())
	}
	resolvedBody := strings.Replace(firing, `"firing"`, `"resolved"`, 1)
	if code, answer := signedPost(t, base, resolvedBody, "delivery-0003"); code != http.StatusOK {
		t.Fatalf("resolved: %d %s", code, answer)
	}
	post := topLevel()[0]
	if err := fs.Wait(ctx, func() bool {
		m, ok := fs.Message("C0INCIDENT", post.TS)
		return ok && strings.Contains(string(m.Blocks), "Resolved: ")
	}); err != nil {
		t.Fatalf("no resolved edit: %v", err)
	}
	if n := len(topLevel()); n != 1 {
		t.Errorf("%d top-level posts of the halt, want 1", n)
	}

	// The Alertmanager hook wants the configured token (the alert has no
	// scope: it is skipped, and nothing else changes).
	am := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"NoScope"},"startsAt":"2025-10-22T10:00:00Z","fingerprint":"00000000000000aa"}]}`
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"Bearer " + testAMToken, http.StatusOK}} {
		req, err := http.NewRequest(http.MethodPost, base+webhook.AlertmanagerPath, strings.NewReader(am))
		if err != nil {
			t.Fatal(err)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Alertmanager hook with %q: %d, want %d", strings.Fields(tc.auth + " none")[0], resp.StatusCode, tc.want)
		}
	}

	_, metricsText := get(t, base+"/metrics")
	for _, want := range []string{
		`sift_halt_notifications_total{source="pipeline",status="firing"} 2`,
		`sift_halt_notifications_total{source="pipeline",status="resolved"} 1`,
		`sift_triages_total{outcome="ok",scope_kind="datacenter"} 1`,
		`sift_halts_firing{source="pipeline"} 0`,
		`sift_halts_suppressed_total 0`,
		`sift_webhook_rejections_total{hook="alertmanager",reason="missing_credentials"} 1`,
		`sift_webhook_rejections_total{hook="alertmanager",reason="bad_credentials"} 1`,
		`sift_webhook_refusal_logs_dropped_total 0`,
		`sift_salt_api_requests_total{code="200",master="salt-eu"}`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve = %v\n%s", err, stderr.String())
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "metrics": metricsText} {
		for _, secret := range []string{testAppToken, testBotToken, testPassword, testHaltSecret, testAMToken} {
			if strings.Contains(out, secret) {
				t.Errorf("%s holds a secret", name)
			}
		}
	}

	r := sift(t, "", "history", "--config", l.config, "--format", "json", "-n", "5")
	if r.code != 0 {
		t.Fatalf("history: exit %d\n%s", r.code, r.stderr)
	}
	var entries []struct {
		Origin   string
		Outcome  string
		Halt     string
		Scope    struct{ Kind, Name string }
		TopCause *struct{ Kind string } `json:"top_cause"`
		Counts   struct{ Failing, Expected int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("history JSON %q: %v", r.stdout, err)
	}
	if len(entries) != 1 || entries[0].Origin != "halt" || entries[0].Halt == "" || entries[0].Scope.Name != "ams01" ||
		entries[0].Counts.Failing != 5 || entries[0].Counts.Expected != 8 || entries[0].TopCause == nil {
		t.Errorf("history = %+v", entries)
	}
	r = sift(t, "", "history", "--config", l.config)
	if r.code != 0 || !strings.Contains(r.stdout, "TIME (UTC)") || !strings.Contains(r.stdout, "datacenter ams01") || !strings.Contains(r.stdout, "5/8") {
		t.Errorf("history text: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestHistoryErrors(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu"}}, map[string]string{"ams01": "salt-eu"})
	tests := []struct {
		name  string
		args  []string
		halts bool
		code  int
		want  string
	}{
		{"no halts section", nil, false, exitUsage, "no halts section"},
		{"bad -n", []string{"-n", "0"}, true, exitUsage, "-n 0: use 1 to 10000"},
		{"bad format", []string{"--format", "yaml"}, true, exitUsage, `--format "yaml": use text or json`},
		{"no store yet", nil, true, exitFailure, "no store there yet"},
		{"no such directory", nil, true, exitFailure, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := l.config
			if tc.halts {
				b, err := os.ReadFile(l.config)
				if err != nil {
					t.Fatal(err)
				}
				cfg = t.TempDir() + "/sift.yml"
				store := t.TempDir() + "/missing.db"
				if tc.name == "no such directory" {
					store = t.TempDir() + "/gone/sift.db"
				}
				extra := fmt.Sprintf("halts:\n  store: %q\n", store)
				if err := os.WriteFile(cfg, append(b, extra...), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := sift(t, "", append([]string{"history", "--config", cfg}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}
