package halts_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeTriager answers every scope with a small report, or err.
type fakeTriager struct {
	mu    sync.Mutex
	calls []triage.Scope
	err   error
}

func (f *fakeTriager) Triage(_ context.Context, s triage.Scope) (*triage.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if f.err != nil {
		return nil, f.err
	}
	return &triage.Report{
		Scope:    s,
		Headline: "commit e4a91b2 by John Doe explains 72 of 72 failing minions",
		Counts:   triage.Counts{Expected: 100, Answered: 96, Healthy: 24, Failing: 72, Unreachable: 4},
		Causes: []triage.Cause{{
			Kind: triage.CauseCommit, Key: "e4a91b2c", Summary: "commit e4a91b2 by John Doe", Minions: 72,
			Evidence: triage.Evidence{FailedStates: []string{"file.managed|/etc/nginx/nginx.conf|Source file not found"}},
		}},
	}, nil
}

func (f *fakeTriager) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// message is what the fake poster saw.
type message struct {
	Channel, TS, Thread string
	Title               string // header of a report or an update
	Text                string
}

// fakePoster records posts, replies and updates. It can fail a post before
// or after "Slack" accepted it, or stop the calling goroutine mid-post as
// a killed process would.
type fakePoster struct {
	mu      sync.Mutex
	n       int
	posts   []message
	replies []message
	updates []message

	// failPost makes the next PostReport fail without posting.
	failPost error
	// acceptThenFail makes the next PostReport post and then fail.
	acceptThenFail error
	// threadFails makes the next PostReport post the summary and answer
	// its ts with an error, as the bot does when Slack refuses a thread
	// message.
	threadFails error
	// killBefore and killAfter stop the goroutine that posts, before or
	// after the message reached Slack.
	killBefore, killAfter bool

	notify chan string
}

func newPoster() *fakePoster { return &fakePoster{notify: make(chan string, 100)} }

func (p *fakePoster) nextTS() string {
	p.n++
	return fmt.Sprintf("1761127200.%06d", p.n)
}

func (p *fakePoster) event(kind string) {
	select {
	case p.notify <- kind:
	default:
	}
}

func (p *fakePoster) PostReport(_ context.Context, channel, threadTS string, r *triage.Report, o formatters.SlackOptions) (string, error) {
	p.mu.Lock()
	if p.killBefore {
		p.killBefore = false
		p.mu.Unlock()
		runtime.Goexit()
	}
	if err := p.failPost; err != nil {
		p.failPost = nil
		p.mu.Unlock()
		return "", err
	}
	m := message{Channel: channel, TS: p.nextTS(), Thread: threadTS, Title: o.Title, Text: r.Headline}
	p.posts = append(p.posts, m)
	kill := p.killAfter
	p.killAfter = false
	err := p.acceptThenFail
	p.acceptThenFail = nil
	threadErr := p.threadFails
	p.threadFails = nil
	p.mu.Unlock()
	p.event("post")
	if kill {
		runtime.Goexit()
	}
	if err != nil {
		return "", err
	}
	return m.TS, threadErr
}

func (p *fakePoster) Reply(_ context.Context, channel, threadTS string, m formatters.SlackMessage) (string, error) {
	p.mu.Lock()
	ts := p.nextTS()
	p.replies = append(p.replies, message{Channel: channel, TS: ts, Thread: threadTS, Text: m.Text})
	p.mu.Unlock()
	p.event("reply")
	return ts, nil
}

func (p *fakePoster) Update(_ context.Context, channel, ts string, m formatters.SlackMessage) error {
	p.mu.Lock()
	title := ""
	if len(m.Blocks) > 0 {
		if b, err := jsonOf(m.Blocks[0]); err == nil {
			title = b
		}
	}
	p.updates = append(p.updates, message{Channel: channel, TS: ts, Title: title, Text: m.Text})
	p.mu.Unlock()
	p.event("update")
	return nil
}

func (p *fakePoster) Posts() []message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]message(nil), p.posts...)
}

func (p *fakePoster) Replies() []message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]message(nil), p.replies...)
}

func (p *fakePoster) Updates() []message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]message(nil), p.updates...)
}

// finder is a fakePoster that can search the channel, as the bot does
// with conversations.history.
type finder struct {
	*fakePoster
	searches int
	// err fails every search, as a token without the history scope would.
	err error
}

func (f *finder) FindPost(_ context.Context, channel, marker string, _ time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches++
	if f.err != nil {
		return "", f.err
	}
	for _, m := range f.posts {
		if m.Channel == channel && strings.Contains(m.Title, marker) {
			return m.TS, nil
		}
	}
	return "", nil
}

// rig is a service over a store in a temporary directory, which a test can
// "restart": close and reopen the store and build a new service on it.
type rig struct {
	t       testing.TB
	path    string
	clock   *clock
	triager *fakeTriager
	poster  halts.Poster
	log     *logrus.Logger
	store   *halts.Store
	svc     *halts.Service
}

const testChannel = "C0HALTS01"

func newRig(t *testing.T, p halts.Poster) *rig {
	t.Helper()
	log := logrus.New()
	log.SetOutput(testWriter{t})
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "sift.db"), clock: newClock(), triager: &fakeTriager{}, poster: p, log: log}
	r.open()
	t.Cleanup(func() {
		if r.store != nil {
			r.store.Close()
		}
	})
	return r
}

func (r *rig) open() {
	r.t.Helper()
	s, err := halts.OpenStore(context.Background(), r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	r.store = s
	r.svc = halts.NewService(s, r.triager, r.poster, halts.Options{
		Channel: testChannel, StillFailingInterval: 30 * time.Minute, Log: r.log, Now: r.clock.Now,
	})
}

// restart closes the store and opens it again, as a new process would.
func (r *rig) restart() {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
}

func (r *rig) notify(e halts.Event) halts.Result {
	r.t.Helper()
	res, err := r.svc.Notify(context.Background(), e)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func (r *rig) runOnce() {
	r.t.Helper()
	if err := r.svc.RunOnce(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// runOnceMayDie runs RunOnce on a goroutine of its own, which the fake
// poster may stop as if the process had been killed.
func (r *rig) runOnceMayDie() {
	r.t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.svc.RunOnce(context.Background())
	}()
	<-done
}

func (r *rig) halts() []halts.Halt {
	r.t.Helper()
	hs, err := r.store.Halts(context.Background(), 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return hs
}

// testWriter sends logs to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var errSlackDown = errors.New("slack: service unavailable")

func firing(key string, scope string) halts.Event {
	return halts.Event{
		Source: halts.SourcePipeline, Key: key, Name: "release-2025.10.22",
		Scope:  triage.Scope{Kind: triage.ScopeDatacenter, Name: scope},
		Reason: "Salt failures above 20% in " + scope, URL: "https://ci.example.com/halts/1", Firing: true,
	}
}

func resolved(key string) halts.Event {
	return halts.Event{Source: halts.SourcePipeline, Key: key, Firing: false}
}
