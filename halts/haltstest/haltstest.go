// Package haltstest holds the fakes that the tests of halts and of its
// sources share: a settable clock, a triager, a Slack poster that can fail
// or die mid-post, and a rig that runs a service over a SQLite store it
// can restart.
package haltstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/sqlite"
	"github.com/sift-chatops/sift/triage"
)

// Clock is a settable time source.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func NewClock() *Clock { return &Clock{t: time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Triager answers every scope with a small report, or Err; Panic makes
// it panic instead.
type Triager struct {
	mu    sync.Mutex
	calls []triage.Scope
	Err   error
	Panic any
}

func (f *Triager) Triage(_ context.Context, s triage.Scope) (*triage.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if f.Panic != nil {
		p := f.Panic
		f.Panic = nil
		panic(p)
	}
	if f.Err != nil {
		return nil, f.Err
	}
	return &triage.Report{
		Scope:    s,
		Headline: "commit e4a91b2 by John Doe explains 72 of 72 failing minions",
		Counts:   triage.Counts{Expected: 100, Answered: 96, Healthy: 24, Failing: 72, Unreachable: 4},
		Causes: []triage.Cause{{
			Kind: triage.CauseCommit, Key: "e4a91b2c", Summary: "commit e4a91b2 by John Doe", Minions: 72,
		}},
	}, nil
}

// Calls counts the triages asked for.
func (f *Triager) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// Message is what the fake poster saw.
type Message struct {
	Channel, TS, Thread string
	Title               string // header of a report or an update
	Text                string
}

// Poster records posts, replies and updates. It can fail a post before
// or after "Slack" accepted it, or stop the calling goroutine mid-post as
// a killed process would.
type Poster struct {
	mu      sync.Mutex
	n       int
	posts   []Message
	replies []Message
	updates []Message

	// FailPost makes the next PostReport fail without posting.
	FailPost error
	// AcceptThenFail makes the next PostReport post and then fail.
	AcceptThenFail error
	// ThreadFails makes the next PostReport post the summary and answer
	// its ts with an error, as the bot does when Slack refuses a thread
	// message.
	ThreadFails error
	// KillBefore and KillAfter stop the goroutine that posts, before or
	// after the message reached Slack.
	KillBefore, KillAfter bool
	// FailReplies makes every Reply fail.
	FailReplies error
	// PanicOnUpdate makes the next Update panic.
	PanicOnUpdate bool

	// Notify receives "post", "reply" and "update" as they happen.
	Notify chan string
}

// NewPoster returns a poster that has posted nothing.
func NewPoster() *Poster { return &Poster{Notify: make(chan string, 100)} }

func (p *Poster) nextTS() string {
	p.n++
	return fmt.Sprintf("1761127200.%06d", p.n)
}

func (p *Poster) event(kind string) {
	select {
	case p.Notify <- kind:
	default:
	}
}

func (p *Poster) PostReport(_ context.Context, channel, threadTS string, r *triage.Report, o formatters.SlackOptions) (string, error) {
	p.mu.Lock()
	if p.KillBefore {
		p.KillBefore = false
		p.mu.Unlock()
		runtime.Goexit()
	}
	if err := p.FailPost; err != nil {
		p.FailPost = nil
		p.mu.Unlock()
		return "", err
	}
	m := Message{Channel: channel, TS: p.nextTS(), Thread: threadTS, Title: o.Title, Text: r.Headline}
	p.posts = append(p.posts, m)
	kill := p.KillAfter
	p.KillAfter = false
	err := p.AcceptThenFail
	p.AcceptThenFail = nil
	threadErr := p.ThreadFails
	p.ThreadFails = nil
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

func (p *Poster) Reply(_ context.Context, channel, threadTS string, m formatters.SlackMessage) (string, error) {
	p.mu.Lock()
	if err := p.FailReplies; err != nil {
		p.mu.Unlock()
		return "", err
	}
	ts := p.nextTS()
	p.replies = append(p.replies, Message{Channel: channel, TS: ts, Thread: threadTS, Text: m.Text})
	p.mu.Unlock()
	p.event("reply")
	return ts, nil
}

func (p *Poster) Update(_ context.Context, channel, ts string, m formatters.SlackMessage) error {
	p.mu.Lock()
	if p.PanicOnUpdate {
		p.PanicOnUpdate = false
		p.mu.Unlock()
		panic("update exploded")
	}
	title := ""
	if len(m.Blocks) > 0 {
		if b, err := JSONOf(m.Blocks[0]); err == nil {
			title = b
		}
	}
	p.updates = append(p.updates, Message{Channel: channel, TS: ts, Title: title, Text: m.Text})
	p.mu.Unlock()
	p.event("update")
	return nil
}

// Posts are the reports posted.
func (p *Poster) Posts() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.posts...)
}

// Replies are the messages posted with Reply.
func (p *Poster) Replies() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.replies...)
}

// Updates are the edits.
func (p *Poster) Updates() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.updates...)
}

// Finder is a Poster that can search the channel, as the bot does
// with conversations.history.
type Finder struct {
	*Poster
	searches int
	// Err fails every search, as a token without the history scope would.
	Err error
}

// Searches counts the searches.
func (f *Finder) Searches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.searches
}

// FindPost implements halts.PostFinder.
func (f *Finder) FindPost(_ context.Context, channel, marker string, _ time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.searches++
	if f.Err != nil {
		return "", f.Err
	}
	for _, m := range f.posts {
		if m.Channel == channel && strings.Contains(m.Title, marker) {
			return m.TS, nil
		}
	}
	return "", nil
}

// Rig is a service over a SQLite store in a temporary directory, which a
// test can "restart": close and reopen the store and build a new service
// on it.
type Rig struct {
	T       testing.TB
	Path    string
	Clock   *Clock
	Triager *Triager
	Poster  halts.Poster
	Log     *logrus.Logger
	Store   *sqlite.Store
	Svc     *halts.Service
	// Options are the service's, with the rig's channel, clock and log
	// filled in; a test may change them and Restart.
	Options halts.Options
}

// Channel is where the rig's service posts.
const Channel = "C0HALTS01"

// NewRig returns a rig whose service posts with p.
func NewRig(t testing.TB, p halts.Poster) *Rig {
	t.Helper()
	log := logrus.New()
	log.SetOutput(testWriter{t})
	r := &Rig{T: t, Path: filepath.Join(t.TempDir(), "sift.db"), Clock: NewClock(), Triager: &Triager{}, Poster: p, Log: log}
	r.Options = halts.Options{
		Channel: Channel, StillFailingInterval: 30 * time.Minute, Log: r.Log, Now: r.Clock.Now,
		Jitter: func() float64 { return 0 }, Classify: classify,
	}
	r.Open()
	t.Cleanup(func() {
		if r.Store != nil {
			r.Store.Close()
		}
	})
	return r
}

// classify stands in for metrics.Classify, which the tests of the store
// cannot import without a cycle.
func classify(r *triage.Report, err error) (string, []string) {
	if r == nil {
		return "error", nil
	}
	var states []string
	for _, c := range r.Causes {
		if c.Kind == triage.CauseFailedState {
			states = append(states, c.Key)
		}
	}
	return "ok", states
}

// Open opens the store and builds the service.
func (r *Rig) Open() {
	r.T.Helper()
	s, err := sqlite.Open(context.Background(), r.Path)
	if err != nil {
		r.T.Fatal(err)
	}
	r.Store = s
	r.Svc = halts.NewService(s, r.Triager, r.Poster, r.Options)
}

// Restart closes the store and opens it again, as a new process would.
func (r *Rig) Restart() {
	r.T.Helper()
	if err := r.Store.Close(); err != nil {
		r.T.Fatal(err)
	}
	r.Open()
}

// Notify records e and fails the test on error.
func (r *Rig) Notify(e halts.Event) halts.Result {
	r.T.Helper()
	res, err := r.Svc.Notify(context.Background(), e)
	if err != nil {
		r.T.Fatal(err)
	}
	return res
}

// RunOnce works on the due halts.
func (r *Rig) RunOnce() {
	r.T.Helper()
	if err := r.Svc.RunOnce(context.Background()); err != nil {
		r.T.Fatal(err)
	}
}

// RunOnceMayDie runs RunOnce on a goroutine of its own, which the fake
// poster may stop as if the process had been killed.
func (r *Rig) RunOnceMayDie() {
	r.T.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Svc.RunOnce(context.Background())
	}()
	<-done
}

// Halts returns the stored halts, newest first.
func (r *Rig) Halts() []halts.Halt {
	r.T.Helper()
	hs, err := r.Store.Halts(context.Background(), 100000)
	if err != nil {
		r.T.Fatal(err)
	}
	return hs
}

// testWriter sends logs to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ErrSlackDown is a Slack outage.
var ErrSlackDown = errors.New("slack: service unavailable")

// Firing is a pipeline halt of key firing on datacenter scope.
func Firing(key string, scope string) halts.Event {
	return halts.Event{
		Source: halts.SourcePipeline, Key: key, Name: "release-2025.10.22",
		Scope:  triage.Scope{Kind: triage.ScopeDatacenter, Name: scope},
		Reason: "Salt failures above 20% in " + scope, URL: "https://ci.example.com/halts/1", Firing: true,
	}
}

// Resolved is the resolution of the pipeline halt of key.
func Resolved(key string) halts.Event {
	return halts.Event{Source: halts.SourcePipeline, Key: key, Firing: false}
}

// JSONOf is v marshalled, for comparing blocks.
func JSONOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// LogWriter sends what is written to the test's log, a line at a time.
func LogWriter(t testing.TB) io.Writer { return testWriter{t} }
