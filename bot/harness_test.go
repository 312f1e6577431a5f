package bot_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/triage"
)

// Tokens of the tests: distinctive, so that a leak shows in any output.
const (
	appToken = "xapp-1-A0SIFT-1-appsecretTOKENvalue"
	botToken = "xoxb-1-2-botsecretTOKENvalue"
)

// Channels and users of the tests.
const (
	incident  = "C0INCIDENT"
	elsewhere = "C0RANDOM"
	alice     = "U0ALICE"
	bob       = "U0BOB"
	jdoe      = "U0JDOE"
)

const commitURL = "https://git.example.com/salt/-/commit/{commit}"

// syncBuffer is a buffer written by the bot's goroutines and read by the test.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// wait blocks until cond holds of the buffer's content, or ctx ends.
func (s *syncBuffer) wait(ctx context.Context, cond func(string) bool) error {
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch, content := s.changed, s.b.String()
		s.mu.Unlock()
		if cond(content) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testClock is the real clock, except that waits of a second or more
// (Retry-After) are recorded and shortened a hundredfold.
type testClock struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (c *testClock) Now() time.Time { return time.Now() }

func (c *testClock) Sleep(ctx context.Context, d time.Duration) error {
	if d >= time.Second {
		c.mu.Lock()
		c.sleeps = append(c.sleeps, d)
		c.mu.Unlock()
		d /= 100
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *testClock) NewTicker(d time.Duration) bot.Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// wallClock is the real clock, waits included.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (wallClock) NewTicker(d time.Duration) bot.Ticker { return realTicker{time.NewTicker(d)} }

// graceClock is a shutdown whose grace has passed as soon as it starts
// and whose reserve lasts until the commands have said they were stopped,
// however slow the machine: the waits of drain are the ones of exactly
// these lengths. Other waits are a testClock's.
type graceClock struct {
	testClock
	grace, reserve time.Duration
}

func (c *graceClock) Sleep(ctx context.Context, d time.Duration) error {
	switch d {
	case c.grace - c.reserve:
		return nil
	case c.reserve:
		<-ctx.Done()
		return ctx.Err()
	}
	return c.testClock.Sleep(ctx, d)
}

func (c *testClock) long() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// fleet is the demo incident on fake salt-apis, its minions answering ten
// times faster than in the demo. Salt's timeouts stay far above the
// minions' delays, so that a loaded machine does not turn answers into
// unreachable minions; the silent minions cost a triage 1.5 s.
type fleet struct {
	inv     triage.Inventory
	blamers map[string]triage.Blamer
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	f := fakesalt.DemoFleet()
	fl := &fleet{inv: triage.Inventory{Groups: f.Inventory.Groups}, blamers: map[string]triage.Blamer{}}
	for _, dc := range f.Inventory.Datacenters {
		fl.inv.Datacenters = append(fl.inv.Datacenters, triage.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target})
	}
	for _, m := range f.Masters {
		for _, mn := range m.Minions {
			mn.Delay /= 10
		}
		srv := fakesalt.NewServer(m)
		t.Cleanup(srv.Close)
		c, err := saltapi.New(saltapi.Config{
			Name: m.Name, URL: srv.URL(), Eauth: m.Eauth, Username: m.Username, Password: m.Password,
			Timeout: time.Second, GatherJobTimeout: 500 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		fl.blamers[m.Name] = c
	}
	return fl
}

func (f *fleet) triagers() bot.TriagerFactory {
	return func(progress func(triage.Progress)) bot.Triager {
		return triage.New(f.inv, f.blamers, triage.Options{
			CommitURL: commitURL, Progress: progress, ProgressInterval: 10 * time.Millisecond,
		})
	}
}

// jsonLogger logs everything, as JSON, to w.
func jsonLogger(w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	log.SetLevel(logrus.DebugLevel)
	log.SetFormatter(&logrus.JSONFormatter{})
	return log
}

// harness is a bot connected to a fake Slack.
type harness struct {
	t     testing.TB
	ctx   context.Context
	slack *fakeslack.Server
	bot   *bot.Bot
	clock *testClock
	logs  *syncBuffer
	audit *syncBuffer

	cancel context.CancelFunc
	done   chan error
	stop   sync.Once
	runErr error
}

type setup struct {
	cfg      func(*bot.Config)
	fake     fakeslack.Options
	triagers bot.TriagerFactory
	inv      *triage.Inventory
	deps     func(*bot.Deps)
}

// start runs a bot on a fake Slack; it is stopped when the test ends.
func start(t testing.TB, s setup) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	if s.fake.AppToken == "" {
		s.fake.AppToken = appToken
	}
	if s.fake.BotToken == "" {
		s.fake.BotToken = botToken
	}
	if s.fake.Users == nil {
		s.fake.Users = map[string]string{"jdoe@example.com": jdoe}
	}
	s.fake.PingInterval = 100 * time.Millisecond
	fs := fakeslack.New(s.fake)
	t.Cleanup(fs.Close)

	var inv triage.Inventory
	if s.triagers == nil {
		fl := newFleet(t)
		s.triagers, inv = fl.triagers(), fl.inv
	}
	if s.inv != nil {
		inv = *s.inv
	}
	h := &harness{t: t, ctx: ctx, slack: fs, clock: &testClock{}, logs: &syncBuffer{}, audit: &syncBuffer{}}
	log := jsonLogger(h.logs)

	cfg := bot.Config{
		AppToken: config.Secret(appToken), BotToken: config.Secret(botToken), APIURL: fs.APIURL(),
		ProgressInterval: 30 * time.Millisecond, ShutdownGrace: 5 * time.Second,
	}
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	deps := bot.Deps{
		Triagers: s.triagers,
		Parser:   commands.Parser{Inventory: inv, Names: commands.DefaultSlashNames},
		Log:      log, Audit: h.audit, Clock: h.clock,
	}
	if s.deps != nil {
		s.deps(&deps)
	}
	b, err := bot.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.bot = b
	runCtx, stop := context.WithCancel(context.Background())
	h.cancel = stop
	h.done = make(chan error, 1)
	go func() { h.done <- b.Run(runCtx) }()
	t.Cleanup(func() { h.shutdown() })
	if err := fs.Wait(ctx, func() bool { return fs.Connected() == 1 }); err != nil {
		t.Fatalf("bot did not connect: %v\nlogs:\n%s", err, h.logs)
	}
	return h
}

// shutdown cancels Run's context and waits for Run to return.
func (h *harness) shutdown() error {
	h.stop.Do(func() {
		h.cancel()
		select {
		case h.runErr = <-h.done:
		case <-time.After(30 * time.Second):
			h.t.Error("Run did not return after its context ended")
		}
	})
	return h.runErr
}

// slash sends a slash command and waits for its acknowledgement.
func (h *harness) slash(user, channel, cmd, text string) fakeslack.Sent {
	h.t.Helper()
	sent, err := h.slack.SendSlashCommand(h.ctx, fakeslack.SlashCommand{Command: cmd, Text: text, UserID: user, ChannelID: channel})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		h.t.Fatal(err)
	}
	return sent
}

// mention posts a message mentioning the bot and waits for the acknowledgement.
func (h *harness) mention(user, channel, threadTS, text string) fakeslack.Sent {
	h.t.Helper()
	sent, err := h.slack.SendMention(h.ctx, fakeslack.Mention{UserID: user, ChannelID: channel, Text: text, ThreadTS: threadTS})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		h.t.Fatal(err)
	}
	return sent
}

// records returns the audit log's records.
func (h *harness) records() []bot.AuditRecord {
	h.t.Helper()
	var out []bot.AuditRecord
	sc := bufio.NewScanner(strings.NewReader(h.audit.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r bot.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			h.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// waitAudit waits until the audit log holds n records.
func (h *harness) waitAudit(n int) []bot.AuditRecord {
	h.t.Helper()
	err := h.audit.wait(h.ctx, func(s string) bool { return strings.Count(s, "\n") >= n })
	if err != nil {
		h.t.Fatalf("waiting for %d audit records: %v\naudit:\n%s\nlogs:\n%s", n, err, h.audit, h.logs)
	}
	return h.records()
}

// texts returns the text of messages, their blocks' included.
func texts(ms []fakeslack.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s %s\n%s\n", m.TS, m.Text, blockText(m.Blocks))
	}
	return b.String()
}

// blockText is the text of a message's blocks, one text object a line.
func blockText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["text"].(string); ok {
				b.WriteString(t + "\n")
			}
			for k, e := range x {
				if k != "text" || !isString(e) {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// triagerFunc is a Triager scripted by the test.
type triagerFunc func(ctx context.Context, s triage.Scope, progress func(triage.Progress)) (*triage.Report, error)

func (f triagerFunc) factory() bot.TriagerFactory {
	return func(progress func(triage.Progress)) bot.Triager {
		return scripted{f: f, progress: progress}
	}
}

type scripted struct {
	f        triagerFunc
	progress func(triage.Progress)
}

func (s scripted) Triage(ctx context.Context, scope triage.Scope) (*triage.Report, error) {
	return s.f(ctx, scope, s.progress)
}

// smallInventory is the inventory of scripted triages.
var smallInventory = triage.Inventory{
	Datacenters: []triage.Datacenter{{Name: "ams01", Master: "salt-eu"}, {Name: "fra02", Master: "salt-eu"}},
	Groups:      map[string][]string{"europe": {"ams01", "fra02"}},
}

// cannedReport is a small report with one commit cause.
func cannedReport(scope triage.Scope) *triage.Report {
	return &triage.Report{
		Scope:     scope,
		Headline:  "commit e4a91b2 by John Doe explains 3 of 3 failing minions in 1 datacenter",
		StartedAt: time.Date(2025, 10, 22, 10, 5, 0, 0, time.UTC),
		Duration:  1200 * time.Millisecond,
		Counts:    triage.Counts{Expected: 4, Answered: 4, Healthy: 1, Failing: 3},
		Causes: []triage.Cause{{
			Kind: triage.CauseCommit, Key: "e4a91b2c9f7d", Summary: "commit e4a91b2 by John Doe broke /etc/nginx/nginx.conf",
			Minions: 3, MinionIDs: []string{"web-1", "web-2", "web-3"}, Datacenters: []string{"ams01"},
			Evidence: triage.Evidence{CommitID: "e4a91b2c9f7d", AuthorName: "John Doe", AuthorEmail: "jdoe@example.com"},
		}},
		Datacenters: []triage.DatacenterResult{{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 4, Answered: 4, Healthy: 1, Failing: 3}}},
	}
}
