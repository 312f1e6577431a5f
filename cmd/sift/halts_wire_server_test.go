package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlowClientsAreShed is the slow-connection attack: many clients on
// 127.0.0.1 open connections and send part of a request's headers, then
// hold them. The server keeps at most its cap open, and /healthz answers
// while every slow client still holds on. The header timeout is set far
// beyond the test, so only the shedding can make room.
func TestSlowClientsAreShed(t *testing.T) {
	const hardMax, slow = 64, 300
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := newShedListener(ln, hardMax)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := newServer(mux)
	srv.ReadHeaderTimeout, srv.ReadTimeout = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveShedding(ctx, sl, srv) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range slow {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: sift\r\nX-Slow: 1")); err != nil {
			t.Fatal(err)
		}
	}
	// Every slow client reached the server (bounded wait, no timing).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, accepted := sl.open(); accepted >= slow {
			break
		}
		if time.Now().After(deadline) {
			_, accepted := sl.open()
			t.Fatalf("the server accepted %d of %d slow clients", accepted, slow)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if open, _ := sl.open(); open > hardMax-shedHeadroom {
		t.Errorf("%d connections open, want at most %d", open, hardMax-shedHeadroom)
	}
	// A health probe answers while the slow clients hold on.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("/healthz under the attack: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
}

// TestServerLimits: the hook and metrics server has every timeout and a
// header cap.
func TestServerLimits(t *testing.T) {
	srv := newServer(http.NewServeMux())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("server limits %v %v %v %v %d: want every timeout set and headers capped", srv.ReadHeaderTimeout, srv.ReadTimeout,
			srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}
