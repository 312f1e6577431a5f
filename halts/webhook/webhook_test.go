package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/halts/webhook"
	"github.com/sift-chatops/sift/triage"
)

const testSecret = "s3cr3t-shared-with-the-pipeline"

// countingObserver counts what the service and the hooks report.
type countingObserver struct {
	mu         sync.Mutex
	notices    map[string]int
	rejected   map[string]int
	dropped    int
	suppressed int
}

func newObserver() *countingObserver {
	return &countingObserver{notices: map[string]int{}, rejected: map[string]int{}}
}

func (o *countingObserver) HaltNotification(source halts.Source, status string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notices[string(source)+" "+status]++
}

func (o *countingObserver) HaltsSuppressed(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.suppressed += n
}

func (o *countingObserver) WebhookRejected(hook, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected[hook+" "+reason]++
}

func (o *countingObserver) RefusalLogsDropped(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped += n
}

func (o *countingObserver) rejections(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rejected[key]
}

// hookRig serves the two webhooks of a service with a captured log.
type hookRig struct {
	*haltstest.Rig
	srv  *httptest.Server
	obs  *countingObserver
	logs *syncBuffer
}

// hookOptions are what a test changes of the hooks.
type hookOptions struct {
	auth *webhook.Auth
}

func newHookRig(t *testing.T) *hookRig { return newHookRigWith(t, hookOptions{}) }

func newHookRigWith(t *testing.T, o hookOptions) *hookRig {
	t.Helper()
	r := haltstest.NewRig(t, haltstest.NewPoster())
	logs := &syncBuffer{}
	r.Log.SetOutput(logs)
	obs := newObserver()
	r.Options.Observer = obs
	r.Options.CoalesceWindow = 10 * time.Minute
	r.Svc = halts.NewService(r.Store, r.Triager, r.Poster, r.Options)
	refusals := webhook.NewRefusals(r.Log, obs, r.Clock.Now)
	mux := http.NewServeMux()
	mux.Handle("POST "+webhook.AlertmanagerPath, &webhook.AlertmanagerHook{Notifier: r.Svc, ScopeLabel: "datacenter",
		ScopeKind: triage.ScopeDatacenter, Auth: o.auth, Refusals: refusals, Now: r.Clock.Now})
	mux.Handle("POST "+webhook.PipelinePath, &webhook.PipelineHook{Notifier: r.Svc, Deliveries: r.Store, Secret: config.Secret(testSecret),
		MaxSkew: 5 * time.Minute, Refusals: refusals, Now: r.Clock.Now})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &hookRig{Rig: r, srv: srv, obs: obs, logs: logs}
}

// syncBuffer is a buffer that the handlers' goroutines write safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// post sends body to path with headers and returns the status and answer.
func (h *hookRig) post(path string, body []byte, headers map[string]string) (int, string) {
	h.T.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Unquoted, so that tests can look for the reasons as written.
	return resp.StatusCode, strings.ReplaceAll(string(b), `\"`, `"`)
}

// signed returns the headers of a delivery signed with secret at ts.
func signed(secret, delivery string, ts time.Time, body []byte) map[string]string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return map[string]string{
		webhook.HeaderTimestamp: t,
		webhook.HeaderDelivery:  delivery,
		webhook.HeaderSignature: webhook.Sign([]byte(secret), t, delivery, body),
	}
}

const pipelineFiring = `{"id":"halt-2025-10-22-001","scope":"dc ams01","name":"release 2025.10.22","reason":"Salt failures above 20% in ams01","status":"firing","url":"https://ci.example.com/halts/1"}`

func TestPipelineHook(t *testing.T) {
	body := []byte(pipelineFiring)
	tests := []struct {
		name       string
		body       string
		headers    func(now time.Time, body []byte) map[string]string
		wantStatus int
		wantError  string
		wantReason string
	}{
		{
			name:       "missing signature",
			headers:    func(time.Time, []byte) map[string]string { return nil },
			wantStatus: 401, wantError: "missing signature", wantReason: "missing_signature",
		},
		{
			name: "signature without timestamp",
			headers: func(now time.Time, b []byte) map[string]string {
				h := signed(testSecret, "d-00000001", now, b)
				delete(h, webhook.HeaderTimestamp)
				return h
			},
			wantStatus: 401, wantError: "missing signature", wantReason: "missing_signature",
		},
		{
			name:       "wrong secret",
			headers:    func(now time.Time, b []byte) map[string]string { return signed("not-the-secret", "d-00000002", now, b) },
			wantStatus: 401, wantError: "bad signature", wantReason: "bad_signature",
		},
		{
			name: "body changed after signing",
			headers: func(now time.Time, b []byte) map[string]string {
				return signed(testSecret, "d-00000003", now, bytes.Replace(b, []byte("ams01"), []byte("fra02"), 1))
			},
			wantStatus: 401, wantError: "bad signature", wantReason: "bad_signature",
		},
		{
			name: "signature not hex",
			headers: func(now time.Time, b []byte) map[string]string {
				h := signed(testSecret, "d-00000004", now, b)
				h[webhook.HeaderSignature] = "sha256=zz"
				return h
			},
			wantStatus: 401, wantError: "bad signature", wantReason: "bad_signature",
		},
		{
			name: "stale timestamp",
			headers: func(now time.Time, b []byte) map[string]string {
				return signed(testSecret, "d-00000005", now.Add(-6*time.Minute), b)
			},
			wantStatus: 401, wantError: "off by more than 5m0s", wantReason: "stale_timestamp",
		},
		{
			name: "timestamp from the future",
			headers: func(now time.Time, b []byte) map[string]string {
				return signed(testSecret, "d-00000006", now.Add(6*time.Minute), b)
			},
			wantStatus: 401, wantError: "off by more than", wantReason: "stale_timestamp",
		},
		{name: "not JSON", body: `status=firing`, wantStatus: 400, wantError: "not a halt notice", wantReason: "malformed"},
		{name: "unknown field", body: `{"id":"x1","scope":"dc ams01","status":"firing","severity":"high"}`, wantStatus: 400, wantError: `severity: unknown member`, wantReason: "malformed"},
		{name: "two objects", body: `{"id":"x1","scope":"dc ams01","status":"firing"}{}`, wantStatus: 400, wantError: "after top-level value", wantReason: "malformed"},
		{name: "missing id", body: `{"scope":"dc ams01","status":"firing"}`, wantStatus: 400, wantError: "id: want 1 to 200", wantReason: "malformed"},
		{name: "bad status", body: `{"id":"x1","scope":"dc ams01","status":"on fire"}`, wantStatus: 400, wantError: `status "on fire": want firing or resolved`, wantReason: "malformed"},
		{name: "scope without kind", body: `{"id":"x1","scope":"ams01","status":"firing"}`, wantStatus: 400, wantError: "want KIND NAME", wantReason: "malformed"},
		{name: "unknown scope kind", body: `{"id":"x1","scope":"rack r12","status":"firing"}`, wantStatus: 400, wantError: `kind "rack"`, wantReason: "malformed"},
		{name: "minion id with a glob", body: `{"id":"x1","scope":"minion web-*","status":"firing"}`, wantStatus: 400, wantError: "not a minion id", wantReason: "malformed"},
		{name: "url not http", body: `{"id":"x1","scope":"dc ams01","status":"firing","url":"javascript:alert(1)"}`, wantStatus: 400, wantError: "url: want an http or https URL", wantReason: "malformed"},
		{name: "too large", body: `{"id":"x1","scope":"dc ams01","status":"firing","reason":"` + strings.Repeat("x", 70<<10) + `"}`, wantStatus: 413, wantError: "larger than", wantReason: "too_large"},
		{
			name: "bad delivery id",
			headers: func(now time.Time, b []byte) map[string]string {
				return signed(testSecret, "a b", now, b)
			},
			wantStatus: 400, wantError: webhook.HeaderDelivery, wantReason: "malformed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRig(t)
			b := body
			if tc.body != "" {
				b = []byte(tc.body)
			}
			headers := signed(testSecret, "d-"+strconv.Itoa(len(tc.name))+"-0001", h.Clock.Now(), b)
			if tc.headers != nil {
				headers = tc.headers(h.Clock.Now(), b)
			}
			status, answer := h.post(webhook.PipelinePath, b, headers)
			if status != tc.wantStatus || !strings.Contains(answer, tc.wantError) {
				t.Errorf("answer %d %s, want %d with %q", status, answer, tc.wantStatus, tc.wantError)
			}
			if hs := h.Halts(); len(hs) != 0 {
				t.Errorf("%d halts stored, want none", len(hs))
			}
			if h.obs.rejections("pipeline "+tc.wantReason) != 1 {
				t.Errorf("rejections %v, want one pipeline %s", h.obs.rejected, tc.wantReason)
			}
			if strings.Contains(h.logs.String(), testSecret) || strings.Contains(answer, testSecret) {
				t.Error("the secret appears in the logs or the answer")
			}
		})
	}
}

func TestPipelineHookAcceptsAndRefusesReplays(t *testing.T) {
	h := newHookRig(t)
	body := []byte(pipelineFiring)
	headers := signed(testSecret, "4b0c1f5e-2d9a-4c41-9a57-0d6f1c1b2e3f", h.Clock.Now(), body)
	status, answer := h.post(webhook.PipelinePath, body, headers)
	if status != 200 || !strings.Contains(answer, `"new"`) {
		t.Fatalf("first delivery: %d %s", status, answer)
	}
	// The same delivery again, within the skew: a replay.
	h.Clock.Advance(time.Minute)
	status, answer = h.post(webhook.PipelinePath, body, headers)
	if status != 401 || !strings.Contains(answer, "replayed delivery") {
		t.Fatalf("replay: %d %s, want 401 replayed delivery", status, answer)
	}
	hs := h.Halts()
	if len(hs) != 1 || hs[0].Firings != 1 {
		t.Fatalf("halts %+v: want one, fired once", hs)
	}
	got := hs[0]
	if got.Scope != (triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}) || got.Name != "release 2025.10.22" ||
		got.URL != "https://ci.example.com/halts/1" || got.Key != "pipeline/halt-2025-10-22-001" {
		t.Errorf("stored halt %+v", got)
	}
	// A new delivery of the same halt is another firing, not another halt.
	status, _ = h.post(webhook.PipelinePath, body, signed(testSecret, "4b0c1f5e-0000-0000-0000-000000000002", h.Clock.Now(), body))
	if status != 200 {
		t.Fatalf("second delivery: %d", status)
	}
	resolvedBody := []byte(strings.Replace(pipelineFiring, `"firing"`, `"resolved"`, 1))
	status, answer = h.post(webhook.PipelinePath, resolvedBody, signed(testSecret, "4b0c1f5e-0000-0000-0000-000000000003", h.Clock.Now(), resolvedBody))
	if status != 200 || !strings.Contains(answer, `"resolved"`) {
		t.Fatalf("resolved delivery: %d %s", status, answer)
	}
	hs = h.Halts()
	if len(hs) != 1 || hs[0].Firings != 2 || hs[0].Open() {
		t.Errorf("halts %+v: want one, fired twice, resolved", hs)
	}
	if h.obs.notices["pipeline firing"] != 2 || h.obs.notices["pipeline resolved"] != 1 {
		t.Errorf("notices %v", h.obs.notices)
	}
	if strings.Contains(h.logs.String(), testSecret) {
		t.Error("the secret appears in the logs")
	}
}

// amPayload is an Alertmanager webhook message of version 4, as
// Alertmanager 0.25 sends it.
func amPayload(status string, alerts ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"receiver": "sift", "status": status, "alerts": alerts,
		"groupLabels":       map[string]string{"alertname": "SaltHighstateFailures"},
		"commonLabels":      map[string]string{"alertname": "SaltHighstateFailures", "severity": "page"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example.com:9093",
		"version":           "4",
		"groupKey":          `{}:{alertname="SaltHighstateFailures"}`,
		"truncatedAlerts":   0,
	})
	return b
}

func amAlert(status, dc, fingerprint string, startsAt time.Time) map[string]any {
	a := map[string]any{
		"status": status,
		"labels": map[string]string{"alertname": "SaltHighstateFailures", "datacenter": dc, "severity": "page"},
		"annotations": map[string]string{
			"summary": "Salt highstate failures above 20% in " + dc,
		},
		"startsAt":     startsAt.Format(time.RFC3339Nano),
		"endsAt":       "0001-01-01T00:00:00Z",
		"generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=x",
		"fingerprint":  fingerprint,
	}
	if status == "resolved" {
		a["endsAt"] = startsAt.Add(17 * time.Minute).Format(time.RFC3339Nano)
	}
	return a
}

func TestAlertmanagerHook(t *testing.T) {
	h := newHookRig(t)
	start := h.Clock.Now().Add(-2 * time.Minute)
	firingMsg := amPayload("firing", amAlert("firing", "ams01", "1a2b3c4d5e6f7081", start), amAlert("firing", "fra02", "99aa88bb77cc66dd", start))
	for range 2 { // Alertmanager repeats notifications: one halt each
		if status, answer := h.post(webhook.AlertmanagerPath, firingMsg, nil); status != 200 {
			t.Fatalf("firing: %d %s", status, answer)
		}
	}
	hs := h.Halts()
	if len(hs) != 2 {
		t.Fatalf("%d halts, want 2 (ams01, fra02)", len(hs))
	}
	for _, x := range hs {
		if x.Firings != 2 || x.Name != "SaltHighstateFailures" || x.Source != halts.SourceAlertmanager || !x.FiredAt.Equal(start) {
			t.Errorf("halt %+v: want 2 firings of SaltHighstateFailures since %s", x, start)
		}
	}
	h.Clock.Advance(20 * time.Minute)
	status, answer := h.post(webhook.AlertmanagerPath, amPayload("resolved", amAlert("resolved", "ams01", "1a2b3c4d5e6f7081", start)), nil)
	if status != 200 || !strings.Contains(answer, `"resolved"`) {
		t.Fatalf("resolved: %d %s", status, answer)
	}
	open := 0
	for _, x := range h.Halts() {
		if x.Open() {
			open++
			if x.Scope.Name != "fra02" {
				t.Errorf("open halt %s, want fra02", x.Scope.Name)
			}
		} else if got := x.ResolvedAt.Sub(x.FiredAt); got != 17*time.Minute {
			t.Errorf("resolved after %s, want the alert's 17m", got)
		}
	}
	if open != 1 {
		t.Errorf("%d open halts, want 1", open)
	}
	// The same alert firing again later is a new halt.
	again := amPayload("firing", amAlert("firing", "ams01", "1a2b3c4d5e6f7081", h.Clock.Now()))
	if status, _ := h.post(webhook.AlertmanagerPath, again, nil); status != 200 {
		t.Fatal(status)
	}
	if n := len(h.Halts()); n != 3 {
		t.Errorf("%d halts after ams01 fired again, want 3", n)
	}
}

func TestAlertmanagerHookRefusesMalformed(t *testing.T) {
	start := time.Date(2025, 10, 22, 9, 58, 0, 0, time.UTC)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantError  string
	}{
		{"not JSON", `alerts: []`, 400, "not an Alertmanager webhook message"},
		{"wrong version", strings.Replace(string(amPayload("firing", amAlert("firing", "ams01", "ab", start))), `"version":"4"`, `"version":"3"`, 1), 400, `version "3"`},
		{"bad alert status", string(amPayload("firing", amAlert("firing", "ams01", "ab", start), amAlert("pending", "fra02", "cd", start))), 400, `alerts[1].status "pending"`},
		{"bad time", strings.Replace(string(amPayload("firing", amAlert("firing", "ams01", "ab", start))), start.Format(time.RFC3339Nano), "yesterday", 1), 400, "not an Alertmanager webhook message"},
		{"over 4 MiB", string(floodBody(40000, 500, start)), 413, "larger than 4 MiB"},
		{"nested too deep", `{"version":"4","alerts":[{"labels":` + strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat(`}`, 10001) + `}]}`, 400, "not an Alertmanager webhook message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRig(t)
			status, answer := h.post(webhook.AlertmanagerPath, []byte(tc.body), nil)
			if status != tc.wantStatus || !strings.Contains(answer, tc.wantError) {
				t.Errorf("answer %d %s, want %d with %q", status, answer, tc.wantStatus, tc.wantError)
			}
			if n := len(h.Halts()); n != 0 {
				t.Errorf("%d halts stored, want none", n)
			}
		})
	}
}

func TestAlertmanagerHookSkipsAlertsWithoutScope(t *testing.T) {
	h := newHookRig(t)
	noScope := amAlert("firing", "", "ab", h.Clock.Now())
	status, answer := h.post(webhook.AlertmanagerPath, amPayload("firing", noScope, amAlert("firing", "ams01", "cd", h.Clock.Now())), nil)
	if status != 200 || !strings.Contains(answer, "label datacenter is missing") {
		t.Fatalf("answer %d %s: want 200 naming the skipped alert", status, answer)
	}
	if hs := h.Halts(); len(hs) != 1 || hs[0].Scope.Name != "ams01" {
		t.Errorf("halts %+v: want ams01 only", hs)
	}
}
