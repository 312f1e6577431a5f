package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sift-chatops/sift/metrics"
)

func TestAddReadiness(t *testing.T) {
	m := metrics.New(metrics.Options{})
	var notReady error
	m.AddReadiness(func() error { return notReady })
	srv := httptest.NewServer(m.Handler(func() bool { return true }))
	defer srv.Close()
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
	notReady = errors.New("secret slack.bot_token expired")
	if code, body := get(); code != http.StatusServiceUnavailable || body != "not ready: secret slack.bot_token expired\n" {
		t.Errorf("/readyz = %d %q, want 503 naming the condition", code, body)
	}
}
