package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/sqlite"
)

// flakyStore is a store whose database answers or not, as the test says.
type flakyStore struct {
	halts.Store
	mu   sync.Mutex
	down bool
	// pinged receives after each Ping.
	pinged chan struct{}
}

func (s *flakyStore) Ping(context.Context) error {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	defer func() { s.pinged <- struct{}{} }()
	if down {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return nil
}

func (s *flakyStore) set(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func TestStoreHealth(t *testing.T) {
	store := &flakyStore{pinged: make(chan struct{})}
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	h := newStoreHealth(store, log)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, tick) }()
	step := func(down bool) bool {
		store.set(down)
		tick <- time.Time{}
		<-store.pinged
		return h.Check() == nil
	}
	<-store.pinged // the first check, at start
	if h.Check() != nil {
		t.Error("not ready with the store up")
	}
	if step(true) || step(true) {
		t.Error("ready with the store down")
	}
	if err := h.Check(); err == nil || !strings.Contains(err.Error(), "the store does not answer: dial tcp") {
		t.Errorf("Check = %v, want why the store is not ready", err)
	}
	if !step(false) {
		t.Error("not ready once the store is back")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// One line when it goes down, one when it is back: not one per check.
	if n := strings.Count(logs.String(), "the store does not answer"); n != 1 {
		t.Errorf("%d warnings for one outage:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "the store answers again"); n != 1 {
		t.Errorf("%d recoveries logged:\n%s", n, logs.String())
	}
}

func TestStoreHealthOfAnEmbeddedStore(t *testing.T) {
	s, err := sqlite.Open(t.Context(), t.TempDir()+"/sift.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h := newStoreHealth(s, logrus.New()); h != nil {
		t.Errorf("SQLite: health %v, want none (always ready)", h)
	}
}
