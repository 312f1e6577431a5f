package triage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
)

// ProgressKind says what a progress event reports.
type ProgressKind string

// The progress events of a triage.
const (
	ProgressStarted            ProgressKind = "started"
	ProgressDatacenterStarted  ProgressKind = "datacenter_started"
	ProgressAnswers            ProgressKind = "answers"
	ProgressDatacenterFinished ProgressKind = "datacenter_finished"
)

// Progress is a snapshot of a running triage, for live updates.
type Progress struct {
	Kind  ProgressKind
	Scope Scope
	// Datacenter is the datacenter the event is about, if any.
	Datacenter string
	// Err is why a datacenter finished early, on ProgressDatacenterFinished.
	Err              error
	DatacentersDone  int
	DatacentersTotal int
	MinionsAnswered  int
	MinionsExpected  int
	// Running names the datacenters still running.
	Running []string
	Elapsed time.Duration
}

// Options tune a Triager.
type Options struct {
	// MaxParallel bounds how many datacenters are triaged at once.
	MaxParallel int
	// Deadline bounds one datacenter's blame call, on top of the Blamer's own.
	Deadline time.Duration
	// CommitURL is a link template for commits; {commit} is the full id.
	CommitURL string
	// Progress, when set, receives progress events. Calls are serialised;
	// it must return quickly.
	Progress func(Progress)
	// ProgressInterval throttles answer events (default 250ms); datacenter
	// start and finish events are never throttled.
	ProgressInterval time.Duration
	Log              logrus.FieldLogger
	Now              func() time.Time
}

// Triager runs triages over an inventory, with one Blamer per master.
type Triager struct {
	inv     Inventory
	masters map[string]Blamer
	opts    Options
}

// New returns a Triager. masters maps a master name to its Blamer.
func New(inv Inventory, masters map[string]Blamer, opts Options) *Triager {
	if opts.MaxParallel <= 0 {
		opts.MaxParallel = 16
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 250 * time.Millisecond
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Log = l
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Triager{inv: inv, masters: masters, opts: opts}
}

// run is the state of one triage.
type run struct {
	t     *Triager
	scope Scope
	start time.Time
	agg   *Aggregator

	mu        sync.Mutex
	total     int
	done      int
	running   []string
	lastEvent time.Time
}

func (t *Triager) newRun(s Scope, total int) *run {
	return &run{t: t, scope: s, start: t.opts.Now(), agg: NewAggregator(t.opts.CommitURL), total: total}
}

// emit sends a progress event; answer events are throttled.
func (r *run) emit(kind ProgressKind, dc string, err error) {
	if r.t.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.t.opts.Now()
	switch kind {
	case ProgressAnswers:
		if now.Sub(r.lastEvent) < r.t.opts.ProgressInterval {
			return
		}
	case ProgressDatacenterStarted:
		r.running = append(r.running, dc)
	case ProgressDatacenterFinished:
		r.done++
		if i := slices.Index(r.running, dc); i >= 0 {
			r.running = slices.Delete(r.running, i, i+1)
		}
	}
	r.lastEvent = now
	answered, expected := 0, 0
	r.agg.mu.Lock()
	for _, t := range r.agg.dcs {
		answered += len(t.answered)
		expected += len(t.expected)
	}
	r.agg.mu.Unlock()
	r.t.opts.Progress(Progress{
		Kind: kind, Scope: r.scope, Datacenter: dc, Err: err,
		DatacentersDone: r.done, DatacentersTotal: r.total,
		MinionsAnswered: answered, MinionsExpected: expected,
		Running: slices.Clone(r.running), Elapsed: now.Sub(r.start),
	})
}

// dcSink feeds one datacenter's answers into the run's aggregator.
type dcSink struct {
	r  *run
	dc string
}

func (s dcSink) Expected(ids []string) {
	s.r.agg.Expect(s.dc, ids)
	s.r.emit(ProgressAnswers, s.dc, nil)
}

// Absent is not yet told apart from silence: the minions stay expected.
func (s dcSink) Absent([]string, Absence) {}

// Note is not yet kept.
func (s dcSink) Note(string) {}

func (s dcSink) Answer(a MinionAnswer) {
	m := DecodeMinion(a.ID, a.Raw)
	m.Datacenter = s.dc
	s.r.agg.Add(m)
	s.r.emit(ProgressAnswers, s.dc, nil)
}

// Triage runs the triage of scope s and returns its report. A datacenter
// whose master fails leaves the report partial, with the error on that
// datacenter; the error returned is for a scope that cannot be triaged
// (unknown name, bad minion id) or a cancelled context, in which case the
// report holds what was learned until then.
func (t *Triager) Triage(ctx context.Context, s Scope) (*Report, error) {
	dcs, err := t.inv.Resolve(s)
	if err != nil {
		return nil, err
	}
	if s.Kind == ScopeMinion {
		return t.triageMinion(ctx, s)
	}
	r := t.newRun(s, len(dcs))
	r.emit(ProgressStarted, "", nil)
	results := make([]DatacenterResult, len(dcs))
	g := new(errgroup.Group)
	g.SetLimit(t.opts.MaxParallel)
	for i, dc := range dcs {
		r.agg.Expect(dc.Name, dc.Minions)
		g.Go(func() error {
			results[i] = t.triageDatacenter(ctx, r, dc)
			return nil
		})
	}
	_ = g.Wait() // each datacenter's error is in its result
	return r.report(results), ctx.Err()
}

func (t *Triager) triageDatacenter(ctx context.Context, r *run, dc Datacenter) DatacenterResult {
	res := DatacenterResult{Name: dc.Name, Master: dc.Master}
	if ctx.Err() != nil {
		res.Error = "not started: " + ctx.Err().Error()
		return res
	}
	start := t.opts.Now()
	r.emit(ProgressDatacenterStarted, dc.Name, nil)
	err := t.blame(ctx, Target{Master: dc.Master, Datacenter: dc.Name, Expr: dc.Target}, dcSink{r, dc.Name})
	res.Duration = t.opts.Now().Sub(start)
	if err != nil {
		answered, expected := r.agg.Answered(dc.Name)
		res.Error = err.Error()
		if answered > 0 {
			res.Error = fmt.Sprintf("partial (%d of %d minions answered): %s", answered, expected, err)
		}
		t.opts.Log.WithFields(logrus.Fields{"datacenter": dc.Name, "master": dc.Master}).WithError(err).Warn("blame call failed")
	}
	r.emit(ProgressDatacenterFinished, dc.Name, err)
	return res
}

// blame calls the master's Blamer under the per-datacenter deadline.
func (t *Triager) blame(ctx context.Context, target Target, sink Sink) error {
	b, ok := t.masters[target.Master]
	if !ok {
		return fmt.Errorf("master %q: no salt-api client configured", target.Master)
	}
	if t.opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.Deadline)
		defer cancel()
	}
	err := b.Blame(ctx, target, sink)
	if errors.Is(err, context.DeadlineExceeded) && t.opts.Deadline > 0 {
		return fmt.Errorf("blame call: no complete answer within %s", t.opts.Deadline)
	}
	return err
}

// collectSink keeps the answers of one call, for the minion scope where the
// best of several masters' answers is kept.
type collectSink struct {
	answers []MinionAnswer
}

func (c *collectSink) Expected([]string)        {}
func (c *collectSink) Answer(a MinionAnswer)    { c.answers = append(c.answers, a) }
func (c *collectSink) Absent([]string, Absence) {}
func (c *collectSink) Note(string)              {}

// triageMinion asks every master for the minion: a minion id does not say
// which master serves it. The answer of the master that has the minion wins
// over the "did not return" of the others.
func (t *Triager) triageMinion(ctx context.Context, s Scope) (*Report, error) {
	masters := make([]string, 0, len(t.masters))
	for name := range t.masters {
		masters = append(masters, name)
	}
	slices.Sort(masters)
	dcName := ""
	if dc, ok := t.inv.DatacenterOf(s.Name); ok {
		dcName = dc.Name
	}
	r := t.newRun(s, len(masters))
	r.emit(ProgressStarted, "", nil)
	results := make([]DatacenterResult, len(masters))
	best := make([]Minion, len(masters))
	g := new(errgroup.Group)
	g.SetLimit(t.opts.MaxParallel)
	for i, master := range masters {
		g.Go(func() error {
			start := t.opts.Now()
			r.emit(ProgressDatacenterStarted, master, nil)
			var sink collectSink
			err := t.blame(ctx, Target{Master: master, Datacenter: dcName, Minions: []string{s.Name}}, &sink)
			res := DatacenterResult{Name: dcName, Master: master, Duration: t.opts.Now().Sub(start)}
			best[i] = Minion{ID: s.Name, Datacenter: dcName, Status: StatusUnreachable, Detail: "did not answer"}
			for _, a := range sink.answers {
				if a.ID == s.Name {
					best[i] = DecodeMinion(a.ID, a.Raw)
					best[i].Datacenter = dcName
				}
			}
			res.Counts.Expected = 1
			res.Counts.add(best[i].Status)
			if err != nil {
				res.Error = err.Error()
				t.opts.Log.WithFields(logrus.Fields{"minion": s.Name, "master": master}).WithError(err).Warn("blame call failed")
			}
			results[i] = res
			r.emit(ProgressDatacenterFinished, master, err)
			return nil
		})
	}
	_ = g.Wait()
	pick := Minion{ID: s.Name, Datacenter: dcName, Status: StatusUnreachable, Detail: "no master answered for it"}
	for _, m := range best {
		if rank(m) > rank(pick) {
			pick = m
		}
	}
	r.agg.Add(pick)
	rep := r.report(nil)
	rep.Datacenters = results
	return rep, ctx.Err()
}

// rank orders a minion's possible answers: a real blame answer beats a
// minion that could not be asked.
func rank(m Minion) int {
	switch m.Status {
	case StatusUnreachable:
		if m.Detail == "did not answer in time" {
			return 1 // the master knows the minion, it is down
		}
		return 0
	case StatusModuleMissing, StatusBlameError:
		return 2
	}
	return 3
}

func (r *run) report(results []DatacenterResult) *Report {
	counts, causes, perDC := r.agg.Finish()
	for i := range results {
		results[i].Counts = perDC[results[i].Name]
	}
	return &Report{
		Scope:       r.scope,
		Headline:    Headline(counts, causes),
		StartedAt:   r.start,
		Duration:    r.t.opts.Now().Sub(r.start),
		Counts:      counts,
		Causes:      causes,
		Datacenters: results,
	}
}
