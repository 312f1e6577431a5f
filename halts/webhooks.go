package halts

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
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
	maxScopeName        = 255
	maxID               = 200
	maxField            = 4000
)

// deliveryIDPattern is what a delivery id may be: a UUID, a ULID, a
// counter with a prefix.
var deliveryIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// Rejection reasons, the values of the reason label of refused deliveries.
const (
	reasonMalformed        = "malformed"
	reasonTooLarge         = "too_large"
	reasonMissingSignature = "missing_signature"
	reasonBadSignature     = "bad_signature"
	reasonStale            = "stale_timestamp"
	reasonReplayed         = "replayed"
)

// answer writes a JSON answer.
func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// reject refuses a delivery with a reason the sender can act on.
func (s *Service) reject(w http.ResponseWriter, hook string, status int, reason, msg string) {
	if s.opts.Observer != nil {
		s.opts.Observer.WebhookRejected(hook, reason)
	}
	s.opts.Log.WithFields(logrus.Fields{"hook": hook, "reason": reason, "status": status}).Warn("webhook delivery refused")
	answer(w, status, map[string]string{"error": msg})
}

// readBody reads at most limit bytes, and reports a body over the limit.
func readBody(r *http.Request, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	return b, int64(len(b)) > limit, nil
}

// decodeStrict decodes one JSON value with no unknown fields and nothing
// after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// AlertmanagerHook receives Alertmanager's webhook (version 4): each alert
// whose ScopeLabel is set is a halt of that scope, firing or resolved.
type AlertmanagerHook struct {
	Service    *Service
	ScopeLabel string
	ScopeKind  triage.ScopeKind
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

// ServeHTTP implements http.Handler. A body that is not a version 4
// message is refused with 400 and nothing stored; alerts without the scope
// label are skipped and counted in the answer; a store failure is a 500, so
// that Alertmanager sends the notification again.
func (h *AlertmanagerHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.Service
	const hook = "alertmanager"
	body, tooLarge, err := readBody(r, maxAlertmanagerBody)
	switch {
	case err != nil:
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, "body: "+err.Error())
		return
	case tooLarge:
		s.reject(w, hook, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d MiB", maxAlertmanagerBody>>20))
		return
	}
	var m amMessage
	if err := json.Unmarshal(body, &m); err != nil {
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, "body is not an Alertmanager webhook message: "+err.Error())
		return
	}
	if m.Version != "4" {
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, fmt.Sprintf("version %q: Sift reads Alertmanager webhook messages of version 4", m.Version))
		return
	}
	now := s.opts.Now()
	var events []Event
	var skipped []string
	for i, a := range m.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			s.reject(w, hook, http.StatusBadRequest, reasonMalformed, fmt.Sprintf("alerts[%d].status %q: want firing or resolved", i, a.Status))
			return
		}
		name := a.Labels[h.ScopeLabel]
		if msg := checkScopeName(name); msg != "" {
			skipped = append(skipped, fmt.Sprintf("alerts[%d]: label %s %s", i, h.ScopeLabel, msg))
			continue
		}
		fp := a.Fingerprint
		if fp == "" {
			fp = labelsFingerprint(a.Labels)
		}
		e := Event{
			Source: SourceAlertmanager,
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
	results := make([]Result, 0, len(events))
	for _, e := range events {
		res, err := s.Notify(r.Context(), e)
		if err != nil {
			s.opts.Log.WithError(err).WithField("key", e.Key).Error("storing an Alertmanager halt failed")
			answer(w, http.StatusInternalServerError, map[string]string{"error": "the halt could not be stored; send it again"})
			return
		}
		results = append(results, res)
	}
	if len(skipped) > 0 {
		s.opts.Log.WithFields(logrus.Fields{"skipped": skipped, "scope_label": h.ScopeLabel}).Warn("alerts without a scope skipped")
	}
	answer(w, http.StatusOK, map[string]any{"stored": len(results), "results": results, "skipped": skipped})
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

// checkScopeName says what is wrong with a scope name from a source, or "".
func checkScopeName(name string) string {
	switch {
	case name == "":
		return "is missing"
	case len(name) > maxScopeName:
		return fmt.Sprintf("is longer than %d characters", maxScopeName)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("%q has spaces or control characters", clip(name, 80))
	}
	return ""
}

// PipelineHook receives the release pipeline's halt notices, signed with
// HMAC-SHA256 over the timestamp, the delivery id and the body.
type PipelineHook struct {
	Service *Service
	// Secret is the shared HMAC key; it is never logged nor echoed.
	Secret config.Secret
	// MaxSkew is how far the delivery's timestamp may be from now.
	MaxSkew time.Duration
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
	s := h.Service
	const hook = "pipeline"
	body, tooLarge, err := readBody(r, maxPipelineBody)
	switch {
	case err != nil:
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, "body: "+err.Error())
		return
	case tooLarge:
		s.reject(w, hook, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d KiB", maxPipelineBody>>10))
		return
	}
	sig, ts, delivery := r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderDelivery)
	if sig == "" || ts == "" || delivery == "" {
		s.reject(w, hook, http.StatusUnauthorized, reasonMissingSignature,
			fmt.Sprintf("missing signature: send %s, %s and %s", HeaderSignature, HeaderTimestamp, HeaderDelivery))
		return
	}
	want := Sign([]byte(h.Secret.Reveal()), ts, delivery, body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		s.reject(w, hook, http.StatusUnauthorized, reasonBadSignature, "bad signature")
		return
	}
	now := s.opts.Now()
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		s.reject(w, hook, http.StatusUnauthorized, reasonStale, HeaderTimestamp+" is not Unix seconds")
		return
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > h.MaxSkew || skew < -h.MaxSkew {
		s.reject(w, hook, http.StatusUnauthorized, reasonStale,
			fmt.Sprintf("timestamp %s off by more than %s: sign each delivery when it is sent, and check the clocks", ts, h.MaxSkew))
		return
	}
	if !deliveryIDPattern.MatchString(delivery) {
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, HeaderDelivery+" must be 8 to 128 letters, digits, '.', '_', ':' or '-' (e.g. a UUID)")
		return
	}
	e, msg := pipelineEvent(body)
	if msg != "" {
		s.reject(w, hook, http.StatusBadRequest, reasonMalformed, msg)
		return
	}
	fresh, err := s.store.useDelivery(r.Context(), delivery, now, now.Add(-2*h.MaxSkew))
	if err != nil {
		s.opts.Log.WithError(err).Error("recording a pipeline delivery failed")
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the delivery could not be stored; sign and send it again"})
		return
	}
	if !fresh {
		s.reject(w, hook, http.StatusUnauthorized, reasonReplayed, "replayed delivery: this delivery id was already used")
		return
	}
	res, err := s.Notify(r.Context(), e)
	if err != nil {
		s.opts.Log.WithError(err).WithField("key", e.Key).Error("storing a pipeline halt failed")
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the halt could not be stored; sign and send it again with a new delivery id"})
		return
	}
	answer(w, http.StatusOK, map[string]any{"result": res})
}

// pipelineEvent validates a notice and returns its event, or what is wrong.
func pipelineEvent(body []byte) (Event, string) {
	var n pipelineNotice
	if err := decodeStrict(body, &n); err != nil {
		return Event{}, "body is not a halt notice: " + err.Error()
	}
	var problems []string
	if n.ID == "" || len(n.ID) > maxID || strings.IndexFunc(n.ID, unicode.IsControl) >= 0 {
		problems = append(problems, fmt.Sprintf("id: want 1 to %d printable characters", maxID))
	}
	if n.Status != "firing" && n.Status != "resolved" {
		problems = append(problems, fmt.Sprintf("status %q: want firing or resolved", clip(n.Status, 40)))
	}
	scope, msg := parseScope(n.Scope)
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
		return Event{}, strings.Join(problems, "; ")
	}
	return Event{
		Source: SourcePipeline, Key: "pipeline/" + n.ID, Name: nonEmpty(oneLine(n.Name), "release pipeline"),
		Scope: scope, Reason: n.Reason, URL: n.URL, Firing: n.Status == "firing",
	}, ""
}

// parseScope reads "dc ams01", "datacenter ams01", "group europe" or
// "minion web-01".
func parseScope(s string) (triage.Scope, string) {
	words := strings.Fields(s)
	if len(words) != 2 {
		return triage.Scope{}, fmt.Sprintf("%q: want KIND NAME, e.g. \"dc ams01\", \"group europe\" or \"minion web-01\"", clip(s, 80))
	}
	kind, ok := commands.Kind(words[0])
	if !ok {
		return triage.Scope{}, fmt.Sprintf("kind %q: want dc, datacenter, group or minion", clip(words[0], 40))
	}
	if msg := checkScopeName(words[1]); msg != "" {
		return triage.Scope{}, "name " + msg
	}
	if kind == triage.ScopeMinion {
		if err := triage.ValidateMinionID(words[1]); err != nil {
			return triage.Scope{}, err.Error()
		}
	}
	return triage.Scope{Kind: kind, Name: words[1]}, ""
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// scopeKinds are the kinds a source's configuration may name.
var scopeKinds = []triage.ScopeKind{triage.ScopeMinion, triage.ScopeDatacenter, triage.ScopeGroup}

func validKind(k triage.ScopeKind) bool { return slices.Contains(scopeKinds, k) }
