package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// How a command reached the bot.
const (
	viaSlash   = "slash"
	viaMention = "mention"
)

// command is one slash command or @sift mention, as the bot needs it.
type command struct {
	via string
	// name is the slash command, or "@sift".
	name, text    string
	user, channel string
	// threadTS is the thread a mention was posted in; ts the mention
	// itself.
	threadTS, ts string
	responseURL  string
	received     time.Time
}

// maxAuditText bounds what a person typed, as the audit log keeps it.
const maxAuditText = 500

func slashCommand(sc slack.SlashCommand) *command {
	return &command{
		via: viaSlash, name: sc.Command, text: sc.Text, user: sc.UserID, channel: sc.ChannelID,
		responseURL: sc.ResponseURL,
	}
}

// mentionCommand reads an app_mention event; other events give nil. The
// event id comes back for deduplication either way.
func mentionCommand(data any) (*command, string) {
	ev, ok := data.(slackevents.EventsAPIEvent)
	if !ok {
		return nil, ""
	}
	eventID := ""
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		eventID = cb.EventID
	}
	var m *slackevents.AppMentionEvent
	switch d := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		m = d
	case slackevents.AppMentionEvent:
		m = &d
	}
	if m == nil || m.User == "" {
		return nil, eventID
	}
	return &command{
		via: viaMention, name: "@sift", text: m.Text, user: m.User, channel: m.Channel,
		threadTS: m.ThreadTimeStamp, ts: m.TimeStamp,
	}, eventID
}

// what names the command for a person: "/blame-dc" or "@sift dc".
func (c *command) what(kind triage.ScopeKind) string {
	if c.via == viaSlash {
		return c.name
	}
	if kind == triage.ScopeDatacenter {
		return "@sift dc"
	}
	return "@sift " + string(kind)
}

func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// handle runs one command to its end and audits it.
func (b *Bot) handle(life lifetimes, cmd *command) {
	ctx := life.post
	id := newID()
	log := b.log.WithFields(logrus.Fields{"id": id, "via": cmd.via, "user": cmd.user, "channel": cmd.channel})
	rec := AuditRecord{
		Time: cmd.received.UTC(), ID: id, Via: cmd.via, User: cmd.user, Channel: cmd.channel, ThreadTS: cmd.threadTS,
		Command: cmd.name, Text: truncate(cmd.text, maxAuditText),
	}
	defer func() {
		// A bug in one command must not take the others, or Sift, down.
		if v := recover(); v != nil {
			logPanic(log, v)
			rec.Outcome, rec.Reason = OutcomeFailed, "internal error"
			b.tell(ctx, cmd, internalErrorText(id))
		}
		rec.DurationMS = b.clock.Now().Sub(cmd.received).Milliseconds()
		if err := b.audit.write(rec); err != nil {
			log.WithError(err).Error("audit record not written")
		}
		log.WithFields(logrus.Fields{"outcome": rec.Outcome, "duration_ms": rec.DurationMS}).Info("command handled")
	}()

	if !b.authz.channelAllowed(cmd.channel) {
		r := b.authz.channelRefusal()
		rec.Outcome, rec.Reason = OutcomeRefused, r.audit
		b.tell(ctx, cmd, r.user)
		return
	}
	var req commands.Request
	var err error
	if cmd.via == viaSlash {
		req, err = b.deps.Parser.Slash(cmd.name, cmd.text)
	} else {
		req, err = b.deps.Parser.Mention(cmd.text)
	}
	if err != nil {
		rec.Outcome, rec.Reason = OutcomeUsageError, err.Error()
		b.tell(ctx, cmd, escapeText(err.Error()))
		return
	}
	if req.Help {
		rec.Outcome = OutcomeHelp
		b.tell(ctx, cmd, escapeText(b.deps.Parser.Help()))
		return
	}
	scope := req.Scope
	rec.Scope = &scope
	if ok, r := b.authz.allowed(ctx, scope.Kind, cmd.user, cmd.what(scope.Kind)); !ok {
		rec.Outcome, rec.Reason = OutcomeRefused, r.audit
		b.tell(ctx, cmd, r.user)
		return
	}
	if cmd.via == viaSlash {
		b.tell(ctx, cmd, ":hourglass_flowing_sand: Triaging *"+escapeText(scope.String())+"*… the report will appear in this channel.")
	}

	res := b.run(life, cmd.channel, cmd.threadTS, scope, formatters.SlackOptions{RequestedBy: cmd.user}, id, log)
	res.audit(&rec)
	if res.ts == "" && res.postErr != nil {
		b.tell(ctx, cmd, cannotPost(res.postErr, id))
	}
}

// audit fills in what rec says of how the triage went: a report that
// reached no master is a failed command, one that some datacenters did
// not answer a partial one, whatever Slack did with it.
func (res outcome) audit(rec *AuditRecord) {
	rec.MessageTS = res.ts
	var reportOutcome triage.Outcome
	if res.report != nil {
		reportOutcome = triage.OutcomeOf(res.report)
		rec.Triage = string(reportOutcome)
		rec.Headline = res.report.Headline
		failing := res.report.Counts.Failing
		rec.Failing = &failing
		if c, ok := res.report.TopCause(); ok {
			rec.TopCause = causeText(c)
		}
	}
	switch {
	case res.cancelled:
		rec.Outcome, rec.Reason = OutcomeCancelled, "shutdown"
	case res.err != nil:
		rec.Outcome, rec.Reason = OutcomeFailed, res.err.Error()
	case reportOutcome == triage.OutcomeFailed:
		rec.Outcome, rec.Reason = OutcomeFailed, res.report.Headline
	case res.postErr != nil && res.report != nil:
		rec.Outcome, rec.Reason = OutcomePartial, res.postErr.Error()
	case res.postErr != nil:
		rec.Outcome, rec.Reason = OutcomeFailed, res.postErr.Error()
	case reportOutcome == triage.OutcomePartial:
		rec.Outcome, rec.Reason = OutcomePartial, res.report.Headline
	default:
		rec.Outcome = OutcomeOK
	}
}

// internalErrorText is what a person is told of a failure that is not
// theirs to fix: the detail is in the log, under id.
func internalErrorText(id string) string {
	return "Sift hit an internal error; the log has id " + id + "."
}

// errInternal is a command that ended in a panic.
type errInternal struct{ id string }

func (e errInternal) Error() string { return "internal error (id " + e.id + ")" }

// logPanic logs a recovered panic with its stack: the stack where it
// happened, for a panic in one of a triage's goroutines.
func logPanic(log logrus.FieldLogger, v any) {
	stack := debug.Stack()
	var p *triage.PanicError
	if err, ok := v.(error); ok && errors.As(err, &p) && len(p.Stack) > 0 {
		stack, v = p.Stack, p.Value
	}
	log.WithFields(logrus.Fields{"panic": fmt.Sprint(v), "stack": string(stack)}).Error("command panicked")
}

// cannotPost tells a person why the report could not be posted at all.
func cannotPost(err error, id string) string {
	switch code := errorCode(err); code {
	case "not_in_channel", "channel_not_found":
		return "Sift cannot post in this channel (Slack said " + code + "). Invite it with `/invite @Sift`, or run the command where it is."
	default:
		return "Sift could not post the report here (Slack said " + code + "; id " + id + ")."
	}
}

// tell shows text to the person who ran cmd, and to them only when Slack
// allows: ephemeral, else through the slash command's response_url, else
// (a mention) in the thread. Silence is never an answer.
func (b *Bot) tell(ctx context.Context, cmd *command, text string) {
	err := b.ephemeral(ctx, cmd.channel, cmd.threadTS, cmd.user, text)
	if err == nil || ctx.Err() != nil {
		return
	}
	if cmd.responseURL != "" {
		err = b.respond(ctx, cmd.responseURL, text)
	} else {
		thread := cmd.threadTS
		if thread == "" {
			thread = cmd.ts
		}
		_, err = b.Reply(ctx, cmd.channel, thread, formatters.SlackMessage{Text: "<@" + cmd.user + "> " + text})
	}
	if err != nil {
		b.log.WithFields(logrus.Fields{"user": cmd.user, "channel": cmd.channel}).Error("could not answer the user")
	}
}

// outcome is how a triage went in Slack.
type outcome struct {
	report *triage.Report
	// ts is the summary message, empty when it could not be posted.
	ts string
	// err is why the triage failed; postErr why Slack refused part of it.
	err, postErr error
	cancelled    bool
}

// TriageTo triages scope and posts the report to channel, in the thread
// threadTS when it is set: first a summary message that shows progress
// while the triage runs, then the final summary, its thread and, when
// needed, the JSON file. It returns the report and the summary's ts. When
// ctx ends mid-triage, the summary and a message in its thread say that
// the triage was stopped.
func (b *Bot) TriageTo(ctx context.Context, channel, threadTS string, scope triage.Scope, o formatters.SlackOptions) (*triage.Report, string, error) {
	id := newID()
	res := b.run(lifetimes{triage: ctx, post: ctx}, channel, threadTS, scope, o, id, b.log.WithField("id", id))
	return res.report, res.ts, errors.Join(res.err, res.postErr)
}

// noteTimeout bounds the message that says a triage was stopped, when the
// context it would have used has ended.
const noteTimeout = 5 * time.Second

// run posts the progress summary, runs the triage in a slot, and posts
// its report or what went wrong.
func (b *Bot) run(life lifetimes, channel, threadTS string, scope triage.Scope, o formatters.SlackOptions, id string, log logrus.FieldLogger) (res outcome) {
	ctx := life.post
	ts, err := b.Reply(ctx, channel, threadTS, formatters.SlackProgress(scope, formatters.Progress{}, o))
	if err != nil {
		return outcome{postErr: err}
	}
	res = outcome{ts: ts}
	root := threadTS
	if root == "" {
		root = ts
	}
	start := b.clock.Now()
	view := &progressView{scope: scope, o: o, start: start}
	live := b.startLive(ctx, channel, ts, view.render)
	finished, observed := false, false
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		logPanic(log, v)
		if !observed && b.deps.OnTriage != nil {
			b.deps.OnTriage(scope, nil, errInternal{id}, b.clock.Now().Sub(start))
		}
		msg := internalErrorText(id)
		var uerr error
		if !finished {
			uerr = live.abort(ctx, formatters.SlackError(scope, msg, o))
		}
		_, rerr := b.Reply(ctx, channel, root, formatters.SlackMessage{Text: ":x: " + msg})
		res = outcome{report: res.report, ts: ts, err: errInternal{id}, postErr: errors.Join(uerr, rerr)}
	}()

	rep, err := b.triage(life.triage, scope, func(p triage.Progress) {
		view.set(p, b.clock.Now())
		live.changed()
	})
	d := b.clock.Now().Sub(start)
	observed = true
	if b.deps.OnTriage != nil {
		b.deps.OnTriage(scope, rep, err, d)
	}
	log = log.WithFields(logrus.Fields{"scope": string(scope.Kind), "name": scope.Name, "duration_ms": d.Milliseconds()})

	switch {
	case err == nil:
		res.report = rep
		o = b.reportOptions(o, rep)
		if o.AuthorMentions == nil {
			o.AuthorMentions = b.authorMentions(ctx, rep)
		}
		sr := formatters.Slack(rep, o)
		finished = true
		uerr := live.finish(ctx, sr.Summary)
		if uerr != nil && ctx.Err() == nil {
			note := ":warning: Sift could not update the summary above (Slack said " + errorCode(uerr) + "); the details follow."
			_, _ = b.Reply(ctx, channel, root, formatters.SlackMessage{Text: note})
		}
		res.postErr = errors.Join(uerr, b.postDetails(ctx, channel, root, rep, sr))

	case life.triage.Err() != nil:
		res.cancelled, res.err = true, err
		log.Warn("triage cancelled by shutdown")
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if ctx.Err() != nil {
			nctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
		}
		defer cancel()
		msg := triage.StoppedHeadline(d, b.rerun(scope)) + "."
		finished = true
		uerr := live.finish(nctx, formatters.SlackStopped(scope, d, b.rerunCommand(scope), o))
		_, rerr := b.Reply(nctx, channel, root, formatters.SlackMessage{Text: ":octagonal_sign: " + msg})
		res.postErr = errors.Join(uerr, rerr)

	default:
		res.err = err
		var unknown *triage.UnknownScopeError
		msg := err.Error()
		if !errors.As(err, &unknown) {
			// Not the person's to fix: the detail goes to the log.
			log.WithError(err).Error("triage failed")
			msg = "Sift hit an internal error. Quote id " + id + " to whoever runs Sift."
		}
		finished = true
		res.postErr = live.finish(ctx, formatters.SlackError(scope, msg, o))
	}
	return res
}

// rerun says how to run the triage of s again in Slack.
func (b *Bot) rerun(s triage.Scope) string {
	names := b.deps.Parser.Names
	slash := map[triage.ScopeKind]string{triage.ScopeMinion: names.Minion, triage.ScopeDatacenter: names.Datacenter, triage.ScopeGroup: names.Group}[s.Kind]
	return "`" + slash + " " + s.Name + "`"
}

// triage runs one triage in a slot: MaxTriages run at once, the others
// wait for theirs.
func (b *Bot) triage(ctx context.Context, scope triage.Scope, progress func(triage.Progress)) (*triage.Report, error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-b.slots }()
	return b.deps.Triagers(progress).Triage(ctx, scope)
}
