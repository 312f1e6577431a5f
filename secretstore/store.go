// Package secretstore keeps the current value of each secret Sift uses and
// reads them again on a schedule and on demand (SIGHUP, a credential
// refused), so a rotated Slack token or salt-api password is picked up
// without a restart. When a source cannot be read the last good value is
// kept; a secret whose last good read is older than the configured
// staleness bound has expired, and the store reports not ready.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/config"
)

// Resolver reads one secret; *config.Config is one.
type Resolver interface {
	ResolveSecret(ctx context.Context, key string, vault config.VaultReader) (config.Resolved, error)
}

// Options configure a Store.
type Options struct {
	// Vault reads *_vault references; nil when none is configured.
	Vault config.VaultReader
	// MaxStaleness is how long a last good value serves while its source
	// cannot be read; 0 means forever.
	MaxStaleness time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	Log logrus.FieldLogger
}

// Store holds the secrets read so far. It is safe for concurrent use; no
// lock is held while a source is read or a listener called.
type Store struct {
	r    Resolver
	opts Options

	mu      sync.Mutex
	entries map[string]*entry
	subs    []func(key string)
	// reading serialises reads of one key, so a burst of 401s makes one
	// re-read and not one each.
	reading map[string]*sync.Mutex

	readErrors *prometheus.CounterVec
	changes    *prometheus.CounterVec
	age        *prometheus.Desc
	expired    *prometheus.Desc
}

type entry struct {
	value   config.Secret
	from    string
	version int
	// goodAt is when value was last read successfully; lastErr the error of
	// the latest read, nil when it succeeded.
	goodAt  time.Time
	lastErr error
}

// New returns an empty store reading through r.
func New(r Resolver, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		l := logrus.New()
		l.Out = discard{}
		opts.Log = l
	}
	return &Store{
		r: r, opts: opts,
		entries: map[string]*entry{},
		reading: map[string]*sync.Mutex{},
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_secret_read_errors_total",
			Help: "Failed reads of a secret's source, by secret key; the last good value stays in use.",
		}, []string{"secret"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_secret_changes_total",
			Help: "Times a secret was read with a new value (a rotation), by secret key.",
		}, []string{"secret"}),
		age: prometheus.NewDesc("sift_secret_age_seconds",
			"Seconds since the secret's value was last read successfully, by secret key.", []string{"secret"}, nil),
		expired: prometheus.NewDesc("sift_secrets_expired",
			"Secrets whose last good value is older than vault.max_staleness; Sift is not ready while it is above 0.", nil, nil),
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// OnChange registers fn, called with a secret's key after a read returned
// a value different from the one held. fn runs on the reading goroutine.
func (s *Store) OnChange(fn func(key string)) {
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
}

// Get returns the secret at key, reading it on first use.
func (s *Store) Get(ctx context.Context, key string) (config.Secret, error) {
	s.mu.Lock()
	e, ok := s.entries[key]
	var v config.Secret
	if ok {
		v = e.value
	}
	s.mu.Unlock()
	if ok && v != "" {
		return v, nil
	}
	v, _, err := s.Reread(ctx, key)
	return v, err
}

// Reread reads the secret at key from its source now. On failure it
// returns the error and the last good value, if any, which stays in use.
// changed reports a new value.
func (s *Store) Reread(ctx context.Context, key string) (v config.Secret, changed bool, err error) {
	lock := s.keyLock(key)
	lock.Lock()
	defer lock.Unlock()

	res, err := s.r.ResolveSecret(ctx, key, s.opts.Vault)
	now := s.opts.Now()
	s.mu.Lock()
	e := s.entries[key]
	if e == nil {
		e = &entry{}
		s.entries[key] = e
	}
	if err != nil {
		e.lastErr = err
		v = e.value
		s.mu.Unlock()
		s.readErrors.WithLabelValues(key).Inc()
		return v, false, err
	}
	changed = e.value != "" && e.value != res.Value
	first := e.goodAt.IsZero()
	e.value, e.from, e.version, e.goodAt, e.lastErr = res.Value, res.From, res.Version, now, nil
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	if first {
		for _, w := range res.Warnings {
			s.opts.Log.WithFields(logrus.Fields{"secret": key, "problem": w}).Warn("secret source is not private")
		}
	}
	if changed {
		s.changes.WithLabelValues(key).Inc()
		s.opts.Log.WithFields(logrus.Fields{"secret": key, "from": res.From}).Info("secret changed")
		for _, fn := range subs {
			fn(key)
		}
	}
	return res.Value, changed, nil
}

func (s *Store) keyLock(key string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.reading[key]
	if !ok {
		l = &sync.Mutex{}
		s.reading[key] = l
	}
	return l
}

// Refresh reads every secret read so far again, keeping last good values
// of those that fail; it returns the failures joined.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if _, _, err := s.Reread(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		s.opts.Log.WithError(err).Warn("secrets not refreshed, last good values stay in use")
	}
	return err
}

// Run refreshes the secrets at every tick and every signal on reload
// (SIGHUP) until ctx ends. Either channel may be nil.
func (s *Store) Run(ctx context.Context, tick <-chan time.Time, reload <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-reload:
			s.opts.Log.Info("reloading secrets")
		}
		_ = s.Refresh(ctx)
	}
}

// Status is what the store knows of one secret, for /readyz and logs; it
// holds no value.
type Status struct {
	Key     string
	From    string
	Version int
	// Age is the time since the last good read.
	Age time.Duration
	// Err is the latest read's error, nil when it succeeded.
	Err error
	// Expired means the last good value is older than MaxStaleness and
	// the source still cannot be read.
	Expired bool
}

// Statuses returns the status of every secret read so far, by key.
func (s *Store) Statuses() []Status {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.entries))
	for k, e := range s.entries {
		st := Status{Key: k, From: e.from, Version: e.version, Err: e.lastErr}
		if !e.goodAt.IsZero() {
			st.Age = now.Sub(e.goodAt)
		}
		st.Expired = e.lastErr != nil && (e.value == "" ||
			(s.opts.MaxStaleness > 0 && st.Age > s.opts.MaxStaleness))
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// Ready returns an error naming the secrets that have expired: their last
// good value is too old and their source cannot be read.
func (s *Store) Ready() error {
	var errs []error
	for _, st := range s.Statuses() {
		if st.Expired {
			errs = append(errs, fmt.Errorf("secret %s expired: last read %s ago: %w", st.Key, st.Age.Round(time.Second), st.Err))
		}
	}
	return errors.Join(errs...)
}

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	s.readErrors.Describe(ch)
	s.changes.Describe(ch)
	ch <- s.age
	ch <- s.expired
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.readErrors.Collect(ch)
	s.changes.Collect(ch)
	expired := 0
	for _, st := range s.Statuses() {
		if st.Expired {
			expired++
		}
		if st.Age > 0 || st.Err == nil {
			ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, st.Age.Seconds(), st.Key)
		}
	}
	ch <- prometheus.MustNewConstMetric(s.expired, prometheus.GaugeValue, float64(expired))
}
