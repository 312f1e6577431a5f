package triage

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
)

// Options tune a Triager.
type Options struct {
	// MaxParallel bounds how many datacenters are triaged at once.
	MaxParallel int
	// Deadline bounds one datacenter's blame call, on top of the Blamer's own.
	Deadline time.Duration
	// CommitURL is a link template for commits; {commit} is the full id.
	CommitURL string
	// Progress, when set, receives progress events, in order, one at a
	// time, from a goroutine of the triage that holds no lock: a slow
	// consumer delays its own events, not the triage. Triage returns once
	// every event has been delivered.
	Progress func(Progress)
	// ProgressInterval throttles answer events (default 250ms); datacenter
	// start and finish events are never throttled.
	ProgressInterval time.Duration
	// Rerun says how to run the triage of a scope again, for the headline
	// of a triage that was stopped (DefaultRerun when nil).
	Rerun func(Scope) string
	Log   logrus.FieldLogger
	Now   func() time.Time
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
	if opts.Rerun == nil {
		opts.Rerun = DefaultRerun
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
	// ctx is the caller's: when it ends before the report, the triage was
	// stopped. cancel stops the run's own work after a panic.
	ctx    context.Context
	cancel context.CancelFunc
	// dcs are the datacenters of the run, for the progress totals.
	dcs []string

	mu      sync.Mutex
	total   int
	done    int
	running []running
	// absent counts, per datacenter, the minions its master said will not
	// answer; notes are what each datacenter's report must say.
	absent map[string]int
	notes  map[string][]string
	// reasons are the short errors of the datacenters that failed.
	reasons map[string]string
	// minionAnswered says, in a minion triage, which masters answered
	// for the minion; minion is what the masters said of it.
	minionAnswered map[string]bool
	minion         minionVerdict
	lastEvent      time.Time
	// queue holds events not yet delivered; idle is closed when the
	// deliverer running now (nil when none) has emptied it.
	queue    []Progress
	idle     chan struct{}
	broken   bool
	panicked *PanicError
}

// minionVerdict is what the masters said of the minion of a minion triage.
type minionVerdict struct {
	// found: a master has the minion and handed over its answer.
	found bool
	// notAMinion: every master that answered has no key for it.
	notAMinion bool
}

func (t *Triager) newRun(s Scope, total int) *run {
	r := &run{
		t: t, scope: s, start: t.opts.Now(), agg: NewAggregator(t.opts.CommitURL), total: total,
		absent: map[string]int{}, notes: map[string][]string{}, reasons: map[string]string{},
		minionAnswered: map[string]bool{},
	}
	if s.Kind != ScopeMinion {
		dcs, _ := t.inv.Resolve(s)
		for _, dc := range dcs {
			r.dcs = append(r.dcs, dc.Name)
		}
		// Saved evidence may hold minions of no known datacenter.
		r.dcs = append(r.dcs, "")
	}
	return r
}

// dcSink feeds one datacenter's answers into the run's aggregator.
type dcSink struct {
	r          *run
	dc, master string
}

func (s dcSink) Expected(ids []string) {
	s.r.agg.Expect(s.dc, ids)
	s.r.emit(ProgressAnswers, s.dc, nil)
}

// Absent counts the minions unreachable at once, with the master's reason.
func (s dcSink) Absent(ids []string, why Absence) {
	detail := absenceDetail(why, s.master)
	s.r.mu.Lock()
	for _, id := range ids {
		if s.r.agg.Add(Minion{ID: id, Datacenter: s.dc, Status: StatusUnreachable, Detail: detail}) {
			s.r.absent[s.dc]++
		}
	}
	s.r.mu.Unlock()
	s.r.emit(ProgressAnswers, s.dc, nil)
}

// Note keeps a note for the datacenter's result, once.
func (s dcSink) Note(note string) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if !slices.Contains(s.r.notes[s.dc], note) {
		s.r.notes[s.dc] = append(s.r.notes[s.dc], note)
	}
}

func (s dcSink) Answer(a MinionAnswer) {
	m := DecodeMinion(a.ID, a.Raw)
	m.Datacenter = s.dc
	s.r.agg.Add(m)
	s.r.emit(ProgressAnswers, s.dc, nil)
}

// absenceDetail says why a minion will not answer, as the report shows it.
func absenceDetail(why Absence, master string) string {
	if why == NotAMinion {
		return "not a minion of master " + master
	}
	return "not connected to master " + master
}

// Triage runs the triage of scope s and returns its report. A datacenter
// whose master fails leaves the report partial, with the error on that
// datacenter; the error returned is for a scope that cannot be triaged
// (unknown name, bad minion id) or a cancelled context, in which case the
// report holds what was learned until then and says it was stopped. A
// panic in any of the triage's goroutines is raised again here, as a
// *PanicError.
func (t *Triager) Triage(ctx context.Context, s Scope) (*Report, error) {
	dcs, err := t.inv.Resolve(s)
	if err != nil {
		return nil, err
	}
	if s.Kind == ScopeMinion {
		return t.triageMinion(ctx, s)
	}
	r := t.newRun(s, len(dcs))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx, r.cancel = ctx, cancel
	r.emit(ProgressStarted, "", nil)
	results := make([]DatacenterResult, len(dcs))
	g := new(errgroup.Group)
	g.SetLimit(t.opts.MaxParallel)
	for i, dc := range dcs {
		r.agg.Expect(dc.Name, dc.Minions)
		g.Go(func() error {
			defer r.recoverInto()
			results[i] = t.triageDatacenter(runCtx, r, dc)
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
	r.emitFrom(ProgressDatacenterStarted, dc.Name, dc.Master, nil)
	err := t.blame(ctx, Target{Master: dc.Master, Datacenter: dc.Name, Expr: dc.Target}, dcSink{r, dc.Name, dc.Master})
	res.Duration = t.opts.Now().Sub(start)
	if err != nil {
		answered, expected := r.agg.Answered(dc.Name)
		res.Error = err.Error()
		if answered > 0 {
			res.Error = fmt.Sprintf("partial (%d of %d minions answered): %s", answered, expected, err)
		}
		r.mu.Lock()
		r.reasons[dc.Name] = Reason(err, dc.Master)
		r.mu.Unlock()
		t.opts.Log.WithFields(logrus.Fields{"datacenter": dc.Name, "master": dc.Master}).WithError(err).Warn("blame call failed")
	}
	r.emitFrom(ProgressDatacenterFinished, dc.Name, dc.Master, err)
	return res
}

// deadlineError is a blame call cut by Options.Deadline.
type deadlineError struct{ d time.Duration }

func (e deadlineError) Error() string {
	return fmt.Sprintf("blame call: no complete answer within %s", e.d)
}

// Timeout reports that the error is a timeout, as net.Error does.
func (deadlineError) Timeout() bool { return true }

// blame calls the master's Blamer under the per-datacenter deadline.
func (t *Triager) blame(ctx context.Context, target Target, sink Sink) error {
	b, ok := t.masters[target.Master]
	if !ok {
		return fmt.Errorf("master %q: no salt-api client configured", target.Master)
	}
	parent := ctx
	if t.opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.Deadline)
		defer cancel()
	}
	err := b.Blame(ctx, target, sink)
	if err != nil && t.opts.Deadline > 0 && ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
		return deadlineError{t.opts.Deadline}
	}
	return err
}

// collectSink keeps what one master said of the minion of a minion
// triage, where the best of several masters' answers is kept.
type collectSink struct {
	answers []MinionAnswer
	absent  map[string]Absence
	notes   []string
}

func (c *collectSink) Expected([]string)     {}
func (c *collectSink) Answer(a MinionAnswer) { c.answers = append(c.answers, a) }

func (c *collectSink) Absent(ids []string, why Absence) {
	if c.absent == nil {
		c.absent = map[string]Absence{}
	}
	for _, id := range ids {
		c.absent[id] = why
	}
}

func (c *collectSink) Note(note string) {
	if !slices.Contains(c.notes, note) {
		c.notes = append(c.notes, note)
	}
}

// Ranks of a minion's possible answers in a minion triage: a real blame
// answer beats a minion that could not be asked.
const (
	rankUnknown   = iota // no answer, or the master has no key for it
	rankDown             // the master knows the minion, it is down
	rankBlameFail        // the minion answered, the blame module did not
	rankAnswer           // a blame answer
)

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
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx, r.cancel = ctx, cancel
	r.emit(ProgressStarted, "", nil)
	results := make([]DatacenterResult, len(masters))
	best := make([]Minion, len(masters))
	ranks := make([]int, len(masters))
	unknown := make([]bool, len(masters))
	g := new(errgroup.Group)
	g.SetLimit(t.opts.MaxParallel)
	for i, master := range masters {
		g.Go(func() error {
			defer r.recoverInto()
			start := t.opts.Now()
			r.emitFrom(ProgressDatacenterStarted, master, master, nil)
			var sink collectSink
			err := t.blame(runCtx, Target{Master: master, Datacenter: dcName, Minions: []string{s.Name}}, &sink)
			res := DatacenterResult{Name: dcName, Master: master, Duration: t.opts.Now().Sub(start), Notes: sink.notes}
			best[i] = Minion{ID: s.Name, Datacenter: dcName, Status: StatusUnreachable, Detail: "did not answer"}
			if why, ok := sink.absent[s.Name]; ok {
				best[i].Detail = absenceDetail(why, master)
				unknown[i] = why == NotAMinion
				if why == NotConnected {
					ranks[i] = rankDown
				}
			}
			for _, a := range sink.answers {
				if a.ID == s.Name {
					best[i] = DecodeMinion(a.ID, a.Raw)
					best[i].Datacenter = dcName
					ranks[i], unknown[i] = rank(best[i]), false
				}
			}
			res.Counts.Expected = 1
			res.Counts.add(best[i].Status)
			if err != nil {
				res.Error = err.Error()
				r.mu.Lock()
				r.reasons[master] = Reason(err, master)
				r.mu.Unlock()
				t.opts.Log.WithFields(logrus.Fields{"minion": s.Name, "master": master}).WithError(err).Warn("blame call failed")
			}
			if ranks[i] >= rankBlameFail {
				r.mu.Lock()
				r.minionAnswered[master] = true
				r.mu.Unlock()
			}
			results[i] = res
			r.emitFrom(ProgressDatacenterFinished, master, master, err)
			return nil
		})
	}
	_ = g.Wait()
	pick := Minion{ID: s.Name, Datacenter: dcName, Status: StatusUnreachable, Detail: "no master answered for it"}
	pickRank, answeredUnknown, answered := rankUnknown, 0, 0
	for i, m := range best {
		if ranks[i] > pickRank {
			pick, pickRank = m, ranks[i]
		}
		if results[i].Error == "" {
			answered++
			if unknown[i] {
				answeredUnknown++
			}
		}
	}
	r.minion = minionVerdict{found: pickRank >= rankBlameFail, notAMinion: answered > 0 && answeredUnknown == answered}
	if r.minion.notAMinion {
		pick.Detail = "not a minion of any master"
	}
	r.agg.Add(pick)
	return r.report(results), ctx.Err()
}

// rank orders a minion's possible answers.
func rank(m Minion) int {
	switch m.Status {
	case StatusUnreachable:
		if m.Detail == "did not answer in time" {
			return rankDown
		}
		return rankUnknown
	case StatusModuleMissing, StatusBlameError:
		return rankBlameFail
	}
	return rankAnswer
}

// report waits for the progress events still queued, raises a panic of
// the run's goroutines again, and builds the report: counts, ranked causes,
// the results of each datacenter with its notes, the outcome and the
// headline.
func (r *run) report(results []DatacenterResult) *Report {
	r.flush()
	r.mu.Lock()
	p := r.panicked
	r.mu.Unlock()
	if p != nil {
		panic(p)
	}
	counts, causes, perDC := r.agg.Finish()
	r.mu.Lock()
	for i := range results {
		if r.scope.Kind != ScopeMinion {
			results[i].Counts = perDC[results[i].Name]
			results[i].Notes = slices.Clone(r.notes[results[i].Name])
		}
	}
	r.mu.Unlock()
	rep := &Report{
		Scope:       r.scope,
		Headline:    Headline(counts, causes),
		StartedAt:   r.start,
		Duration:    r.t.opts.Now().Sub(r.start),
		Counts:      counts,
		Causes:      causes,
		Datacenters: results,
	}
	r.judge(rep)
	return rep
}

// judge sets the report's outcome and makes its headline say what could
// not be reached.
func (r *run) judge(rep *Report) {
	if r.ctx != nil && r.ctx.Err() != nil {
		rep.Outcome = OutcomeStopped
		rep.Headline = StoppedHeadline(rep.Duration, r.t.opts.Rerun(r.scope))
		return
	}
	var fails []dcFailure
	r.mu.Lock()
	for _, dc := range rep.Datacenters {
		if dc.Error == "" {
			continue
		}
		f := dcFailure{name: dc.Name, master: dc.Master, reason: r.reasons[dc.Name], answered: dc.Counts.Answered, expected: dc.Counts.Expected}
		if r.scope.Kind == ScopeMinion {
			f = dcFailure{master: dc.Master, reason: r.reasons[dc.Master]}
		}
		if f.reason == "" {
			f.reason = truncate(dc.Error, maxReason)
		}
		fails = append(fails, f)
	}
	r.mu.Unlock()
	if r.scope.Kind == ScopeMinion {
		r.judgeMinion(rep, fails)
		return
	}
	rep.Outcome = outcomeOf(rep.Datacenters)
	switch rep.Outcome {
	case OutcomeFailed:
		rep.Headline = failedHeadline(fails)
	case OutcomePartial:
		total := len(rep.Datacenters)
		rep.Headline += partialSuffix("datacenters", total-len(fails), total, fails)
	}
}

// judgeMinion: the minion lives behind one master, so once it answered the
// other masters' failures do not matter.
func (r *run) judgeMinion(rep *Report, fails []dcFailure) {
	total := len(rep.Datacenters)
	switch {
	case r.minion.found:
		rep.Outcome = OutcomeComplete
		return
	case total > 0 && len(fails) == total:
		rep.Outcome = OutcomeFailed
		rep.Headline = failedHeadline(fails)
		return
	}
	if r.minion.notAMinion {
		rep.Headline = r.scope.Name + " is not a minion of any master"
		if len(fails) > 0 {
			rep.Headline += " that answered"
		}
		for i := range rep.Causes {
			if rep.Causes[i].Kind == CauseUnreachable {
				rep.Causes[i].Summary = rep.Headline
			}
		}
	}
	rep.Outcome = OutcomeComplete
	if len(fails) > 0 {
		rep.Outcome = OutcomePartial
		rep.Headline += partialSuffix("masters", total-len(fails), total, fails)
	}
}
