package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"
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
}

func (s *flakyStore) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
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
	store := &flakyStore{}
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	h := newStoreHealth(store, log)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, tick) }()
	// Run takes a tick only between two checks: once a second tick is
	// taken, the check the first one started is done.
	settle := func() {
		tick <- time.Time{}
		tick <- time.Time{}
	}
	step := func(down bool) bool {
		store.set(down)
		settle()
		return h.Check() == nil
	}
	settle()
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

func TestStoreOpenErrorNamesTheFix(t *testing.T) {
	denied := &fs.PathError{Op: "open", Path: "/var/lib/sift/sift.db", Err: syscall.EACCES}
	err := storeOpenError(fmt.Errorf("store /var/lib/sift/sift.db: %w", denied))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied (the store's directory must be writable") ||
		!strings.Contains(err.Error(), "mount a named volume at /var/lib/sift") {
		t.Errorf("got %v", err)
	}
	other := errors.New("store: disk I/O error")
	if got := storeOpenError(other); got != other {
		t.Errorf("another error changed: %v", got)
	}
	if storeOpenError(nil) != nil {
		t.Error("nil became an error")
	}
}
