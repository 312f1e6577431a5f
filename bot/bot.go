// Package bot is Sift's Slack side: the socket-mode connection, the slash
// commands and @sift mentions it turns into triages, who may run them, the
// audit log, and the threaded messages that carry a report, posted within
// Slack's rate limits; it finds its own posts again in a channel's history.
//
// The socket-mode event loop only acknowledges, deduplicates and hands
// envelopes to a goroutine per command; nothing on it waits for Slack or
// Salt. Web API calls that Slack rate-limits are resent after Retry-After.
package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// Defaults of Config.
const (
	DefaultAPIURL           = "https://slack.com/api/"
	DefaultProgressInterval = time.Second
	DefaultShutdownGrace    = 30 * time.Second
	DefaultMaxTriages       = 8
	DefaultMembersTTL       = 5 * time.Minute
	DefaultMaxAttempts      = 5
	// DefaultCallTimeout bounds one Web API call, a file upload included.
	DefaultCallTimeout = time.Minute
)

// Config is the bot's Slack setup.
type Config struct {
	// AppToken (xapp-…) opens the socket; BotToken (xoxb-…) makes the Web
	// API calls. They are revealed once, to build the Slack client.
	AppToken, BotToken config.Secret
	// APIURL is the Web API base, ending in "/"; DefaultAPIURL when empty.
	APIURL string
	// Channels are the channel ids where commands are accepted; empty
	// means every channel the bot is in.
	Channels []string
	// Authz restricts each command kind to users and user groups.
	Authz config.Authz
	// ProgressInterval is the least time between two updates of one
	// message (Slack allows about one chat.update a second per message);
	// a running triage's summary is also refreshed that often when
	// nothing new came, so that its elapsed time and waits stay current.
	ProgressInterval time.Duration
	// ShutdownGrace is how long running triages may go on once Run's
	// context ends; they are then cancelled and say so in their thread.
	ShutdownGrace time.Duration
	// MaxTriages bounds the triages running at once; more commands wait.
	MaxTriages int
	// MembersTTL is how long a user group's members are cached.
	MembersTTL time.Duration
	// MaxAttempts bounds how often a rate-limited call is sent.
	MaxAttempts int
	// PingInterval is how long socket mode waits for Slack's ping before
	// it reconnects; 0 keeps slack-go's 30 s.
	PingInterval time.Duration
	// MentionAuthors says which commit authors a report mentions;
	// empty means formatters.MentionTop.
	MentionAuthors formatters.MentionPolicy
}

// Triager runs one triage. *triage.Triager is one.
type Triager interface {
	Triage(ctx context.Context, s triage.Scope) (*triage.Report, error)
}

var _ Triager = (*triage.Triager)(nil)

// TriagerFactory returns a Triager that reports its progress to progress,
// one per triage: triage.Options.Progress belongs to a Triager.
type TriagerFactory func(progress func(triage.Progress)) Triager

// Clock is the time the bot reads and waits on.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends and returns its error.
	Sleep(ctx context.Context, d time.Duration) error
	// NewTicker returns a ticker that ticks every d until stopped.
	NewTicker(d time.Duration) Ticker
}

// Ticker is what the bot needs of a time.Ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Deps are what the bot works with.
type Deps struct {
	// Triagers builds the Triager of each command.
	Triagers TriagerFactory
	// Parser reads what people type; its Names are the slash commands.
	Parser commands.Parser
	Log    logrus.FieldLogger
	// Audit receives one JSON line per command; nil discards them.
	Audit io.Writer
	// Clock is the real clock when nil.
	Clock Clock
	// HTTPClient makes the Web API calls; nil means one with
	// DefaultCallTimeout.
	HTTPClient *http.Client
	// OnSlackError, when set, is told every failed Web API call: the
	// method and Slack's error code (ratelimited for a 429).
	OnSlackError func(method, code string)
	// OnTriage, when set, is told every triage the bot ran.
	OnTriage func(scope triage.Scope, r *triage.Report, err error, d time.Duration)
}

// Bot is Sift in Slack.
type Bot struct {
	cfg   Config
	deps  Deps
	log   logrus.FieldLogger
	clock Clock
	api   *slack.Client

	authz  *authorizer
	audit  *auditLog
	emails *emailCache
	// reports are the last reports posted, for their buttons.
	reports reportStore
	slots   chan struct{}
	// me is the bot's identity, once FindPost asked Slack for it.
	me atomic.Pointer[identity]

	ready    atomic.Bool
	running  atomic.Bool
	handlers sync.WaitGroup
}

// New checks cfg and returns a Bot. It does not contact Slack.
func New(cfg Config, deps Deps) (*Bot, error) {
	var problems []error
	if cfg.AppToken.Reveal() == "" {
		problems = append(problems, errors.New("app token: empty"))
	}
	if cfg.BotToken.Reveal() == "" {
		problems = append(problems, errors.New("bot token: empty"))
	}
	if deps.Triagers == nil {
		problems = append(problems, errors.New("triagers: nil"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.MaxTriages <= 0 {
		cfg.MaxTriages = DefaultMaxTriages
	}
	if cfg.MembersTTL <= 0 {
		cfg.MembersTTL = DefaultMembersTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if deps.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		deps.Log = l
	}
	if deps.Audit == nil {
		deps.Audit = io.Discard
	}
	if deps.Clock == nil {
		deps.Clock = realClock{}
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: DefaultCallTimeout}
	}
	if deps.Parser.Names == (commands.SlashNames{}) {
		deps.Parser.Names = commands.DefaultSlashNames
	}
	// slack-go logs only in debug mode, which stays off: its debug output
	// holds message contents. Its logger is silenced all the same.
	quiet := log.New(io.Discard, "", 0)
	b := &Bot{
		cfg:   cfg,
		deps:  deps,
		log:   deps.Log,
		clock: deps.Clock,
		api: slack.New(cfg.BotToken.Reveal(),
			slack.OptionAPIURL(cfg.APIURL),
			slack.OptionAppLevelToken(cfg.AppToken.Reveal()),
			slack.OptionHTTPClient(deps.HTTPClient),
			slack.OptionLog(quiet)),
		audit:  &auditLog{w: deps.Audit},
		emails: newEmailCache(),
		slots:  make(chan struct{}, cfg.MaxTriages),
	}
	b.authz = &authorizer{b: b, channels: slices.Clone(cfg.Channels), access: map[triage.ScopeKind]config.Access{
		triage.ScopeMinion:     cfg.Authz.Minion,
		triage.ScopeDatacenter: cfg.Authz.Datacenter,
		triage.ScopeGroup:      cfg.Authz.Group,
	}, groups: map[string]members{}}
	return b, nil
}

// Ready reports whether the bot is connected to Slack and taking commands,
// for a readiness probe.
func (b *Bot) Ready() bool { return b.ready.Load() }

// lifetimes are the contexts of a command's work: triage ends when running
// triages must stop, post when Slack calls must stop too. On shutdown the
// first ends before the second, so a cancelled triage can still say so.
type lifetimes struct {
	triage, post context.Context
}

// ackQueueTimeout bounds the wait to queue an acknowledgement: Slack
// redelivers after 3 s anyway.
const ackQueueTimeout = 3 * time.Second

// Fatal Slack error codes: the token is wrong and retrying will not help.
var fatalCodes = []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}

// Run connects to Slack and handles commands until ctx ends or the
// connection fails for good (a token Slack refuses). When ctx ends, Run
// stops taking commands, lets running triages finish within the shutdown
// grace, then cancels the rest, each with a message in its thread, and
// returns nil.
func (b *Bot) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bot: already running")
	}
	defer b.running.Store(false)

	if _, err := b.api.AuthTestContext(ctx); err != nil {
		code := errorCode(err)
		if slices.Contains(fatalCodes, code) {
			return fmt.Errorf("slack: bot token: %s (check slack.bot_token)", code)
		}
		if ctx.Err() != nil {
			return nil
		}
		// Slack may be briefly unreachable; socket mode retries with backoff.
		b.log.WithField("code", code).Warn("slack auth.test failed")
	}

	triageCtx, stopTriages := context.WithCancel(context.WithoutCancel(ctx))
	postCtx, stopPosts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPosts()
	defer stopTriages()
	life := lifetimes{triage: triageCtx, post: postCtx}

	opts := []socketmode.Option{socketmode.OptionLog(log.New(io.Discard, "", 0))}
	if b.cfg.PingInterval > 0 {
		opts = append(opts, socketmode.OptionPingInterval(b.cfg.PingInterval))
	}
	sm := socketmode.New(b.api, opts...)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := sm.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		code := errorCode(err)
		if slices.Contains(fatalCodes, code) {
			return fmt.Errorf("slack: app token: %s (check slack.app_token)", code)
		}
		return fmt.Errorf("slack socket mode: %w", err)
	})
	g.Go(func() error {
		b.loop(gctx, sm, life)
		return nil
	})
	err := g.Wait()
	b.ready.Store(false)
	b.log.Info("slack connection closed, finishing running commands")
	b.drain(stopTriages, stopPosts)
	return err
}

// drain waits for the running commands: for the shutdown grace less a
// reserve, then it cancels their triages and gives them the reserve to
// say so in Slack, then it cancels their Slack calls.
func (b *Bot) drain(stopTriages, stopPosts context.CancelFunc) {
	// done ends when every command has finished.
	done, finished := context.WithCancel(context.Background())
	defer finished()
	go func() {
		b.handlers.Wait()
		finished()
	}()
	grace := b.cfg.ShutdownGrace
	reserve := min(grace/4, 5*time.Second)
	if b.clock.Sleep(done, grace-reserve) != nil {
		return
	}
	b.log.WithField("grace", grace.String()).Warn("cancelling running triages")
	stopTriages()
	if b.clock.Sleep(done, reserve) != nil {
		return
	}
	stopPosts()
	<-done.Done()
}

// loop is the socket-mode event loop. It must stay quick: acknowledge,
// deduplicate, hand over.
func (b *Bot) loop(ctx context.Context, sm *socketmode.Client, life lifetimes) {
	seen := newSeenSet(4096)
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-sm.Events:
			b.event(ctx, sm, evt, seen, life)
		}
	}
}

// event handles one socket-mode event.
func (b *Bot) event(ctx context.Context, sm *socketmode.Client, evt socketmode.Event, seen *seenSet, life lifetimes) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.ready.Store(false)
		return
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		if !b.ready.Swap(true) {
			b.log.Info("connected to slack")
		}
		return
	case socketmode.EventTypeConnectionError:
		b.ready.Store(false)
		fields := logrus.Fields{}
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			fields["attempt"], fields["backoff"], fields["code"] = e.Attempt, e.Backoff.String(), errorCode(e.ErrorObj)
		}
		b.log.WithFields(fields).Warn("slack connection failed, retrying")
		return
	case socketmode.EventTypeIncomingError:
		// Readiness is left to Connecting, which always comes before a
		// reconnect: this event may come from a connection already
		// replaced, after the new one said Connected.
		b.log.Info("slack connection dropped, reconnecting")
		return
	case socketmode.EventTypeInvalidAuth:
		b.ready.Store(false)
		return
	case socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("slack acknowledgement not written")
		return
	}
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		return
	}
	// Acknowledge first, whatever follows: Slack redelivers what is not
	// acknowledged within 3 s. slack-go queues acknowledgements for the
	// live connection; when there is none, waiting longer than Slack does
	// would only hold up the loop, and the redelivery is deduplicated.
	ackCtx, cancel := context.WithTimeout(ctx, ackQueueTimeout)
	err := sm.AckCtx(ackCtx, evt.Request.EnvelopeID, b.ackPayload(evt))
	cancel()
	if err != nil {
		b.log.WithField("envelope", evt.Request.EnvelopeID).WithError(err).Warn("slack acknowledgement not sent")
	}
	keys := []string{"envelope:" + evt.Request.EnvelopeID}
	var cmd *command
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		if sc, ok := evt.Data.(slack.SlashCommand); ok {
			cmd = slashCommand(sc)
		}
	case socketmode.EventTypeEventsAPI:
		var eventID string
		cmd, eventID = mentionCommand(evt.Data)
		if eventID != "" {
			keys = append(keys, "event:"+eventID)
		}
	}
	if seen.add(keys...) {
		b.log.WithFields(logrus.Fields{"envelope": evt.Request.EnvelopeID, "retry_attempt": evt.Request.RetryAttempt}).Info("slack redelivery ignored")
		return
	}
	if cb, ok := evt.Data.(slack.InteractionCallback); ok && evt.Type == socketmode.EventTypeInteractive {
		if work := b.interaction(cb); work != nil {
			b.handlers.Go(func() { work(life) })
		}
		return
	}
	if cmd == nil {
		return
	}
	cmd.received = b.clock.Now()
	b.handlers.Go(func() { b.handle(life, cmd) })
}
