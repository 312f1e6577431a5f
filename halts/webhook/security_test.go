package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/halts/webhook"
)

const (
	testToken    = "am-token-0b7e-never-print-me"
	testPassword = "am-password-51c2-never-print-me"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAlertmanagerHookAuth(t *testing.T) {
	bearer := &webhook.Auth{BearerToken: config.Secret(testToken)}
	basicAuth := &webhook.Auth{Username: "alertmanager", Password: config.Secret(testPassword)}
	tests := []struct {
		name       string
		auth       *webhook.Auth
		header     string
		wantStatus int
		wantReason string
	}{
		{"bearer accepted", bearer, "Bearer " + testToken, 200, ""},
		{"bearer scheme in any case", bearer, "bearer " + testToken, 200, ""},
		{"no header", bearer, "", 401, "missing_credentials"},
		{"wrong token", bearer, "Bearer " + testToken + "x", 401, "bad_credentials"},
		{"token prefix only", bearer, "Bearer " + testToken[:10], 401, "bad_credentials"},
		{"basic where bearer is wanted", bearer, basic("alertmanager", testToken), 401, "bad_credentials"},
		{"basic accepted", basicAuth, basic("alertmanager", testPassword), 200, ""},
		{"basic wrong user", basicAuth, basic("root", testPassword), 401, "bad_credentials"},
		{"basic wrong password", basicAuth, basic("alertmanager", "guess"), 401, "bad_credentials"},
		{"bearer where basic is wanted", basicAuth, "Bearer " + testPassword, 401, "bad_credentials"},
		{"basic not base64", basicAuth, "Basic !!!", 401, "bad_credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRigWith(t, hookOptions{auth: tc.auth})
			body := amPayload("firing", amAlert("firing", "ams01", "1a2b3c4d5e6f7081", h.Clock.Now()))
			headers := map[string]string{}
			if tc.header != "" {
				headers["Authorization"] = tc.header
			}
			status, answer := h.post(webhook.AlertmanagerPath, body, headers)
			if status != tc.wantStatus {
				t.Fatalf("answer %d %s, want %d", status, answer, tc.wantStatus)
			}
			stored := len(h.Halts())
			if tc.wantStatus == 200 && stored != 1 {
				t.Errorf("%d halts stored, want 1", stored)
			}
			if tc.wantStatus != 200 {
				if stored != 0 {
					t.Errorf("%d halts stored by a refused request, want none", stored)
				}
				if h.obs.rejections("alertmanager "+tc.wantReason) != 1 {
					t.Errorf("rejections %v, want one %s", h.obs.rejected, tc.wantReason)
				}
			}
			for _, secret := range []string{testToken, testPassword} {
				if strings.Contains(answer, secret) || strings.Contains(h.logs.String(), secret) {
					t.Error("a credential appears in the answer or the logs")
				}
			}
		})
	}
}

// TestStrictBodies: a member named twice and text that is not UTF-8 are
// refused with 400, naming the member, by both hooks.
func TestStrictBodies(t *testing.T) {
	start := time.Date(2025, 10, 22, 9, 58, 0, 0, time.UTC)
	am := string(amPayload("firing", amAlert("firing", "ams01", "ab", start)))
	tests := []struct {
		name, path, body, want string
	}{
		{"alertmanager: status twice", webhook.AlertmanagerPath,
			strings.Replace(am, `"status":"firing"}`, `"status":"firing","status":"resolved"}`, 1), `alerts[0].status: appears twice`},
		{"alertmanager: label twice", webhook.AlertmanagerPath,
			strings.Replace(am, `"datacenter":"ams01"`, `"datacenter":"ams01","datacenter":"fra02"`, 1), `alerts[0].labels.datacenter: appears twice`},
		{"alertmanager: invalid UTF-8", webhook.AlertmanagerPath,
			strings.Replace(am, `"summary":"Salt`, "\"summary\":\"S\xffalt", 1), `alerts[0].annotations.summary: invalid UTF-8`},
		{"pipeline: status twice", webhook.PipelinePath,
			`{"id":"x1","scope":"dc ams01","status":"resolved","status":"firing"}`, `status: appears twice`},
		{"pipeline: invalid UTF-8", webhook.PipelinePath,
			"{\"id\":\"x1\",\"scope\":\"dc ams01\",\"status\":\"firing\",\"reason\":\"\xc3\x28\"}", `reason: invalid UTF-8`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRig(t)
			var headers map[string]string
			if tc.path == webhook.PipelinePath {
				headers = signed(testSecret, "d-strict-0001", h.Clock.Now(), []byte(tc.body))
			}
			status, answer := h.post(tc.path, []byte(tc.body), headers)
			if status != 400 || !strings.Contains(answer, tc.want) {
				t.Errorf("answer %d %s, want 400 with %q", status, answer, tc.want)
			}
			if n := len(h.Halts()); n != 0 {
				t.Errorf("%d halts stored, want none", n)
			}
		})
	}
}

// TestRefusalLogsAreRateLimited: a flood of bad requests writes a bounded
// number of log lines; the others are counted, and the next line written
// says how many were dropped.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	h := newHookRigWith(t, hookOptions{auth: &webhook.Auth{BearerToken: config.Secret(testToken)}})
	body := amPayload("firing", amAlert("firing", "ams01", "ab", h.Clock.Now()))
	const requests = 100
	for range requests {
		if status, _ := h.post(webhook.AlertmanagerPath, body, map[string]string{"Authorization": "Bearer nope"}); status != 401 {
			t.Fatalf("status %d, want 401", status)
		}
	}
	lines := strings.Count(h.logs.String(), "webhook delivery refused")
	if lines != 10 {
		t.Errorf("%d log lines for %d refusals at one instant, want the burst of 10", lines, requests)
	}
	if h.obs.dropped != requests-lines {
		t.Errorf("dropped-lines counter %d, want %d", h.obs.dropped, requests-lines)
	}
	if got := h.obs.rejections("alertmanager bad_credentials"); got != requests {
		t.Errorf("%d refusals counted, want every one (%d)", got, requests)
	}
	// A second later one line may be written again, and it says how many
	// were dropped before it.
	h.Clock.Advance(time.Second)
	h.post(webhook.AlertmanagerPath, body, nil)
	if !strings.Contains(h.logs.String(), fmt.Sprintf("dropped_before=%d", requests-lines)) {
		t.Errorf("the next line does not say how many were dropped:\n%s", h.logs.String())
	}
}

// floodBody is one Alertmanager group of n alerts over scopes
// datacenters, each alert with its own fingerprint, the way a broken
// rule or an attacker with the hook's credentials sends it.
func floodBody(n, scopes int, at time.Time) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"sift","groupKey":"{}:{}","alerts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"HighErrorRate","datacenter":"dc%03d","pod":"p%05d"},"startsAt":%q,"fingerprint":"%016x"}`,
			i%scopes, i, at.Format(time.RFC3339), i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestFlood: 20 000 distinct alerts over 500 scopes in one request are
// stored and answered without a triage; the work queued is at most one
// triage per scope and at most the budget of posts.
func TestFlood(t *testing.T) {
	const alerts, scopes, budget = 20000, 500, 30
	h := newHookRig(t)
	h.Options.MaxPostsPerHour = budget
	h.Svc = halts.NewService(h.Store, h.Triager, h.Poster, h.Options)
	refusals := webhook.NewRefusals(h.Log, h.obs, h.Clock.Now)
	hook := &webhook.AlertmanagerHook{Notifier: h.Svc, ScopeLabel: "datacenter", ScopeKind: "datacenter", Refusals: refusals, Now: h.Clock.Now}
	body := floodBody(alerts, scopes, h.Clock.Now().Add(-time.Minute))
	if len(body) > 4<<20 {
		t.Fatalf("flood body %d bytes, over the hook's limit", len(body))
	}
	req, err := http.NewRequest(http.MethodPost, webhook.AlertmanagerPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	hook.ServeHTTP(w, req)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"stored":20000`) {
		t.Fatalf("answer %d %s", w.Code, w.Body.String())
	}
	// Answered with the work queued, none of it done.
	if c := h.Triager.Calls(); c != 0 {
		t.Fatalf("%d triages ran in the handler, want none", c)
	}
	if !strings.Contains(w.Body.String(), `"new":500`) || !strings.Contains(w.Body.String(), `"joined":19500`) {
		t.Errorf("answer %s: want 500 new halts and 19 500 joined", w.Body.String())
	}
	// The worker's share: one triage per scope at most, the budget of posts.
	for range 10 {
		h.RunOnce()
	}
	posts := len(h.Poster.(*haltstest.Poster).Posts())
	if c := h.Triager.Calls(); c > scopes || c > budget {
		t.Errorf("%d triages, want at most %d (and the budget of %d: the rest are suppressed before their triage)", c, scopes, budget)
	}
	if posts > budget {
		t.Errorf("%d posts, want at most the budget of %d", posts, budget)
	}
	if h.obs.suppressed != scopes-budget {
		t.Errorf("%d halts counted as suppressed, want %d", h.obs.suppressed, scopes-budget)
	}
}

// TestGroupResolvedAtOnce: the resolution of a large group is one request
// that clears every halt of it.
func TestGroupResolvedAtOnce(t *testing.T) {
	h := newHookRig(t)
	body := floodBody(2000, 50, h.Clock.Now().Add(-time.Minute))
	if status, answer := h.post(webhook.AlertmanagerPath, body, nil); status != 200 {
		t.Fatalf("firing group: %d %s", status, answer)
	}
	resolvedBody := bytes.ReplaceAll(body, []byte(`"status":"firing"`), []byte(`"status":"resolved"`))
	if status, answer := h.post(webhook.AlertmanagerPath, resolvedBody, nil); status != 200 || !strings.Contains(answer, `"resolved":2000`) {
		t.Fatalf("resolved group: %d %s", status, answer)
	}
	if open, err := h.Store.FiringCounts(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("open halts after the resolution %v, %v; want none", open, err)
	}
}
