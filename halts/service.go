package halts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// Triager runs a triage; *triage.Triager is one.
type Triager interface {
	Triage(ctx context.Context, s triage.Scope) (*triage.Report, error)
}

var _ Triager = (*triage.Triager)(nil)

// Poster posts to Slack: a report with its thread, a reply in a thread, an
// edit of a message. The bot is one.
type Poster interface {
	// PostReport posts r's summary to channel (in threadTS's thread when
	// set) and its details in the summary's thread; it returns the
	// summary's ts. A ts with an error means the summary was posted and
	// part of its thread was not.
	PostReport(ctx context.Context, channel, threadTS string, r *triage.Report, o formatters.SlackOptions) (string, error)
	// Reply posts m in the thread of threadTS, or at the top of the
	// channel when threadTS is empty.
	Reply(ctx context.Context, channel, threadTS string, m formatters.SlackMessage) (string, error)
	// Update replaces the message ts with m.
	Update(ctx context.Context, channel, ts string, m formatters.SlackMessage) error
}

// PostFinder finds a message of the channel, posted since a time, whose
// text or blocks contain marker; it returns "" when there is none. A
// Poster that is also a PostFinder lets Sift tell, after it stopped
// mid-post, whether the post went through, and so never post a halt twice.
type PostFinder interface {
	FindPost(ctx context.Context, channel, marker string, since time.Time) (string, error)
}

// Observer counts what the halt service receives and holds back;
// *metrics.Metrics is one.
type Observer interface {
	HaltNotification(source Source, status string)
	HaltsSuppressed(n int)
}

// Defaults of Options.
const (
	DefaultStillFailingInterval = 30 * time.Minute
	DefaultTick                 = 5 * time.Second
	DefaultMaxParallel          = 4
	DefaultTriageTimeout        = 5 * time.Minute
	DefaultCoalesceWindow       = 10 * time.Minute
	DefaultMaxPostsPerHour      = 30
	DefaultRetention            = 90 * 24 * time.Hour
	// DefaultPruneEvery is how often what is older than the retention is
	// deleted.
	DefaultPruneEvery = time.Hour
	// postTimeout bounds one Slack step. It is also how long a shutdown
	// waits for a post already under way: cutting it would leave Slack and
	// the store disagreeing on whether the halt was posted.
	postTimeout = 30 * time.Second
	// maxBackoff caps the wait between attempts of a failing step.
	maxBackoff = 10 * time.Minute
	// firstBackoff is the wait after the first failure.
	firstBackoff = 5 * time.Second
	// findSlack widens the history search before the halt fired, for
	// clocks that disagree.
	findSlack = 5 * time.Minute
	// maxFindFailures is how many failed steps in a row (the post, then
	// searches for it) are retried before the halt is posted without a
	// search.
	maxFindFailures = 3
	// budgetWindow is the window of MaxPostsPerHour.
	budgetWindow = time.Hour
	// maxJoinedListed is how many joined halts one reply names.
	maxJoinedListed = 20
	// dueBatch bounds the halts one look for due work reads.
	dueBatch = 256
)

// Options configure a Service.
type Options struct {
	// Channel is the Slack channel id halts are posted to.
	Channel string
	// StillFailingInterval is the least time between two "still failing"
	// replies of one halt, and between two "suppressed" notes.
	StillFailingInterval time.Duration
	// CoalesceWindow is how long after its post a halt still takes in the
	// new halts of its scope (it takes them in while it is being triaged
	// and posted in any case).
	CoalesceWindow time.Duration
	// MaxPostsPerHour bounds the halts posted in any hour; the others are
	// counted in one "suppressed" note per StillFailingInterval.
	MaxPostsPerHour int
	// Retention is how long triages, cleared halts and deliveries are kept.
	Retention time.Duration
	// PruneEvery is how often the store is pruned.
	PruneEvery time.Duration
	// Tick is how often due work is looked for when nothing wakes the
	// service (retries, intervals).
	Tick time.Duration
	// MaxParallel bounds the halts worked on at once.
	MaxParallel int
	// TriageTimeout bounds a halt's triage.
	TriageTimeout time.Duration
	// Owner names this replica in the store's claims; a random id when empty.
	Owner string
	// OnTriage, when set, is told of every triage the service runs (for
	// metrics); the store keeps them in any case.
	OnTriage func(s triage.Scope, r *triage.Report, err error, d time.Duration)
	// Classify names the outcome and failed states of the triages stored.
	Classify Classifier
	// Observer, when set, counts notifications and suppressed halts.
	Observer Observer
	Log      logrus.FieldLogger
	Now      func() time.Time
	// Jitter returns a number in [0, 1) that spreads the retries of
	// failed steps; math/rand's when nil.
	Jitter func() float64
}

// Service receives halt events, keeps them in the store and does what each
// halt needs next: triage and post, list the halts that joined it, reply
// that it still fails, announce that it cleared.
type Service struct {
	store   Store
	triager Triager
	poster  Poster
	opts    Options

	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]bool
	// retry holds each failing halt's backoff, so that a failure the
	// store cannot record is not retried at once.
	retry map[string]retryState
	// reserved counts the posts under way, which the store does not
	// count yet, so that parallel posts keep within the budget.
	reserved int
	// suppressed counts the halts not posted since the last note.
	suppressed int
	lastNote   time.Time
	lastPrune  time.Time
}

// retryState is the backoff of one failing halt.
type retryState struct {
	failures int
	next     time.Time
}

// NewService returns a service over store that triages with t and posts
// with p.
func NewService(store Store, t Triager, p Poster, o Options) *Service {
	if o.StillFailingInterval <= 0 {
		o.StillFailingInterval = DefaultStillFailingInterval
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.MaxParallel <= 0 {
		o.MaxParallel = DefaultMaxParallel
	}
	if o.TriageTimeout <= 0 {
		o.TriageTimeout = DefaultTriageTimeout
	}
	if o.CoalesceWindow < 0 {
		o.CoalesceWindow = 0
	}
	if o.MaxPostsPerHour <= 0 {
		o.MaxPostsPerHour = DefaultMaxPostsPerHour
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.Owner == "" {
		o.Owner = randomID()
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = mathrand.Float64
	}
	return &Service{store: store, triager: t, poster: p, opts: o, wake: make(chan struct{}, 1),
		inflight: map[string]bool{}, retry: map[string]retryState{}}
}

// Store is the service's store.
func (s *Service) Store() Store { return s.store }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.opts.Now() }

// Result says what a notification did, for the source's answer.
type Result string

// The results of a notification.
const (
	ResultNew      Result = "new"
	ResultAgain    Result = "firing_again"
	ResultJoined   Result = "joined"
	ResultIgnored  Result = "ignored_cleared"
	ResultResolved Result = "resolved"
	ResultNotOpen  Result = "not_open"
)

// Notify records a halt event and wakes the worker. Once it returns nil the
// event is stored and will be acted on, whatever happens to the process;
// an error means the source should send it again.
func (s *Service) Notify(ctx context.Context, e Event) (Result, error) {
	res, err := s.NotifyAll(ctx, []Event{e})
	if err != nil {
		return "", err
	}
	return res[0], nil
}

// NotifyAll records events in order, the firings of a run of them in one
// store transaction, and wakes the worker once. The work they call for
// (triage, posts) is done by Run, never here, so that a source is
// answered as soon as its events are stored. On error, the events before
// the failed one may be stored: a source sends them all again, and a
// repeated event only counts another firing.
func (s *Service) NotifyAll(ctx context.Context, events []Event) ([]Result, error) {
	out := make([]Result, 0, len(events))
	batchResolver, batches := s.store.(BatchResolver)
	// run holds consecutive events of one status, stored together.
	var run []Event
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		defer func() { run = run[:0] }()
		now := s.opts.Now()
		if run[0].Firing {
			fired, err := s.store.Fire(ctx, run, now, now.Add(-s.opts.CoalesceWindow))
			if err != nil {
				return err
			}
			for i, f := range fired {
				out = append(out, s.logFired(run[i], f))
			}
			return nil
		}
		if batches {
			resolved, err := batchResolver.ResolveAll(ctx, run, now)
			if err != nil {
				return err
			}
			for i, r := range resolved {
				out = append(out, s.logResolved(run[i], r.Halt, r.OK))
			}
			return nil
		}
		for _, e := range run {
			h, ok, err := s.store.Resolve(ctx, e, now)
			if err != nil {
				return err
			}
			out = append(out, s.logResolved(e, h, ok))
		}
		return nil
	}
	for _, e := range events {
		status := "resolved"
		if e.Firing {
			status = "firing"
		}
		if s.opts.Observer != nil {
			s.opts.Observer.HaltNotification(e.Source, status)
		}
		if len(run) > 0 && run[0].Firing != e.Firing {
			if err := flush(); err != nil {
				return out, err
			}
		}
		run = append(run, e)
	}
	if err := flush(); err != nil {
		return out, err
	}
	s.poke()
	return out, nil
}

func (s *Service) logFired(e Event, f Fired) Result {
	log := s.opts.Log.WithFields(logrus.Fields{"source": e.Source, "name": e.Name, "scope": e.Scope.String(), "key": e.Key, "halt": f.Halt.Fingerprint})
	switch f.Result {
	case FireIgnored:
		log.Debug("firing of a cleared halt ignored")
		return ResultIgnored
	case FireAgain:
		log.WithField("firings", f.Halt.Firings).Debug("halt still firing")
		return ResultAgain
	case FireJoined:
		log.WithField("parent", f.Halt.Parent).Debug("halt joined an open halt of its scope")
		return ResultJoined
	}
	log.Info("halt fired")
	return ResultNew
}

func (s *Service) logResolved(e Event, h Halt, ok bool) Result {
	log := s.opts.Log.WithFields(logrus.Fields{"source": e.Source, "name": e.Name, "scope": e.Scope.String(), "key": e.Key})
	if !ok {
		log.Debug("resolved notice for no open halt")
		return ResultNotOpen
	}
	log = log.WithFields(logrus.Fields{"halt": h.Fingerprint, "duration": h.ResolvedAt.Sub(h.FiredAt).String()})
	if h.Parent != "" {
		// One of many alerts of a halt: its own halt's line says enough.
		log.Debug("joined halt resolved")
		return ResultResolved
	}
	log.Info("halt resolved")
	return ResultResolved
}

// OpenHalts returns the open halts of a source and name.
func (s *Service) OpenHalts(ctx context.Context, source Source, name string) ([]Halt, error) {
	return s.store.OpenHalts(ctx, source, name)
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run works on due halts until ctx ends, then waits for the work under way.
// Halts left half-done by an earlier run (pending, mid-post, resolution not
// announced) are due at once.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(s.opts.Tick)
	defer ticker.Stop()
	for {
		s.housekeep(ctx)
		s.dispatch(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-ticker.C:
		}
	}
}

// housekeep posts the "suppressed" note when one is owed and prunes the
// store when it is time.
func (s *Service) housekeep(ctx context.Context) {
	now := s.opts.Now()
	s.mu.Lock()
	prune := s.lastPrune.IsZero() || now.Sub(s.lastPrune) >= s.opts.PruneEvery
	if prune {
		s.lastPrune = now
	}
	s.mu.Unlock()
	if prune {
		p, err := s.store.Prune(ctx, now.Add(-s.opts.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Log.WithError(err).Warn("pruning the store failed")
		case err == nil && p.Halts+p.Triages+p.Deliveries > 0:
			s.opts.Log.WithFields(logrus.Fields{"halts": p.Halts, "triages": p.Triages, "deliveries": p.Deliveries,
				"retention": s.opts.Retention.String()}).Info("store pruned")
		}
	}
	s.noteSuppressed(ctx, now)
}

// noteSuppressed posts one "N more halts suppressed" message when halts
// were held back and the last such message is an interval old.
func (s *Service) noteSuppressed(ctx context.Context, now time.Time) {
	s.mu.Lock()
	n := s.suppressed
	due := n > 0 && (s.lastNote.IsZero() || now.Sub(s.lastNote) >= s.opts.StillFailingInterval)
	if due {
		s.suppressed, s.lastNote = 0, now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	pctx, cancel := postContext(ctx)
	defer cancel()
	if _, err := s.poster.Reply(pctx, s.opts.Channel, "", suppressedMessage(n, s.opts.MaxPostsPerHour)); err != nil {
		s.opts.Log.WithError(err).WithField("suppressed", n).Warn("posting the suppressed-halts note failed")
		s.mu.Lock()
		s.suppressed += n // said at the next chance
		s.mu.Unlock()
	}
}

// dispatch starts work on each due halt that is not already being worked
// on nor waiting out a backoff.
func (s *Service) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	now := s.opts.Now()
	due, err := s.store.Due(ctx, now, now.Add(-s.opts.StillFailingInterval), dueBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.opts.Log.WithError(err).Warn("listing due halts failed")
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range due {
		if s.inflight[h.Fingerprint] || len(s.inflight) >= s.opts.MaxParallel {
			continue
		}
		if r, ok := s.retry[h.Fingerprint]; ok && now.Before(r.next) {
			continue
		}
		s.inflight[h.Fingerprint] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, h.Fingerprint)
			s.mu.Lock()
			delete(s.inflight, h.Fingerprint)
			s.mu.Unlock()
			s.poke() // a slot is free: halts left waiting can start
		}()
	}
}

// RunOnce works on every halt due now, one after the other, and returns
// when all are done. It is Run's work without the loop, for tests and
// one-shot use.
func (s *Service) RunOnce(ctx context.Context) error {
	s.housekeep(ctx)
	now := s.opts.Now()
	due, err := s.store.Due(ctx, now, now.Add(-s.opts.StillFailingInterval), dueBatch)
	if err != nil {
		return err
	}
	for _, h := range due {
		s.mu.Lock()
		r, waiting := s.retry[h.Fingerprint]
		s.mu.Unlock()
		if waiting && now.Before(r.next) {
			continue
		}
		s.work(ctx, h.Fingerprint)
	}
	return nil
}

// claimLease is how long a claim on a halt lasts: longer than a triage and
// the Slack steps after it, so that a live replica never loses a claim.
func (s *Service) claimLease() time.Duration { return s.opts.TriageTimeout + 4*postTimeout }

// work claims the halt and takes it forward. A panic is the halt's
// failure alone: it is logged with an id, said in the halt's thread, and
// retried with backoff like any failed step.
func (s *Service) work(ctx context.Context, fp string) {
	h, ok, err := s.store.Claim(ctx, fp, s.opts.Owner, s.opts.Now(), s.claimLease())
	if err != nil {
		if ctx.Err() == nil {
			s.fail(ctx, Halt{Fingerprint: fp}, "claim", err)
		}
		return
	}
	if !ok {
		return // another replica works on it
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
		defer cancel()
		if err := s.store.Release(rctx, fp, s.opts.Owner); err != nil {
			s.opts.Log.WithError(err).WithField("halt", fp).Debug("releasing the claim failed; it lapses")
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			s.panicked(ctx, h, v, debug.Stack())
		}
	}()
	s.handle(ctx, h)
}

// panicked handles a panic while working on h.
func (s *Service) panicked(ctx context.Context, h Halt, v any, stack []byte) {
	id := randomID()
	s.opts.Log.WithFields(logrus.Fields{"halt": h.Fingerprint, "error_id": id, "panic": fmt.Sprint(v), "stack": string(stack)}).
		Error("internal error while working on a halt")
	if h.TS != "" {
		pctx, cancel := postContext(ctx)
		defer cancel()
		if _, err := s.poster.Reply(pctx, h.Channel, h.TS, internalErrorMessage(id)); err != nil {
			s.opts.Log.WithError(err).WithField("halt", h.Fingerprint).Warn("posting the internal-error reply failed")
		}
	}
	s.fail(ctx, h, "internal error", fmt.Errorf("internal error %s", id))
}

// handle takes a halt one step or more forward; a failed step is tried
// again later, with backoff.
func (s *Service) handle(ctx context.Context, h Halt) {
	step, err := s.step(ctx, h)
	if err == nil {
		s.mu.Lock()
		_, held := s.retry[h.Fingerprint]
		delete(s.retry, h.Fingerprint)
		s.mu.Unlock()
		if h.Failures > 0 || held {
			err = s.store.Succeeded(ctx, h.Fingerprint)
		}
		if err == nil {
			return
		}
		step = "recording success"
	}
	if ctx.Err() != nil {
		return // shutting down: the step is due again at the next start
	}
	s.fail(ctx, h, step, err)
}

// fail schedules the next attempt of a failed step, in memory first, so
// that a store that cannot record the failure does not make the halt due
// again at once; it logs one warning per attempt.
func (s *Service) fail(ctx context.Context, h Halt, step string, err error) {
	now := s.opts.Now()
	s.mu.Lock()
	n := max(h.Failures, s.retry[h.Fingerprint].failures) + 1
	wait := s.backoff(n)
	s.retry[h.Fingerprint] = retryState{failures: n, next: now.Add(wait)}
	s.mu.Unlock()
	log := s.opts.Log.WithError(err).WithFields(logrus.Fields{"halt": h.Fingerprint, "step": step, "failures": n, "retry_in": wait.String()})
	if ferr := s.store.Failed(ctx, h.Fingerprint, now.Add(wait)); ferr != nil {
		log = log.WithField("record_error", ferr.Error())
	}
	log.Warn("halt step failed")
}

// backoff is the wait after n failures in a row: 5 s doubling, at most 10
// min, less up to half of it at random so that halts that failed together
// are not retried together.
func (s *Service) backoff(n int) time.Duration {
	d := backoff(n)
	return d - time.Duration(float64(d/2)*s.opts.Jitter())
}

// step does the halt's due steps in order and names the one that failed.
func (s *Service) step(ctx context.Context, h Halt) (string, error) {
	switch h.PostState {
	case PostJoined, PostSuppressed:
		return "", nil
	case PostPending:
		ok, err := s.reserve(ctx)
		if err != nil {
			return "budget", err
		}
		if !ok {
			return "budget", s.suppress(ctx, h)
		}
		err = s.post(ctx, h)
		s.unreserve()
		if err != nil {
			return "post", err
		}
	case PostPosting:
		if err := s.post(ctx, h); err != nil {
			return "post", err
		}
	}
	if h.PostState != PostPosted {
		var err error
		if h, err = s.store.Halt(ctx, h.Fingerprint); err != nil {
			return "post", err
		}
	}
	if !h.Open() {
		if err := s.announceResolved(ctx, h); err != nil {
			return "resolve", err
		}
		return "", nil
	}
	if h.Joined > h.JoinedAnnounced {
		if err := s.announceJoined(ctx, h); err != nil {
			return "joined", err
		}
	}
	now := s.opts.Now()
	if h.Firings > h.FiringsAtUpdate && now.Sub(h.UpdatedAt) >= s.opts.StillFailingInterval {
		pctx, cancel := postContext(ctx)
		defer cancel()
		if _, err := s.poster.Reply(pctx, h.Channel, h.TS, stillFailingMessage(h, now)); err != nil {
			return "still failing", fmt.Errorf("still failing reply: %w", err)
		}
		if err := s.store.StillFailingSent(ctx, h.Fingerprint, h.Firings, now); err != nil {
			return "still failing", err
		}
	}
	return "", nil
}

// reserve takes one post of the budget, and reports false when the posts
// of the last hour, with those under way, have spent it.
func (s *Service) reserve(ctx context.Context) (bool, error) {
	n, err := s.store.PostsSince(ctx, s.opts.Now().Add(-budgetWindow))
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n+s.reserved >= s.opts.MaxPostsPerHour {
		return false, nil
	}
	s.reserved++
	return true, nil
}

func (s *Service) unreserve() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// suppress records that h is not posted, and counts it for the note.
func (s *Service) suppress(ctx context.Context, h Halt) error {
	if err := s.store.Suppress(ctx, h.Fingerprint); err != nil {
		return err
	}
	s.mu.Lock()
	s.suppressed++
	s.mu.Unlock()
	if s.opts.Observer != nil {
		s.opts.Observer.HaltsSuppressed(1)
	}
	s.opts.Log.WithFields(logrus.Fields{"halt": h.Fingerprint, "scope": h.Scope.String(), "max_posts_per_hour": s.opts.MaxPostsPerHour}).
		Info("halt not posted: the post budget is spent")
	return nil
}

// announceJoined lists in the halt's thread the halts that joined it
// since the last such reply.
func (s *Service) announceJoined(ctx context.Context, h Halt) error {
	joined, err := s.store.JoinedHalts(ctx, h.Fingerprint, h.JoinedAnnounced, maxJoinedListed)
	if err != nil {
		return err
	}
	pctx, cancel := postContext(ctx)
	defer cancel()
	if _, err := s.poster.Reply(pctx, h.Channel, h.TS, joinedMessage(h.Joined-h.JoinedAnnounced, joined)); err != nil {
		return fmt.Errorf("joined reply: %w", err)
	}
	return s.store.JoinedAnnounced(pctx, h.Fingerprint, h.Joined)
}

// postContext is the context of a Slack step: it outlives a shutdown by up
// to postTimeout, so that a post under way completes and its ts is stored.
func postContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
}

// post triages the halt's scope and posts the report, once. The pending
// state is stored before the post and the ts after it; a halt found
// mid-post (Sift stopped or the post failed in between) is looked for in
// the channel before it is posted again.
func (s *Service) post(ctx context.Context, h Halt) error {
	channel := s.opts.Channel
	log := s.opts.Log.WithFields(logrus.Fields{"halt": h.Fingerprint, "channel": channel})
	if h.PostState == PostPosting {
		if h.Channel != "" {
			channel = h.Channel
		}
		if f, ok := s.poster.(PostFinder); ok {
			pctx, cancel := postContext(ctx)
			ts, err := f.FindPost(pctx, channel, Marker(h.Fingerprint), h.FiredAt.Add(-findSlack))
			cancel()
			switch {
			case err != nil && h.Failures+1 < maxFindFailures:
				return fmt.Errorf("looking for an earlier post: %w", err)
			case err != nil:
				// The search keeps failing (a missing scope, say): a halt
				// that is never posted is worse than one posted twice.
				log.WithError(err).Warn("cannot search the channel for an earlier post; posting again")
			case ts != "":
				log.WithField("ts", ts).Info("halt was posted before Sift stopped; keeping that post")
				return s.store.Posted(ctx, h.Fingerprint, channel, ts, s.opts.Now())
			}
		}
	}

	tctx, cancel := context.WithTimeout(ctx, s.opts.TriageTimeout)
	start := s.opts.Now()
	r, err := s.triager.Triage(tctx, h.Scope)
	cancel()
	d := s.opts.Now().Sub(start)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: triage again at the next start
	}
	if s.opts.OnTriage != nil {
		s.opts.OnTriage(h.Scope, r, err, d)
	}
	rec := NewTriageRecord(OriginHalt, h.Scope, r, err, d, start, s.opts.Classify)
	rec.Halt = h.Fingerprint
	if _, rerr := s.store.RecordTriage(ctx, rec); rerr != nil {
		log.WithError(rerr).Warn("recording the triage failed")
	}
	if r == nil {
		r = unavailableReport(h.Scope, err, start, d)
	}

	opts := formatters.SlackOptions{Title: Title(h)}
	summary, err := json.Marshal(storedMessage(formatters.Slack(r, opts).Summary))
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := s.store.BeginPost(ctx, h.Fingerprint, channel, summary); err != nil {
		return err
	}
	pctx, pcancel := postContext(ctx)
	defer pcancel()
	ts, err := s.poster.PostReport(pctx, channel, "", r, opts)
	if ts == "" {
		if err == nil {
			err = errors.New("no message ts in the answer")
		}
		return fmt.Errorf("posting the report: %w", err)
	}
	if serr := s.store.Posted(pctx, h.Fingerprint, channel, ts, s.opts.Now()); serr != nil {
		return serr
	}
	if err != nil {
		// The summary is up: posting it again would be a duplicate. What
		// Slack refused of its thread is said in the thread by the poster.
		log.WithError(err).Warn("halt posted, part of its thread was refused")
	}
	log.WithField("ts", ts).Info("halt posted")
	if _, err := s.poster.Reply(pctx, channel, ts, detailsMessage(h)); err != nil {
		// The report is up; the halt's own details are a courtesy.
		log.WithError(err).Warn("posting the halt's details failed")
	}
	return nil
}

// announceResolved edits the post to show the halt cleared, then replies
// in its thread; each step is stored once done.
func (s *Service) announceResolved(ctx context.Context, h Halt) error {
	pctx, cancel := postContext(ctx)
	defer cancel()
	if !h.ResolveEdited {
		m, err := resolvedSummary(h)
		if err != nil {
			return err
		}
		if err := s.poster.Update(pctx, h.Channel, h.TS, m); err != nil {
			return fmt.Errorf("editing the post: %w", err)
		}
		if err := s.store.ResolveEdited(pctx, h.Fingerprint); err != nil {
			return err
		}
	}
	if !h.ResolveReplied {
		if _, err := s.poster.Reply(pctx, h.Channel, h.TS, resolvedReply(h)); err != nil {
			return fmt.Errorf("resolved reply: %w", err)
		}
		if err := s.store.ResolveReplied(pctx, h.Fingerprint); err != nil {
			return err
		}
	}
	s.opts.Log.WithFields(logrus.Fields{"halt": h.Fingerprint, "ts": h.TS}).Info("halt resolution announced")
	return nil
}

// unavailableReport stands in for the report of a triage that could not
// run, so that the halt is still posted, with the reason.
func unavailableReport(scope triage.Scope, err error, start time.Time, d time.Duration) *triage.Report {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	return &triage.Report{Scope: scope, Headline: "Sift could not triage " + scope.String() + ": " + msg, StartedAt: start, Duration: d}
}

// backoff is the wait after n failures in a row: 5 s doubling, at most 10 min.
func backoff(n int) time.Duration {
	d := firstBackoff
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// randomID is a short random id, for a replica or an error to quote.
func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
