package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/rules"
	"github.com/sift-chatops/sift/halts/webhook"
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

// offenderSeedWindow is how far back the stored triages seed the
// repeat-offender tally at startup: a bounded read, whatever the store holds.
const offenderSeedWindow = 30 * 24 * time.Hour

// rulesLease is how long the leadership of the rules lasts between renewals.
const rulesLease = time.Minute

// automation is what sift serve runs beside the bot: the Prometheus
// endpoint, the halt store and sources, and their HTTP listeners.
type automation struct {
	c       *config.Config
	log     logrus.FieldLogger
	metrics *metrics.Metrics
	// store is nil when the configuration has no halts section.
	store halts.Store
	// storeHealth follows a store that can be down (PostgreSQL); nil otherwise.
	storeHealth *storeHealth
	triager     halts.Triager
}

// newAutomation builds the metrics and opens the store, seeding the
// repeat-offender tally from the triages it holds.
func newAutomation(ctx context.Context, c *config.Config, secrets secretGetter, log logrus.FieldLogger) (*automation, error) {
	a := &automation{c: c, log: log, metrics: metrics.New(metrics.Options{Masters: c.MasterNames()})}
	if c.Halts == nil {
		return a, nil
	}
	store, err := openStore(ctx, c, secrets, false)
	if err != nil {
		return nil, err
	}
	a.store = store
	if a.storeHealth = newStoreHealth(store, log.WithField("component", "store")); a.storeHealth != nil {
		a.metrics.AddReadiness(a.storeHealth.Check)
	}
	counts, err := store.StateCounts(ctx, time.Now().Add(-offenderSeedWindow))
	if err != nil {
		store.Close()
		return nil, err
	}
	a.metrics.Offenders().Seed(counts)
	a.metrics.HaltsFiring(func() (map[halts.Source]int, error) {
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
	if _, serr := a.store.RecordTriage(ctx, halts.NewTriageRecord(halts.OriginSlack, s, r, err, d, time.Now().Add(-d), metrics.Classify)); serr != nil {
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
	if a.storeHealth != nil {
		runs = append(runs, func() error {
			t := time.NewTicker(storeCheckInterval)
			defer t.Stop()
			return a.storeHealth.Run(ctx, t.C)
		})
	}
	if h := a.c.Halts; h.Active() {
		log := a.log.WithField("component", "halts")
		owner := replicaID()
		svc := halts.NewService(a.store, a.triager, b, halts.Options{
			Channel: h.Channel, StillFailingInterval: h.StillFailingInterval,
			CoalesceWindow: h.CoalesceWindow, MaxPostsPerHour: h.MaxPostsPerHour, Retention: h.StoreRetention,
			Owner: owner, OnTriage: a.metrics.ObserveTriage, Classify: metrics.Classify, Observer: a.metrics, Log: log,
		})
		runs = append(runs, func() error { return svc.Run(ctx) })
		if len(h.Rules) > 0 {
			client, err := promapi.New(h.PrometheusURL, nil)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			rs := make([]rules.Rule, 0, len(h.Rules))
			for _, r := range h.Rules {
				rs = append(rs, rules.Rule{Name: r.Name, Schedule: r.Schedule, Query: r.Query, ScopeLabel: r.ScopeLabel, ScopeKind: triage.ScopeKind(r.ScopeKind)})
			}
			lead := func(ctx context.Context) (bool, error) {
				return a.store.Lead(ctx, "rules", owner, time.Now(), rulesLease)
			}
			sched, err := rules.New(svc, client, rs, rules.Options{PrometheusURL: h.PrometheusURL, Leader: lead, Log: log})
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			runs = append(runs, func() error { return sched.Run(ctx) })
		}
		refusals := webhook.NewRefusals(log, a.metrics, time.Now)
		if am := h.Alertmanager; am.Enabled {
			auth := &webhook.Auth{BearerToken: am.BearerToken, Username: am.BasicAuth.Username, Password: am.BasicAuth.Password}
			if !auth.Configured() {
				if !am.InsecureNoAuth {
					// Validate refuses this configuration; a Config built
					// another way must not open the hook to anyone either.
					return &exitError{code: exitUsage, err: errors.New("halts.alertmanager: no credentials and insecure_no_auth is not set")}
				}
				auth = nil
				log.WithField("listen", h.Listen).Warn("the Alertmanager hook accepts requests without credentials (insecure_no_auth)")
			}
			mux(h.Listen).Handle("POST "+webhook.AlertmanagerPath, &webhook.AlertmanagerHook{
				Notifier: svc, ScopeLabel: am.ScopeLabel, ScopeKind: triage.ScopeKind(am.ScopeKind),
				Auth: auth, Refusals: refusals, Now: time.Now,
			})
		}
		if h.Pipeline.Enabled {
			mux(h.Listen).Handle("POST "+webhook.PipelinePath, &webhook.PipelineHook{
				Notifier: svc, Deliveries: a.store, Secret: h.Pipeline.Secret, MaxSkew: h.Pipeline.MaxSkew, Refusals: refusals, Now: time.Now,
			})
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

// Limits of the hook and metrics server, so that slow or idle clients are
// shed: a request has readTimeout to arrive whole (a 4 MiB Alertmanager
// group on a slow link included), an answer writeTimeout to leave (a
// large /metrics scrape included), a kept-alive connection idleTimeout to
// be reused.
const (
	maxConnections    = 256
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// newServer is the hook and metrics server, with its limits.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
	}
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully.
// At most maxConnections are open at once, and slow clients are shed
// first (shedListener): a flood of them cannot take the file descriptors
// nor keep /healthz and the hooks from answering.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serveShedding(ctx, newShedListener(ln, maxConnections), newServer(h))
}

// serveShedding serves srv on sl until ctx ends, then shuts down gracefully.
func serveShedding(ctx context.Context, sl *shedListener, srv *http.Server) error {
	ln := net.Listener(sl)
	srv.ConnState = sl.connState
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

// replicaID names this process in the store's claims and leases.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
