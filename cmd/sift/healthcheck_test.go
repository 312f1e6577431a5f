package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not connected to slack", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/healthz", http.StatusFound) })
	release := make(chan struct{})
	mux.HandleFunc("/stuck", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	// A port nothing listens on: taken, then freed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"healthy", []string{"--url", srv.URL + "/healthz"}, 0, "healthy: " + srv.URL + "/healthz 200 OK", ""},
		{"not ready", []string{"--url", srv.URL + "/readyz"}, 1, "", "answered 503 Service Unavailable"},
		{"a redirect is not health", []string{"--url", srv.URL + "/moved"}, 1, "", "answered 302 Found"},
		{"nothing listens", []string{"--url", closed}, 1, "", "connection refused"},
		{"no answer in time", []string{"--url", srv.URL + "/stuck", "--timeout", "50ms"}, 1, "", "no answer within 50ms"},
		{"not a URL", []string{"--url", "127.0.0.1:9184/healthz"}, 1, "", "is not an http or https URL"},
		{"bad flag", []string{"--port", "9184"}, 1, "", "flag provided but not defined: -port"},
		{"bad timeout", []string{"--timeout", "0s"}, 1, "", "use a positive duration"},
		{"stray argument", []string{srv.URL}, 1, "", "unexpected arguments"},
		{"help", []string{"--help"}, 0, "", "Usage: sift healthcheck"},
		{"credentials are not printed", []string{"--url", "http://user:hunter2@" + strings.TrimPrefix(closed, "http://")}, 1, "", "user:xxxxx@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sift(t, "", append([]string{"healthcheck"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "hunter2") {
				t.Errorf("the URL's password was printed: %s%s", r.stdout, r.stderr)
			}
		})
	}
}
