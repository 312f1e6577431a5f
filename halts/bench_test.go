package halts_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
)

// BenchmarkNotifyAgain is the cost of a repeated firing notice, the common
// case: Alertmanager and rules repeat a firing halt until it clears.
func BenchmarkNotifyAgain(b *testing.B) {
	r := newRigB(b)
	ctx := context.Background()
	if _, err := r.svc.Notify(ctx, firing("pipeline/bench", "ams01")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.svc.Notify(ctx, firing("pipeline/bench", "ams01")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelineHook is the cost of one signed delivery: signature,
// validation, replay check and store, through the HTTP handler.
func BenchmarkPipelineHook(b *testing.B) {
	r := newRigB(b)
	hook := &halts.PipelineHook{Service: r.svc, Secret: config.Secret(testSecret), MaxSkew: time.Minute}
	body := []byte(pipelineFiring)
	i := 0
	for b.Loop() {
		i++
		delivery := "bench-delivery-" + strconv.Itoa(i)
		req := httptest.NewRequest(http.MethodPost, halts.PipelinePath, bytes.NewReader(body))
		for k, v := range signed(testSecret, delivery, r.clock.Now(), body) {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		hook.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("delivery %d: %d %s", i, w.Code, w.Body)
		}
	}
}

// newRigB is a rig for benchmarks: a store in a temporary directory and
// a service that logs nothing.
func newRigB(b *testing.B) *rig {
	b.Helper()
	path := b.TempDir() + "/sift.db"
	s, err := halts.OpenStore(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	r := &rig{t: b, path: path, clock: newClock(), triager: &fakeTriager{}, poster: newPoster(), store: s}
	r.svc = halts.NewService(s, r.triager, r.poster, halts.Options{Channel: testChannel, Now: r.clock.Now})
	return r
}
