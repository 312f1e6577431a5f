package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/metrics"
	"github.com/sift-chatops/sift/promapi"
	"github.com/sift-chatops/sift/triage"
)

// The bot posts the halts, and finds a halt's post after a restart so
// that it is never posted twice.
var (
	_ halts.Poster     = (*bot.Bot)(nil)
	_ halts.PostFinder = (*bot.Bot)(nil)
)

// storeTimeout bounds a store write made for a hook (a Slack triage, a scrape).
const storeTimeout = 5 * time.Second

// automation is what sift serve runs beside the bot: the Prometheus
// endpoint, the halt store and sources, and their HTTP listeners.
type automation struct {
	c       *config.Config
	log     logrus.FieldLogger
	metrics *metrics.Metrics
	// store is nil when the configuration has no halts section.
	store   *halts.Store
	triager halts.Triager
}

// newAutomation builds the metrics and opens the store, seeding the
// repeat-offender tally from the triages it holds.
func newAutomation(ctx context.Context, c *config.Config, log logrus.FieldLogger) (*automation, error) {
	a := &automation{c: c, log: log, metrics: metrics.New(metrics.Options{Masters: c.MasterNames()})}
	if c.Halts == nil {
		return a, nil
	}
	store, err := halts.OpenStore(ctx, c.Halts.Store)
	if err != nil {
		return nil, err
	}
	a.store = store
	counts, err := store.StateCounts(ctx, time.Time{})
	if err != nil {
		store.Close()
		return nil, err
	}
	a.metrics.Offenders().Seed(counts)
	a.metrics.HaltsFiring(func() (map[string]int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		return store.FiringCounts(ctx)
	})
	return a, nil
}

// close closes the store.
func (a *automation) close() {
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.WithError(err).Warn("closing the store failed")
		}
	}
}

// useTriager sets the Triager of the halts' triages.
func (a *automation) useTriager(t halts.Triager) { a.triager = t }

// saltResponse counts a salt-api exchange (saltapi.Config.OnResponse).
func (a *automation) saltResponse(master string, status int) {
	a.metrics.SaltAPIResponse(master, status)
}

// slackError counts a failed Slack call (bot.Deps.OnSlackError).
func (a *automation) slackError(method, code string) { a.metrics.SlackError(method, code) }

// slackTriage counts a triage the bot ran and keeps it in the store
// (bot.Deps.OnTriage).
func (a *automation) slackTriage(s triage.Scope, r *triage.Report, err error, d time.Duration) {
	a.metrics.ObserveTriage(s, r, err, d)
	if a.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, serr := a.store.RecordTriage(ctx, halts.NewTriageRecord(halts.OriginSlack, s, r, err, d, time.Now().Add(-d))); serr != nil {
		a.log.WithError(serr).Warn("recording the triage failed")
	}
}

// start opens the listeners and starts the halt service and sources in g.
// b posts the halts and says whether Sift is ready. Nothing is started
// when it returns an error.
func (a *automation) start(ctx context.Context, g *errgroup.Group, b *bot.Bot) error {
	var runs []func() error
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if addr := a.c.Metrics.Listen; addr != "" {
		a.metrics.Register(mux(addr), b.Ready)
	}
	if h := a.c.Halts; h.Active() {
		svc := halts.NewService(a.store, a.triager, b, halts.Options{
			Channel: h.Channel, StillFailingInterval: h.StillFailingInterval,
			OnTriage: a.metrics.ObserveTriage, Observer: a.metrics, Log: a.log.WithField("component", "halts"),
		})
		runs = append(runs, func() error { return svc.Run(ctx) })
		if len(h.Rules) > 0 {
			client, err := promapi.New(h.PrometheusURL, nil)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			rules := make([]halts.Rule, 0, len(h.Rules))
			for _, r := range h.Rules {
				rules = append(rules, halts.Rule{Name: r.Name, Schedule: r.Schedule, Query: r.Query, ScopeLabel: r.ScopeLabel, ScopeKind: triage.ScopeKind(r.ScopeKind)})
			}
			sched, err := halts.NewRules(svc, client, rules, h.PrometheusURL)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			runs = append(runs, func() error { return sched.Run(ctx) })
		}
		if h.Alertmanager.Enabled {
			mux(h.Listen).Handle("POST "+halts.AlertmanagerPath, &halts.AlertmanagerHook{
				Service: svc, ScopeLabel: h.Alertmanager.ScopeLabel, ScopeKind: triage.ScopeKind(h.Alertmanager.ScopeKind),
			})
		}
		if h.Pipeline.Enabled {
			mux(h.Listen).Handle("POST "+halts.PipelinePath, &halts.PipelineHook{Service: svc, Secret: h.Pipeline.Secret, MaxSkew: h.Pipeline.MaxSkew})
		}
	}
	var lns []net.Listener
	for addr, m := range muxes {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		lns = append(lns, ln)
		a.log.WithField("addr", ln.Addr().String()).Info("http listener started")
		runs = append(runs, func() error { return serveHTTP(ctx, ln, m) })
	}
	for _, run := range runs {
		g.Go(run)
	}
	return nil
}

// shutdownTimeout bounds the wait for requests under way when Sift stops.
const shutdownTimeout = 5 * time.Second

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("http %s: %w", ln.Addr(), err)
	}
	return nil
}
