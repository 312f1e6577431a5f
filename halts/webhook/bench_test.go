package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// benchRig is a service over a fresh store that logs nothing, and its hooks.
func benchRig(b *testing.B) (*haltstest.Rig, *webhook.AlertmanagerHook, *webhook.PipelineHook) {
	b.Helper()
	r := haltstest.NewRig(b, haltstest.NewPoster())
	r.Log.SetOutput(io.Discard)
	r.Options.CoalesceWindow = 10 * time.Minute
	r.Svc = halts.NewService(r.Store, r.Triager, r.Poster, r.Options)
	refusals := webhook.NewRefusals(r.Log, nil, r.Clock.Now)
	am := &webhook.AlertmanagerHook{Notifier: r.Svc, ScopeLabel: "datacenter", ScopeKind: triage.ScopeDatacenter,
		Auth: &webhook.Auth{BearerToken: config.Secret(testToken)}, Refusals: refusals, Now: r.Clock.Now}
	pl := &webhook.PipelineHook{Notifier: r.Svc, Deliveries: r.Store, Secret: config.Secret(testSecret), MaxSkew: time.Minute,
		Refusals: refusals, Now: r.Clock.Now}
	return r, am, pl
}

// realisticGroup is an Alertmanager group as a real rule sends it: labels
// and annotations that vary per alert, a long description, a generator URL.
func realisticGroup(n int, at time.Time) []byte {
	var alerts []map[string]any
	for i := range n {
		dc := fmt.Sprintf("dc%02d", i%7)
		alerts = append(alerts, map[string]any{
			"status": "firing",
			"labels": map[string]string{"alertname": "SaltHighstateFailures", "datacenter": dc, "severity": "page",
				"instance": fmt.Sprintf("salt-master-%02d.%s.example.com:9100", i%3, dc), "job": "salt", "team": "platform"},
			"annotations": map[string]string{
				"summary":     fmt.Sprintf("Salt highstate failures above 20%% in %s (%d%%)", dc, 21+i%60),
				"description": strings.Repeat(fmt.Sprintf("Minion web%03d.%s failed state file.managed /etc/nginx/nginx.conf: Source file salt://nginx/files/nginx.conf not found in saltenv base. ", i, dc), 3),
				"runbook_url": "https://runbooks.example.com/salt/highstate-failures",
			},
			"startsAt":     at.Add(-time.Duration(i) * time.Second).Format(time.RFC3339Nano),
			"endsAt":       "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=salt_highstate_failed_ratio+%3E+0.2&g0.tab=1",
			"fingerprint":  fmt.Sprintf("%016x", 0xabc000+i),
		})
	}
	b, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "sift", "groupKey": "{}:{alertname=\"SaltHighstateFailures\"}",
		"groupLabels": map[string]string{"alertname": "SaltHighstateFailures"}, "externalURL": "http://alertmanager.example.com:9093", "alerts": alerts})
	return b
}

// BenchmarkAlertmanagerHook is the cost of one authenticated notification
// of a group of 20 realistic alerts that are already open: Alertmanager
// repeats a group every group_interval while it fires.
func BenchmarkAlertmanagerHook(b *testing.B) {
	r, am, _ := benchRig(b)
	const group = 20
	body := realisticGroup(group, r.Clock.Now())
	serve := func() {
		req := httptest.NewRequest(http.MethodPost, webhook.AlertmanagerPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		am.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	serve()
	start := time.Now()
	for b.Loop() {
		serve()
	}
	b.ReportMetric(float64(b.N*group)/time.Since(start).Seconds(), "alerts/s")
	b.ReportMetric(float64(len(body)), "body-bytes")
}

// BenchmarkPipelineHook is the cost of one signed delivery: signature,
// validation, replay check and store, through the HTTP handler.
func BenchmarkPipelineHook(b *testing.B) {
	r, _, pl := benchRig(b)
	body := []byte(pipelineFiring)
	i := 0
	for b.Loop() {
		i++
		delivery := "bench-delivery-" + strconv.Itoa(i)
		req := httptest.NewRequest(http.MethodPost, webhook.PipelinePath, bytes.NewReader(body))
		for k, v := range signed(testSecret, delivery, r.Clock.Now(), body) {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		pl.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("delivery %d: %d %s", i, w.Code, w.Body)
		}
	}
}

// BenchmarkFlood is the acceptance flood: 20 000 distinct alerts over 500
// scopes in one request, into an empty store. It reports the handler's
// wall time (the answer goes back once everything is stored), the peak
// heap while it runs, and the halts it leaves to triage.
func BenchmarkFlood(b *testing.B) {
	const alerts, scopes = 20000, 500
	var peak uint64
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		r, am, _ := benchRig(b)
		body := floodBody(alerts, scopes, r.Clock.Now().Add(-time.Minute))
		req := httptest.NewRequest(http.MethodPost, webhook.AlertmanagerPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var top uint64
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				top = max(top, m.HeapInuse)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		am.ServeHTTP(w, req)
		total += time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"new":500`) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		peak = max(peak, top-min(top, base.HeapInuse))
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/flood")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(len(floodBody(alerts, scopes, time.Now())))/(1<<20), "body-MiB")
}

// BenchmarkFloodResolved is the flood's end: the resolution of the 20 000
// alerts in one request.
func BenchmarkFloodResolved(b *testing.B) {
	const alerts, scopes = 20000, 500
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		r, am, _ := benchRig(b)
		body := floodBody(alerts, scopes, r.Clock.Now().Add(-time.Minute))
		for _, status := range []string{"firing", "resolved"} {
			if status == "resolved" {
				body = bytes.ReplaceAll(body, []byte(`"status":"firing"`), []byte(`"status":"resolved"`))
			}
			req := httptest.NewRequest(http.MethodPost, webhook.AlertmanagerPath, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			w := httptest.NewRecorder()
			start := time.Now()
			if status == "resolved" {
				b.StartTimer()
			}
			am.ServeHTTP(w, req)
			if status == "resolved" {
				b.StopTimer()
				total += time.Since(start)
			}
			if w.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", status, w.Code, w.Body)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/resolution")
}
