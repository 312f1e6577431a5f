package halts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// Reply posts m in the thread of threadTS.
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

// Observer counts what the halt sources receive; *metrics.Metrics is one.
type Observer interface {
	HaltNotification(source, status string)
	WebhookRejected(hook, reason string)
}

// Defaults of Options.
const (
	DefaultStillFailingInterval = 30 * time.Minute
	DefaultTick                 = 5 * time.Second
	DefaultMaxParallel          = 4
	DefaultTriageTimeout        = 5 * time.Minute
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
)

// Options configure a Service.
type Options struct {
	// Channel is the Slack channel id halts are posted to.
	Channel string
	// StillFailingInterval is the least time between two "still failing"
	// replies of one halt.
	StillFailingInterval time.Duration
	// Tick is how often due work is looked for when nothing wakes the
	// service (retries, intervals).
	Tick time.Duration
	// MaxParallel bounds the halts worked on at once.
	MaxParallel int
	// TriageTimeout bounds a halt's triage.
	TriageTimeout time.Duration
	// OnTriage, when set, is told of every triage the service runs (for
	// metrics); the store keeps them in any case.
	OnTriage func(s triage.Scope, r *triage.Report, err error, d time.Duration)
	// Observer, when set, counts notifications and refused webhooks.
	Observer Observer
	Log      logrus.FieldLogger
	Now      func() time.Time
}

// Service receives halt events, keeps them in the store and does what each
// halt needs next: triage and post, reply that it still fails, announce
// that it cleared.
type Service struct {
	store   *Store
	triager Triager
	poster  Poster
	opts    Options

	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]bool
}

// NewService returns a service over store that triages with t and posts
// with p.
func NewService(store *Store, t Triager, p Poster, o Options) *Service {
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
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: store, triager: t, poster: p, opts: o, wake: make(chan struct{}, 1), inflight: map[string]bool{}}
}

// Store is the service's store.
func (s *Service) Store() *Store { return s.store }

// Result says what a notification did, for the source's answer.
type Result string

// The results of a notification.
const (
	ResultNew      Result = "new"
	ResultAgain    Result = "firing_again"
	ResultIgnored  Result = "ignored_cleared"
	ResultResolved Result = "resolved"
	ResultNotOpen  Result = "not_open"
)

// Notify records a halt event and wakes the worker. Once it returns nil the
// event is stored and will be acted on, whatever happens to the process;
// an error means the source should send it again.
func (s *Service) Notify(ctx context.Context, e Event) (Result, error) {
	now := s.opts.Now()
	log := s.opts.Log.WithFields(logrus.Fields{"source": e.Source, "name": e.Name, "scope": e.Scope.String(), "key": e.Key})
	status := "resolved"
	if e.Firing {
		status = "firing"
	}
	if s.opts.Observer != nil {
		s.opts.Observer.HaltNotification(string(e.Source), status)
	}
	if e.Firing {
		h, res, err := s.store.Fire(ctx, e, now)
		if err != nil {
			return "", err
		}
		switch res {
		case FireIgnored:
			log.WithField("halt", h.Fingerprint).Debug("firing of a cleared halt ignored")
			return ResultIgnored, nil
		case FireAgain:
			log.WithFields(logrus.Fields{"halt": h.Fingerprint, "firings": h.Firings}).Debug("halt still firing")
			s.poke()
			return ResultAgain, nil
		}
		log.WithField("halt", h.Fingerprint).Info("halt fired")
		s.poke()
		return ResultNew, nil
	}
	h, ok, err := s.store.Resolve(ctx, e, now)
	if err != nil {
		return "", err
	}
	if !ok {
		log.Debug("resolved notice for no open halt")
		return ResultNotOpen, nil
	}
	log.WithFields(logrus.Fields{"halt": h.Fingerprint, "duration": h.ResolvedAt.Sub(h.FiredAt).String()}).Info("halt resolved")
	s.poke()
	return ResultResolved, nil
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
		s.dispatch(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-ticker.C:
		}
	}
}

// dispatch starts work on each due halt that is not already being worked on.
func (s *Service) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	due, err := s.store.due(ctx, s.opts.Now(), s.opts.StillFailingInterval)
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
		s.inflight[h.Fingerprint] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, h)
			s.mu.Lock()
			delete(s.inflight, h.Fingerprint)
			s.mu.Unlock()
			s.poke() // a slot is free: halts left waiting can start
		}()
	}
}

// RunOnce works on every halt due now and returns when all are done. It is
// Run's work without the loop, for tests and one-shot use.
func (s *Service) RunOnce(ctx context.Context) error {
	due, err := s.store.due(ctx, s.opts.Now(), s.opts.StillFailingInterval)
	if err != nil {
		return err
	}
	for _, h := range due {
		s.handle(ctx, h)
	}
	return nil
}

// handle takes a halt one step or more forward; a failed step is tried
// again later, with backoff.
func (s *Service) handle(ctx context.Context, h Halt) {
	log := s.opts.Log.WithFields(logrus.Fields{"halt": h.Fingerprint, "source": h.Source, "name": h.Name, "scope": h.Scope.String()})
	step, err := s.step(ctx, h)
	if err == nil {
		if h.Failures > 0 {
			err = s.store.succeeded(ctx, h.Fingerprint)
		}
		if err == nil {
			return
		}
	}
	if ctx.Err() != nil {
		return // shutting down: the step is due again at the next start
	}
	wait := backoff(h.Failures + 1)
	log.WithError(err).WithFields(logrus.Fields{"step": step, "retry_in": wait.String()}).Warn("halt step failed")
	if ferr := s.store.failed(ctx, h.Fingerprint, s.opts.Now().Add(wait)); ferr != nil {
		log.WithError(ferr).Error("recording a failed halt step failed")
	}
}

// step does the halt's due steps in order and names the one that failed.
func (s *Service) step(ctx context.Context, h Halt) (string, error) {
	if h.PostState != PostPosted {
		if err := s.post(ctx, h); err != nil {
			return "post", err
		}
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
	now := s.opts.Now()
	if h.Firings > h.FiringsAtUpdate && now.Sub(h.UpdatedAt) >= s.opts.StillFailingInterval {
		pctx, cancel := postContext(ctx)
		defer cancel()
		if _, err := s.poster.Reply(pctx, h.Channel, h.TS, stillFailingMessage(h, now)); err != nil {
			return "still failing", fmt.Errorf("still failing reply: %w", err)
		}
		if err := s.store.stillFailingSent(ctx, h.Fingerprint, h.Firings, now); err != nil {
			return "still failing", err
		}
	}
	return "", nil
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
				return s.store.posted(ctx, h.Fingerprint, channel, ts, s.opts.Now())
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
	rec := NewTriageRecord(OriginHalt, h.Scope, r, err, d, start)
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
	if err := s.store.beginPost(ctx, h.Fingerprint, channel, summary); err != nil {
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
	if serr := s.store.posted(pctx, h.Fingerprint, channel, ts, s.opts.Now()); serr != nil {
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
		if err := s.store.resolveEdited(pctx, h.Fingerprint); err != nil {
			return err
		}
	}
	if !h.ResolveReplied {
		if _, err := s.poster.Reply(pctx, h.Channel, h.TS, resolvedReply(h)); err != nil {
			return fmt.Errorf("resolved reply: %w", err)
		}
		if err := s.store.resolveReplied(pctx, h.Fingerprint); err != nil {
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
