// Package metrics is Sift's Prometheus endpoint: what its triages find
// (root causes by kind, repeat-offender states), how they run (outcome,
// duration), the calls it makes to salt-api and Slack, and the halts it
// watches. Every label takes values from a small set (configuration,
// domain constants, HTTP codes) or is capped, so that the number of series
// stays bounded whatever Slack, Salt or the minions send.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

// Outcomes of a triage, the values of the outcome label.
const (
	// OutcomeOK is a triage that heard from every datacenter it asked.
	OutcomeOK = "ok"
	// OutcomePartial is a triage some of whose datacenters did not answer in full.
	OutcomePartial = "partial"
	// OutcomeUnreachable is a triage that reached no master.
	OutcomeUnreachable = "unreachable"
	// OutcomeCancelled is a triage stopped before it finished.
	OutcomeCancelled = "cancelled"
	// OutcomeError is a triage that could not run (e.g. an unknown scope).
	OutcomeError = "error"
)

// outcomes lists every outcome, to initialise the series at zero.
var outcomes = []string{OutcomeOK, OutcomePartial, OutcomeUnreachable, OutcomeCancelled, OutcomeError}

// scopeKinds lists the scope kinds, to initialise the series at zero.
var scopeKinds = []triage.ScopeKind{triage.ScopeMinion, triage.ScopeDatacenter, triage.ScopeGroup}

// DefaultTopOffenders is how many repeat-offender states are exported.
const DefaultTopOffenders = 10

// maxSlackErrorSeries caps the method × error pairs of Slack errors: Slack
// names its errors and new ones appear; past the cap they count as "other".
const maxSlackErrorSeries = 100

// maxMasterSeries caps the masters of salt-api requests when the masters
// were not declared up front.
const maxMasterSeries = 200

// other is the label value that stands for everything past a cap.
const other = "other"

// Options tune the metrics.
type Options struct {
	// Masters are the configured salt-api masters; a response from any
	// other master is counted under "other".
	Masters []string
	// TopOffenders is how many repeat-offender states are exported
	// (DefaultTopOffenders when 0).
	TopOffenders int
	// TrackedOffenders bounds how many distinct states are tallied in
	// memory (DefaultTrackedOffenders when 0).
	TrackedOffenders int
}

// Metrics holds Sift's collectors and the registry they are in.
type Metrics struct {
	reg *prometheus.Registry

	triages         *prometheus.CounterVec
	triageDuration  *prometheus.HistogramVec
	causeMinions    *prometheus.CounterVec
	topCauses       *prometheus.CounterVec
	saltRequests    *prometheus.CounterVec
	slackErrors     *prometheus.CounterVec
	haltEvents      *prometheus.CounterVec
	webhookRejected *prometheus.CounterVec
	haltsSuppressed prometheus.Counter
	refusalLogs     prometheus.Counter
	offenders       *Offenders
	firing          *firingCollector

	masters      *labelCap
	slackErrPair *labelCap

	// checks are further readiness conditions (AddReadiness).
	checksMu sync.Mutex
	checks   []func() error
}

// AddReadiness adds a condition to /readyz: while check returns an error,
// /readyz answers 503 with the error's text, which must hold no secret.
func (m *Metrics) AddReadiness(check func() error) {
	m.checksMu.Lock()
	m.checks = append(m.checks, check)
	m.checksMu.Unlock()
}

// notReady returns the first failing readiness condition.
func (m *Metrics) notReady() error {
	m.checksMu.Lock()
	checks := slices.Clone(m.checks)
	m.checksMu.Unlock()
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// New returns Sift's metrics in a registry of their own, with the Go and
// process collectors.
func New(o Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		triages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_triages_total",
			Help: "Triages run, by scope kind and outcome (ok, partial, unreachable, cancelled, error).",
		}, []string{"scope_kind", "outcome"}),
		triageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sift_triage_duration_seconds",
			Help: "How long a triage took, from its start to its report, by scope kind.",
			// A minion answers in a second or two; a group waits for its
			// slowest master, bounded by salt's timeouts (tens of seconds).
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 300},
		}, []string{"scope_kind"}),
		causeMinions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_cause_minions_total",
			Help: "Minions that triages attributed to a cause, by the cause's kind; a minion two causes explain counts under both.",
		}, []string{"kind"}),
		topCauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_top_causes_total",
			Help: "Triages whose top cause is of each kind.",
		}, []string{"kind"}),
		saltRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_salt_api_requests_total",
			Help: "HTTP requests to salt-api, by master and status code (\"none\" when no answer came back).",
		}, []string{"master", "code"}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_slack_api_errors_total",
			Help: "Slack Web API calls that failed, by method and Slack error code.",
		}, []string{"method", "error"}),
		haltEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_halt_notifications_total",
			Help: "Halt notifications received, by source (rule, alertmanager, pipeline) and status (firing, resolved).",
		}, []string{"source", "status"}),
		webhookRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sift_webhook_rejections_total",
			Help: "Webhook deliveries refused, by hook and reason.",
		}, []string{"hook", "reason"}),
		haltsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sift_halts_suppressed_total",
			Help: "Halts not posted because halts.max_posts_per_hour was spent; each is stored and counted in a \"suppressed\" note.",
		}),
		refusalLogs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sift_webhook_refusal_logs_dropped_total",
			Help: "Log lines about refused webhook requests not written, to keep a flood of bad requests from flooding the log.",
		}),
		offenders:    NewOffenders(o.TopOffenders, o.TrackedOffenders),
		firing:       &firingCollector{},
		masters:      newLabelCap(maxMasterSeries),
		slackErrPair: newLabelCap(maxSlackErrorSeries),
	}
	if len(o.Masters) > 0 {
		m.masters = newFixedLabels(o.Masters)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.triages, m.triageDuration, m.causeMinions, m.topCauses, m.saltRequests, m.slackErrors,
		m.haltEvents, m.webhookRejected, m.haltsSuppressed, m.refusalLogs, m.offenders, m.firing,
	)
	// Zero series up front, so that rate() and the dashboard see every
	// kind from the first scrape rather than from its first occurrence.
	for _, k := range scopeKinds {
		for _, o := range outcomes {
			m.triages.WithLabelValues(string(k), o)
		}
		m.triageDuration.WithLabelValues(string(k))
	}
	for _, k := range triage.CauseKinds {
		m.causeMinions.WithLabelValues(string(k))
		m.topCauses.WithLabelValues(string(k))
	}
	for _, s := range halts.Sources {
		m.haltEvents.WithLabelValues(string(s), "firing")
		m.haltEvents.WithLabelValues(string(s), "resolved")
	}
	return m
}

// Registry is the registry holding Sift's collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Offenders is the repeat-offender tally, to seed from stored triages.
func (m *Metrics) Offenders() *Offenders { return m.offenders }

// Outcome classifies a finished triage for the outcome label, from the
// report's own outcome: failed (no master answered) is "unreachable",
// stopped is "cancelled".
func Outcome(r *triage.Report, err error) string {
	if r == nil {
		return OutcomeError
	}
	if err != nil {
		return OutcomeCancelled
	}
	switch triage.OutcomeOf(r) {
	case triage.OutcomeStopped:
		return OutcomeCancelled
	case triage.OutcomeFailed:
		return OutcomeUnreachable
	case triage.OutcomePartial:
		return OutcomePartial
	}
	return OutcomeOK
}

// ObserveTriage counts one triage: its outcome and duration and, when it
// produced a report, the minions of each cause kind, the kind of its top
// cause and the failed states it names. It matches the bot's OnTriage hook.
func (m *Metrics) ObserveTriage(s triage.Scope, r *triage.Report, err error, d time.Duration) {
	kind := string(s.Kind)
	if !knownScopeKind(s.Kind) {
		kind = other
	}
	m.triages.WithLabelValues(kind, Outcome(r, err)).Inc()
	m.triageDuration.WithLabelValues(kind).Observe(d.Seconds())
	if r == nil {
		return
	}
	for _, c := range r.Causes {
		m.causeMinions.WithLabelValues(causeKind(c.Kind)).Add(float64(c.Minions))
	}
	if top, ok := r.TopCause(); ok {
		m.topCauses.WithLabelValues(causeKind(top.Kind)).Inc()
	}
	m.offenders.Add(FailedStates(r))
}

// SaltAPIResponse counts one salt-api exchange; status 0 is no answer. It
// matches saltapi.Config.OnResponse.
func (m *Metrics) SaltAPIResponse(master string, status int) {
	code := "none"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.saltRequests.WithLabelValues(m.masters.value(master), code).Inc()
}

// SlackError counts a failed Slack Web API call. It matches the bot's
// OnSlackError hook.
func (m *Metrics) SlackError(method, code string) {
	if !m.slackErrPair.admit(method + "\x00" + code) {
		method, code = other, other
	}
	m.slackErrors.WithLabelValues(method, code).Inc()
}

// HaltNotification counts a halt notification from a source.
func (m *Metrics) HaltNotification(source halts.Source, status string) {
	m.haltEvents.WithLabelValues(string(source), status).Inc()
}

// HaltsSuppressed counts halts not posted for the post budget.
func (m *Metrics) HaltsSuppressed(n int) { m.haltsSuppressed.Add(float64(n)) }

// RefusalLogsDropped counts log lines about refused requests not written.
func (m *Metrics) RefusalLogsDropped(n int) { m.refusalLogs.Add(float64(n)) }

// Classify names a finished triage's outcome and failed states, for the
// store's record of it (halts.Classifier).
func Classify(r *triage.Report, err error) (string, []string) {
	if r == nil {
		return Outcome(r, err), nil
	}
	return Outcome(r, err), FailedStates(r)
}

// WebhookRejected counts a webhook delivery that was refused.
func (m *Metrics) WebhookRejected(hook, reason string) {
	m.webhookRejected.WithLabelValues(hook, reason).Inc()
}

// HaltsFiring sets the function that counts the open halts by source; it
// is called at each scrape, so the gauge is right after a restart too.
func (m *Metrics) HaltsFiring(count func() (map[halts.Source]int, error)) {
	m.firing.set(count)
}

// Handler serves /metrics, /healthz (the process is up) and /readyz (ready
// says whether Sift can do its work, i.e. is connected to Slack; nil means
// always ready).
func (m *Metrics) Handler(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	m.Register(mux, ready)
	return mux
}

// Register adds /metrics, /healthz and /readyz to mux, for a listener shared
// with the halt webhooks.
func (m *Metrics) Register(mux *http.ServeMux, ready func() bool) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil && !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: not connected to Slack\n"))
			return
		}
		if err := m.notReady(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

func knownScopeKind(k triage.ScopeKind) bool {
	for _, s := range scopeKinds {
		if s == k {
			return true
		}
	}
	return false
}

func causeKind(k triage.CauseKind) string {
	for _, c := range triage.CauseKinds {
		if c == k {
			return string(k)
		}
	}
	return other
}

// labelCap admits label values until it holds max of them; later values
// are reported as "other".
type labelCap struct {
	mu    sync.Mutex
	max   int
	seen  map[string]bool
	fixed bool
}

func newLabelCap(max int) *labelCap { return &labelCap{max: max, seen: map[string]bool{}} }

// newFixedLabels admits only the given values.
func newFixedLabels(values []string) *labelCap {
	c := &labelCap{seen: map[string]bool{}, fixed: true}
	for _, v := range values {
		c.seen[v] = true
	}
	return c
}

func (c *labelCap) admit(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[v] {
		return true
	}
	if c.fixed || len(c.seen) >= c.max {
		return false
	}
	c.seen[v] = true
	return true
}

func (c *labelCap) value(v string) string {
	if c.admit(v) {
		return v
	}
	return other
}

// firingCollector exports sift_halts_firing from a count taken at scrape time.
type firingCollector struct {
	mu    sync.Mutex
	count func() (map[halts.Source]int, error)
}

var firingDesc = prometheus.NewDesc("sift_halts_firing",
	"Halts open now (fired and not yet resolved), by source.", []string{"source"}, nil)

func (f *firingCollector) set(count func() (map[halts.Source]int, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count = count
}

func (f *firingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- firingDesc }

func (f *firingCollector) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	count := f.count
	f.mu.Unlock()
	counts := map[halts.Source]int{}
	if count != nil {
		c, err := count()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(firingDesc, err)
			return
		}
		counts = c
	}
	for _, s := range halts.Sources {
		ch <- prometheus.MustNewConstMetric(firingDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
