package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/postgres"
	"github.com/sift-chatops/sift/halts/sqlite"
)

// The stores halts.store selects.
var (
	_ halts.Store = (*sqlite.Store)(nil)
	_ halts.Store = (*postgres.Store)(nil)
)

// secretGetter reads a secret of the configuration (secretstore.Store).
type secretGetter interface {
	Get(ctx context.Context, key string) (config.Secret, error)
}

// openStore opens the store halts.store names: the PostgreSQL database of
// a postgres:// URL, with halts.store_password, or else the SQLite file.
// readOnly opens it for `sift history`: nothing is created or migrated.
func openStore(ctx context.Context, c *config.Config, secrets secretGetter, readOnly bool) (halts.Store, error) {
	h := c.Halts
	if !config.IsPostgresStore(h.Store) {
		if readOnly {
			return sqlite.OpenReadOnly(ctx, h.Store)
		}
		s, err := sqlite.Open(ctx, h.Store)
		return s, storeOpenError(err)
	}
	var password string
	if _, ok := c.SecretRef(config.StorePasswordKey); ok {
		pw, err := secrets.Get(ctx, config.StorePasswordKey)
		if err != nil {
			return nil, err
		}
		password = pw.Reveal()
	}
	return postgres.Open(ctx, h.Store, postgres.Options{Password: password, ReadOnly: readOnly})
}

// storeOpenError adds the fix to a SQLite store that could not be created
// for want of permission: in the container, the store's directory is
// written by the image's user, and a host directory mounted there
// usually belongs to someone else.
func storeOpenError(err error) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return fmt.Errorf("%w (the store's directory must be writable by the user Sift runs as, uid %d: "+
		"in the container, mount a named volume at /var/lib/sift, or chown the mounted host directory to 65532)", err, os.Getuid())
}

// pinger is a store whose database can be down while Sift runs.
type pinger interface {
	Ping(ctx context.Context) error
}

// storePingTimeout bounds one check of the store; storeCheckInterval is
// how often it is checked.
const (
	storePingTimeout   = 2 * time.Second
	storeCheckInterval = 2 * time.Second
)

// storeHealth follows whether the store answers, for /readyz: a replica
// whose database is down says so, so that rollouts and load balancers
// wait, while it goes on answering in Slack.
type storeHealth struct {
	store pinger
	log   logrus.FieldLogger
	// last is the failure of the last check; nil when it passed.
	last atomic.Pointer[error]
}

// newStoreHealth follows s when it can be pinged; nil for a store that
// lives in the process (SQLite), which cannot be down while Sift runs.
func newStoreHealth(s halts.Store, log logrus.FieldLogger) *storeHealth {
	p, ok := s.(pinger)
	if !ok {
		return nil
	}
	return &storeHealth{store: p, log: log}
}

// Check returns why the store is not ready, or nil: a readiness check
// (metrics.AddReadiness).
func (h *storeHealth) Check() error {
	if p := h.last.Load(); p != nil {
		return *p
	}
	return nil
}

// Run checks the store now and at every tick until ctx ends.
func (h *storeHealth) Run(ctx context.Context, tick <-chan time.Time) error {
	for {
		h.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

func (h *storeHealth) check(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, storePingTimeout)
	err := h.store.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if h.last.Swap(nil) != nil {
			h.log.Info("the store answers again: ready")
		}
		return
	}
	down := fmt.Errorf("the store does not answer: %w", err)
	if h.last.Swap(&down) == nil {
		h.log.WithError(err).Warn("the store does not answer: not ready")
	}
}
