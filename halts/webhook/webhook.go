// Package webhook is the HTTP side of the halt sources: Alertmanager's
// webhook receiver and the release pipeline's signed notices, each
// authenticated, decoded strictly, and refused with a reason the sender
// can act on, in log lines that are rate-limited.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

// Paths of the webhooks.
const (
	AlertmanagerPath = "/hooks/alertmanager"
	PipelinePath     = "/hooks/halt"
)

// Headers of a pipeline delivery (see docs/halts.md).
const (
	HeaderSignature = "X-Sift-Signature"
	HeaderTimestamp = "X-Sift-Timestamp"
	HeaderDelivery  = "X-Sift-Delivery"
	// signaturePrefix names the algorithm in the signature header.
	signaturePrefix = "sha256="
)

// Body limits: an Alertmanager group can hold many alerts; a pipeline
// notice is one small object.
const (
	maxAlertmanagerBody = 4 << 20
	maxPipelineBody     = 64 << 10
	maxID               = 200
	maxField            = 4000
	// maxSkippedListed bounds the skipped alerts named in an answer.
	maxSkippedListed = 20
)

// validDeliveryID reports what a delivery id may be: a UUID, a ULID, a
// counter with a prefix; 8 to 128 letters, digits, '.', '_', ':' or '-'.
// (Not a regexp: its counted repetition compiled to a large program at
// every start of the binary.)
func validDeliveryID(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Rejection reasons, the values of the reason label of refused deliveries.
const (
	reasonMalformed        = "malformed"
	reasonTooLarge         = "too_large"
	reasonMissingSignature = "missing_signature"
	reasonBadSignature     = "bad_signature"
	reasonStale            = "stale_timestamp"
	reasonReplayed         = "replayed"
	reasonMissingAuth      = "missing_credentials"
	reasonBadAuth          = "bad_credentials"
)

// Notifier records halt events; *halts.Service is one. Once NotifyAll
// returns nil the events are stored; the work they call for is done
// later, never while the source waits.
type Notifier interface {
	NotifyAll(ctx context.Context, events []halts.Event) ([]halts.Result, error)
}

var _ Notifier = (*halts.Service)(nil)

// Deliveries remembers the pipeline's delivery ids; a halts.Store is one.
type Deliveries interface {
	UseDelivery(ctx context.Context, id string, at, pruneBefore time.Time) (bool, error)
}

// answer writes a JSON answer.
func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.MarshalWrite(w, v)
}

// readBody reads at most limit bytes, and reports a body over the limit.
func readBody(r *http.Request, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	return b, int64(len(b)) > limit, nil
}

// decode decodes one JSON value strictly: a member named twice and a
// string that is not UTF-8 are refused (json v2's defaults), and so are
// unknown members when strict is set. The error names the member.
func decode(b []byte, v any, strict bool) error {
	err := json.Unmarshal(b, v, json.RejectUnknownMembers(strict))
	if err == nil {
		return nil
	}
	var se *jsontext.SyntacticError
	var me *json.SemanticError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s%s", where(se.JSONPointer), describe(se.Err))
	case errors.As(err, &me):
		return fmt.Errorf("%s%s", where(me.JSONPointer), describe(me.Err))
	}
	return err
}

// where names the member a JSON pointer points at: "alerts[3].status: ".
func where(p jsontext.Pointer) string {
	if p == "" {
		return ""
	}
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String() + ": "
}

// describe says what was wrong, in words a sender can act on.
func describe(err error) string {
	switch {
	case err == nil:
		return "invalid value"
	case errors.Is(err, jsontext.ErrDuplicateName):
		return "appears twice (send each member once)"
	case errors.Is(err, jsontext.ErrNonStringName):
		return "is not a JSON object name"
	case errors.Is(err, json.ErrUnknownName):
		return "unknown member"
	}
	msg := err.Error()
	if strings.Contains(msg, "UTF-8") {
		return "invalid UTF-8 (send text as UTF-8)"
	}
	return msg
}

// AlertmanagerHook receives Alertmanager's webhook (version 4): each alert
// whose ScopeLabel is set is a halt of that scope, firing or resolved.
type AlertmanagerHook struct {
	Notifier   Notifier
	ScopeLabel string
	ScopeKind  triage.ScopeKind
	// Auth checks the credentials of each request; nil lets every
	// request in, which the configuration allows only when told to
	// (insecure_no_auth).
	Auth *Auth
	// Refusals logs and counts refused requests; nil only answers them.
	Refusals *Refusals
	// Now is the hook's clock; time.Now when nil.
	Now func() time.Time
}

// amMessage is Alertmanager's webhook payload, version 4. Unknown fields
// are accepted: Alertmanager adds fields within a version.
type amMessage struct {
	Version         string            `json:"version"`
	GroupKey        string            `json:"groupKey"`
	TruncatedAlerts int               `json:"truncatedAlerts"`
	Status          string            `json:"status"`
	Receiver        string            `json:"receiver"`
	GroupLabels     map[string]string `json:"groupLabels"`
	CommonLabels    map[string]string `json:"commonLabels"`
	ExternalURL     string            `json:"externalURL"`
	Alerts          []amAlert         `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ServeHTTP implements http.Handler. A request without the configured
// credentials is refused with 401 before its body is read. A body that is
// not a version 4 message is refused with 400 and nothing stored; alerts
// without the scope label are skipped and counted in the answer; a store
// failure is a 500, so that Alertmanager sends the notification again.
// The alerts are stored in one transaction and the answer sent; triage
// and posts happen later.
func (h *AlertmanagerHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const hook = "alertmanager"
	if h.Auth != nil {
		if reason, msg := h.Auth.check(r); reason != "" {
			w.Header().Set("WWW-Authenticate", h.Auth.challenge())
			h.Refusals.refuse(w, hook, http.StatusUnauthorized, reason, msg)
			return
		}
	}
	body, tooLarge, err := readBody(r, maxAlertmanagerBody)
	switch {
	case err != nil:
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, "body: "+err.Error())
		return
	case tooLarge:
		h.Refusals.refuse(w, hook, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d MiB", maxAlertmanagerBody>>20))
		return
	}
	var m amMessage
	if err := decode(body, &m, false); err != nil {
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, "body is not an Alertmanager webhook message: "+err.Error())
		return
	}
	if m.Version != "4" {
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, fmt.Sprintf("version %q: Sift reads Alertmanager webhook messages of version 4", halts.Clip(m.Version, 20)))
		return
	}
	now := nowOf(h.Now)
	events := make([]halts.Event, 0, len(m.Alerts))
	var skipped []string
	skippedN := 0
	for i, a := range m.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, fmt.Sprintf("alerts[%d].status %q: want firing or resolved", i, halts.Clip(a.Status, 40)))
			return
		}
		name := a.Labels[h.ScopeLabel]
		if msg := halts.CheckScopeName(name); msg != "" {
			skippedN++
			if len(skipped) < maxSkippedListed {
				skipped = append(skipped, fmt.Sprintf("alerts[%d]: label %s %s", i, h.ScopeLabel, msg))
			}
			continue
		}
		fp := a.Fingerprint
		if fp == "" {
			fp = labelsFingerprint(a.Labels)
		}
		e := halts.Event{
			Source: halts.SourceAlertmanager,
			// The start is part of the key: the same alert firing again
			// after it resolved is a new halt, and a late firing notice
			// of a resolved one is not.
			Key:    "alertmanager/" + fp + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano),
			Name:   nonEmpty(a.Labels["alertname"], "alert"),
			Scope:  triage.Scope{Kind: h.ScopeKind, Name: name},
			Reason: nonEmpty(a.Annotations["summary"], a.Annotations["description"]),
			URL:    a.GeneratorURL,
			Firing: a.Status == "firing",
		}
		if e.Firing {
			e.At = past(a.StartsAt, now)
		} else {
			e.At = past(a.EndsAt, now)
		}
		events = append(events, e)
	}
	results, err := h.Notifier.NotifyAll(r.Context(), events)
	if err != nil {
		h.Refusals.logger().WithError(err).WithField("alerts", len(events)).Error("storing Alertmanager halts failed")
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the halts could not be stored; send them again"})
		return
	}
	if skippedN > 0 {
		h.Refusals.logger().WithFields(logrus.Fields{"skipped": skippedN, "first": skipped[0], "scope_label": h.ScopeLabel}).Warn("alerts without a scope skipped")
	}
	counts := map[halts.Result]int{}
	for _, res := range results {
		counts[res]++
	}
	out := map[string]any{"stored": len(results), "results": counts, "skipped": skippedN}
	if len(skipped) > 0 {
		out["skipped_alerts"] = skipped
	}
	answer(w, http.StatusOK, out)
}

// labelsFingerprint stands in for a missing alert fingerprint: a hash of
// the sorted labels, as Alertmanager's own is.
func labelsFingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\xff" + labels[k] + "\xff"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// past returns t, or now when t is unset or in the future (a firing
// alert's endsAt is a time it may end, not one it did).
func past(t, now time.Time) time.Time {
	if t.IsZero() || t.After(now) || t.Year() < 2000 {
		return now
	}
	return t
}

// PipelineHook receives the release pipeline's halt notices, signed with
// HMAC-SHA256 over the timestamp, the delivery id and the body.
type PipelineHook struct {
	Notifier   Notifier
	Deliveries Deliveries
	// Secret is the shared HMAC key; it is never logged nor echoed.
	Secret config.Secret
	// MaxSkew is how far the delivery's timestamp may be from now.
	MaxSkew  time.Duration
	Refusals *Refusals
	Now      func() time.Time
}

// pipelineNotice is the pipeline's JSON body.
type pipelineNotice struct {
	ID     string `json:"id"`
	Scope  string `json:"scope"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
	Status string `json:"status"`
	URL    string `json:"url"`
}

// Sign returns the signature header value of a pipeline delivery: what the
// pipeline computes, and what tests and tools use to send one.
func Sign(secret []byte, timestamp, delivery string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp + "." + delivery + "."))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// ServeHTTP implements http.Handler. The checks run in an order that
// tells an attacker nothing: the signature first (401), then the
// timestamp (401), then the body (400), then the delivery id (401 when
// already used). Nothing is stored before every check passed.
func (h *PipelineHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const hook = "pipeline"
	body, tooLarge, err := readBody(r, maxPipelineBody)
	switch {
	case err != nil:
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, "body: "+err.Error())
		return
	case tooLarge:
		h.Refusals.refuse(w, hook, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d KiB", maxPipelineBody>>10))
		return
	}
	sig, ts, delivery := r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderDelivery)
	if sig == "" || ts == "" || delivery == "" {
		h.Refusals.refuse(w, hook, http.StatusUnauthorized, reasonMissingSignature,
			fmt.Sprintf("missing signature: send %s, %s and %s", HeaderSignature, HeaderTimestamp, HeaderDelivery))
		return
	}
	want := Sign([]byte(h.Secret.Reveal()), ts, delivery, body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		h.Refusals.refuse(w, hook, http.StatusUnauthorized, reasonBadSignature, "bad signature")
		return
	}
	now := nowOf(h.Now)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		h.Refusals.refuse(w, hook, http.StatusUnauthorized, reasonStale, HeaderTimestamp+" is not Unix seconds")
		return
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > h.MaxSkew || skew < -h.MaxSkew {
		h.Refusals.refuse(w, hook, http.StatusUnauthorized, reasonStale,
			fmt.Sprintf("timestamp %s off by more than %s: sign each delivery when it is sent, and check the clocks", ts, h.MaxSkew))
		return
	}
	if !validDeliveryID(delivery) {
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, HeaderDelivery+" must be 8 to 128 letters, digits, '.', '_', ':' or '-' (e.g. a UUID)")
		return
	}
	e, msg := pipelineEvent(body)
	if msg != "" {
		h.Refusals.refuse(w, hook, http.StatusBadRequest, reasonMalformed, msg)
		return
	}
	fresh, err := h.Deliveries.UseDelivery(r.Context(), delivery, now, now.Add(-2*h.MaxSkew))
	if err != nil {
		h.Refusals.logger().WithError(err).Error("recording a pipeline delivery failed")
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the delivery could not be stored; sign and send it again"})
		return
	}
	if !fresh {
		h.Refusals.refuse(w, hook, http.StatusUnauthorized, reasonReplayed, "replayed delivery: this delivery id was already used")
		return
	}
	res, err := h.Notifier.NotifyAll(r.Context(), []halts.Event{e})
	if err != nil {
		h.Refusals.logger().WithError(err).WithField("key", e.Key).Error("storing a pipeline halt failed")
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the halt could not be stored; sign and send it again with a new delivery id"})
		return
	}
	answer(w, http.StatusOK, map[string]any{"result": res[0]})
}

// pipelineEvent validates a notice and returns its event, or what is wrong.
func pipelineEvent(body []byte) (halts.Event, string) {
	var n pipelineNotice
	if err := decode(body, &n, true); err != nil {
		return halts.Event{}, "body is not a halt notice: " + err.Error()
	}
	var problems []string
	if n.ID == "" || len(n.ID) > maxID || strings.IndexFunc(n.ID, unicode.IsControl) >= 0 {
		problems = append(problems, fmt.Sprintf("id: want 1 to %d printable characters", maxID))
	}
	if n.Status != "firing" && n.Status != "resolved" {
		problems = append(problems, fmt.Sprintf("status %q: want firing or resolved", halts.Clip(n.Status, 40)))
	}
	scope, msg := halts.ParseScope(n.Scope)
	if msg != "" {
		problems = append(problems, "scope: "+msg)
	}
	if len(n.Name) > maxField || len(n.Reason) > maxField {
		problems = append(problems, fmt.Sprintf("name and reason: at most %d characters", maxField))
	}
	if n.URL != "" {
		if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, "url: want an http or https URL")
		}
	}
	if len(problems) > 0 {
		return halts.Event{}, strings.Join(problems, "; ")
	}
	return halts.Event{
		Source: halts.SourcePipeline, Key: "pipeline/" + n.ID, Name: nonEmpty(halts.OneLine(n.Name), "release pipeline"),
		Scope: scope, Reason: n.Reason, URL: n.URL, Firing: n.Status == "firing",
	}, ""
}

// nowOf is the time by a hook's clock, time.Now when it has none.
func nowOf(clock func() time.Time) time.Time {
	if clock == nil {
		return time.Now()
	}
	return clock()
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
