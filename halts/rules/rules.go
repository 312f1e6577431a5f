// Package rules runs the scheduled PromQL checks that are a halt source:
// every series a rule's query returns is a firing halt of the scope its
// label names; a scope whose series is gone is resolved.
package rules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/promapi"
	"github.com/sift-chatops/sift/triage"
)

// Querier runs an instant PromQL query; *promapi.Client is one.
type Querier interface {
	Query(ctx context.Context, query string) ([]promapi.Sample, error)
}

var _ Querier = (*promapi.Client)(nil)

// DefaultCheckTimeout bounds one evaluation of a rule.
const DefaultCheckTimeout = 30 * time.Second

// Rule is a scheduled check: every series its query returns is a firing
// halt of the scope its ScopeLabel names; a scope whose series is gone is
// resolved.
type Rule struct {
	Name       string
	Schedule   string
	Query      string
	ScopeLabel string
	ScopeKind  triage.ScopeKind
}

// Notifier records halt events and lists the open halts of a rule;
// *halts.Service is one.
type Notifier interface {
	NotifyAll(ctx context.Context, events []halts.Event) ([]halts.Result, error)
	OpenHalts(ctx context.Context, source halts.Source, name string) ([]halts.Halt, error)
}

var _ Notifier = (*halts.Service)(nil)

// Leader says whether this replica runs the scheduled rules; a
// halts.Store's Lead is one.
type Leader func(ctx context.Context) (bool, error)

// Rules runs the scheduled checks with robfig/cron.
type Rules struct {
	svc   Notifier
	lead  Leader
	q     Querier
	rules []Rule
	// graphURL is Prometheus's base URL for links to a rule's graph; empty
	// for no link.
	graphURL string
	timeout  time.Duration
	log      logrus.FieldLogger
}

// Options configure Rules.
type Options struct {
	// PrometheusURL, when set, is used for links to the query in posts.
	PrometheusURL string
	// Leader, when set, is asked before each check; a replica that does
	// not lead skips it.
	Leader Leader
	Log    logrus.FieldLogger
}

// New checks the rules' schedules and returns their scheduler.
func New(svc Notifier, q Querier, rules []Rule, o Options) (*Rules, error) {
	var errs []error
	for _, r := range rules {
		if _, err := cron.ParseStandard(r.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: schedule %q: %w", r.Name, r.Schedule, err))
		}
		if !halts.ValidKind(r.ScopeKind) {
			errs = append(errs, fmt.Errorf("rule %s: scope kind %q: want datacenter, group or minion", r.Name, r.ScopeKind))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	return &Rules{svc: svc, lead: o.Leader, q: q, rules: rules, graphURL: o.PrometheusURL, timeout: DefaultCheckTimeout, log: o.Log}, nil
}

// Run schedules every rule and runs them until ctx ends; it then waits
// for the checks under way. A check that panics is logged and the others
// go on, and so do the next checks of its rule (cron.Recover); a check
// still running when its next turn comes is skipped rather than doubled
// (cron.SkipIfStillRunning).
func (r *Rules) Run(ctx context.Context) error {
	logger := cronLogger{r.log}
	c := cron.New(cron.WithLogger(logger), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	// robfig/cron v3.0.1's SkipIfStillRunning takes its token back only
	// when the job returns: a panic going through it keeps the token, and
	// every later run of the job is skipped. Recovering inside it too keeps
	// one panicking check from stopping its rule for good.
	inner := cron.NewChain(cron.Recover(logger))
	for _, rule := range r.rules {
		job := inner.Then(cron.FuncJob(func() { r.run(ctx, rule) }))
		if _, err := c.AddJob(rule.Schedule, job); err != nil {
			return fmt.Errorf("rule %s: %w", rule.Name, err)
		}
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

func (r *Rules) run(ctx context.Context, rule Rule) {
	if ctx.Err() != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if r.lead != nil {
		lead, err := r.lead(cctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.WithError(err).WithField("rule", rule.Name).Warn("asking for the rules' leadership failed; check skipped")
			}
			return
		}
		if !lead {
			return // another replica runs the rules
		}
	}
	if err := r.Check(cctx, rule); err != nil && ctx.Err() == nil {
		r.log.WithError(err).WithField("rule", rule.Name).Warn("halt rule check failed")
	}
}

// Check evaluates a rule once: it fires a halt for each scope the query
// returns and resolves the rule's open halts whose scope it no longer
// returns. A failed query resolves nothing: an outage of Prometheus is not
// the end of a halt.
func (r *Rules) Check(ctx context.Context, rule Rule) error {
	samples, err := r.q.Query(ctx, rule.Query)
	if err != nil {
		return err
	}
	firing := map[string]promapi.Sample{}
	var missing int
	for _, s := range samples {
		name := s.Labels[rule.ScopeLabel]
		if halts.CheckScopeName(name) != "" {
			missing++
			continue
		}
		if _, dup := firing[name]; !dup {
			firing[name] = s
		}
	}
	if missing > 0 {
		r.log.WithFields(logrus.Fields{"rule": rule.Name, "scope_label": rule.ScopeLabel, "series": missing}).Warn("series without a usable scope label skipped")
	}
	var events []halts.Event
	names := make([]string, 0, len(firing))
	for name := range firing {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		e := r.event(rule, name)
		e.Firing = true
		e.Reason = fmt.Sprintf("%s returned %s for %s=%q", rule.Query, strconv.FormatFloat(firing[name].Value, 'g', 6, 64), rule.ScopeLabel, name)
		e.URL = r.graphLink(rule.Query)
		events = append(events, e)
	}
	if len(events) > 0 {
		if _, err := r.svc.NotifyAll(ctx, events); err != nil {
			return fmt.Errorf("rule %s: %w", rule.Name, err)
		}
	}
	open, err := r.svc.OpenHalts(ctx, halts.SourceRule, rule.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range open {
		if h.Scope.Kind == rule.ScopeKind {
			if _, still := firing[h.Scope.Name]; still {
				continue
			}
		}
		e := r.event(rule, h.Scope.Name)
		e.Key = h.Key
		if _, err := r.svc.NotifyAll(ctx, []halts.Event{e}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Scope.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Rules) event(rule Rule, scope string) halts.Event {
	return halts.Event{
		Source: halts.SourceRule, Recurring: true, Name: rule.Name,
		Key:   "rule/" + rule.Name + "/" + string(rule.ScopeKind) + "/" + scope,
		Scope: triage.Scope{Kind: rule.ScopeKind, Name: scope},
	}
}

// graphLink is a link to the query in Prometheus's expression browser.
func (r *Rules) graphLink(query string) string {
	if r.graphURL == "" {
		return ""
	}
	u, err := url.Parse(r.graphURL)
	if err != nil {
		return ""
	}
	u = u.JoinPath("graph")
	u.RawQuery = url.Values{"g0.expr": {query}, "g0.tab": {"1"}}.Encode()
	return u.String()
}

// cronLogger sends robfig/cron's logs to logrus: its errors (a recovered
// panic, with the stack) as errors, its chatter at debug level.
type cronLogger struct{ log logrus.FieldLogger }

func (l cronLogger) Info(msg string, kv ...any) {
	l.log.WithFields(kvFields(kv)).Debug("cron: " + msg)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.WithFields(kvFields(kv)).WithError(err).Error("cron: " + msg)
}

func kvFields(kv []any) logrus.Fields {
	f := logrus.Fields{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return f
}
