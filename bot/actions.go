package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// How an interaction reached the bot, as the audit log names it.
const (
	viaButton   = "button"
	viaShortcut = "shortcut"
)

// ShortcutCallbackID is the callback id of the "Triage with Sift" message
// shortcut, as the app manifest declares it.
const ShortcutCallbackID = "sift_triage"

// maxHeldReports bounds the reports kept for their buttons: a report of
// 100 000 minions holds megabytes of ids, and the buttons that need one
// are pressed while an incident is fresh. Re-run needs none.
const maxHeldReports = 32

// reportStore keeps the last reports posted with buttons, by report id,
// and the distinct minion ids they name, for the shortcut's type-ahead.
type reportStore struct {
	mu    sync.Mutex
	byID  map[string]*triage.Report
	order []string
	// held counts, for each minion id, the held reports that name it.
	held map[string]int
	// hay is the distinct minion ids, sorted, one a line; lowerHay the same
	// with ASCII letters lowered, byte for byte, so that an offset in one
	// is an offset in the other. A type-ahead searches them with
	// strings.Index: it runs before its envelope is acknowledged.
	hay, lowerHay string
}

func (s *reportStore) put(id string, r *triage.Report) {
	ids := minionSet(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID, s.held = map[string]*triage.Report{}, map[string]int{}
	}
	if old, ok := s.byID[id]; ok {
		s.forgetLocked(minionSet(old))
	} else {
		s.order = append(s.order, id)
	}
	s.byID[id] = r
	for m := range ids {
		s.held[m]++
	}
	for len(s.order) > maxHeldReports {
		s.forgetLocked(minionSet(s.byID[s.order[0]]))
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
	all := make([]string, 0, len(s.held))
	for m := range s.held {
		all = append(all, m)
	}
	slices.Sort(all)
	s.hay = strings.Join(all, "\n")
	s.lowerHay = lowerASCII(s.hay)
}

func (s *reportStore) forgetLocked(ids map[string]struct{}) {
	for m := range ids {
		if s.held[m]--; s.held[m] <= 0 {
			delete(s.held, m)
		}
	}
}

// minionSet is the distinct minion ids of a report's causes, those that
// could be typed: one a line in the hay, so none with a line break.
func minionSet(r *triage.Report) map[string]struct{} {
	out := map[string]struct{}{}
	for _, c := range r.Causes {
		for _, id := range c.MinionIDs {
			if id != "" && !strings.ContainsAny(id, "\n\r") {
				out[id] = struct{}{}
			}
		}
	}
	return out
}

func (s *reportStore) get(id string) (*triage.Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	return r, ok
}

// search returns at most n held minion ids that contain lower (lower
// case), ignoring the case of ASCII letters, in order.
func (s *reportStore) search(lower string, n int) []string {
	s.mu.Lock()
	hay, lowerHay := s.hay, s.lowerHay
	s.mu.Unlock()
	var out []string
	for from := 0; len(out) < n && from < len(lowerHay); {
		i := strings.Index(lowerHay[from:], lower)
		if i < 0 {
			break
		}
		i += from
		start := strings.LastIndexByte(hay[:i], '\n') + 1
		end := strings.IndexByte(hay[i:], '\n')
		if end < 0 {
			end = len(hay)
		} else {
			end += i
		}
		out = append(out, hay[start:end])
		from = end + 1
	}
	return out
}

// lowerASCII lowers the ASCII letters of s, leaving every other byte, so
// that the result is as long as s.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// reportOptions completes the options of a report the bot posts: the
// mention policy, and an id under which the report is held for its
// buttons.
func (b *Bot) reportOptions(o formatters.SlackOptions, r *triage.Report) formatters.SlackOptions {
	if o.Mentions == "" {
		o.Mentions = b.cfg.MentionAuthors
	}
	if o.ReportID == "" && r != nil {
		o.ReportID = newID()
		b.reports.put(o.ReportID, r)
	}
	return o
}

// ackPayload is what the acknowledgement of an envelope carries: the
// options of a type-ahead, or the errors that keep a modal open. Both are
// computed from memory, so the acknowledgement is not delayed.
func (b *Bot) ackPayload(evt socketmode.Event) any {
	if evt.Type != socketmode.EventTypeInteractive {
		return nil
	}
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		return nil
	}
	switch cb.Type {
	case slack.InteractionTypeBlockSuggestion:
		return b.suggestions(cb)
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID != ShortcutCallbackID {
			return nil
		}
		if _, errs := b.submittedScope(cb); len(errs) > 0 {
			return slack.NewErrorsViewSubmissionResponse(errs)
		}
	}
	return nil
}

// interaction returns the work an interactive envelope asks for, to run
// after its acknowledgement, or nil.
func (b *Bot) interaction(cb slack.InteractionCallback) func(lifetimes) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 {
			return nil
		}
		a := *cb.ActionCallback.BlockActions[0]
		switch a.ActionID {
		case formatters.ActionRerun, formatters.ActionAllMinions, formatters.ActionCauseMinions, formatters.ActionCauseMessages:
			return func(life lifetimes) { b.buttonPressed(life, cb, a) }
		}
	case slack.InteractionTypeMessageAction:
		if cb.CallbackID == ShortcutCallbackID {
			return func(life lifetimes) { b.shortcutUsed(life.post, cb) }
		}
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID == ShortcutCallbackID {
			if _, errs := b.submittedScope(cb); len(errs) == 0 {
				return func(life lifetimes) { b.viewSubmitted(life, cb) }
			}
		}
	}
	return nil
}

// interactionCommand is an interaction as the rest of the bot handles
// commands: who, where, and how to answer them privately.
func interactionCommand(cb slack.InteractionCallback, via, name, text string) *command {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	return &command{
		via: via, name: name, text: text, user: cb.User.ID, channel: channel,
		threadTS: threadOf(cb), responseURL: cb.ResponseURL,
	}
}

// threadOf is the thread an interaction on a message belongs to: the
// message's thread, or the message itself when it is at the top.
func threadOf(cb slack.InteractionCallback) string {
	for _, ts := range []string{cb.Message.ThreadTimestamp, cb.Container.ThreadTs, cb.Message.Timestamp, cb.Container.MessageTs, cb.MessageTs} {
		if ts != "" {
			return ts
		}
	}
	return ""
}

// buttonPressed answers a button of a report, through the same channel
// and user authorisation as the command that made the report, and audits
// it.
func (b *Bot) buttonPressed(life lifetimes, cb slack.InteractionCallback, a slack.BlockAction) {
	ctx := life.post
	cmd := interactionCommand(cb, viaButton, a.ActionID, a.Value)
	cmd.received = b.clock.Now()
	id := newID()
	log := b.log.WithFields(logrus.Fields{"id": id, "via": viaButton, "action": a.ActionID, "user": cmd.user, "channel": cmd.channel})
	rec := AuditRecord{
		Time: cmd.received.UTC(), ID: id, Via: viaButton, User: cmd.user, Channel: cmd.channel, ThreadTS: cmd.threadTS,
		Command: a.ActionID, Text: truncate(a.Value, maxAuditText),
	}
	defer b.finishAudit(&rec, cmd, log)

	if !b.authz.channelAllowed(cmd.channel) {
		r := b.authz.channelRefusal()
		rec.Outcome, rec.Reason = OutcomeRefused, r.audit
		b.tell(ctx, cmd, r.user)
		return
	}
	switch a.ActionID {
	case formatters.ActionRerun:
		scope, err := b.scopeOf(a.Value)
		if err != nil {
			rec.Outcome, rec.Reason = OutcomeUsageError, err.Error()
			b.tell(ctx, cmd, escapeText(err.Error()))
			return
		}
		b.runScope(life, cmd, scope, id, log, &rec)
	case formatters.ActionAllMinions, formatters.ActionCauseMinions, formatters.ActionCauseMessages:
		reportID, rank, _ := strings.Cut(a.Value, "/")
		r, ok := b.reports.get(reportID)
		if !ok {
			rec.Outcome, rec.Reason = OutcomeFailed, "report no longer held"
			b.tell(ctx, cmd, fmt.Sprintf("Sift no longer holds this report (it keeps the last %d). Press *Re-run* for a fresh one.", maxHeldReports))
			return
		}
		rec.Scope = &r.Scope
		if ok, ref := b.authz.allowed(ctx, r.Scope.Kind, cmd.user, "the buttons of a "+string(r.Scope.Kind)+" report"); !ok {
			rec.Outcome, rec.Reason = OutcomeRefused, ref.audit
			b.tell(ctx, cmd, ref.user)
			return
		}
		var err error
		switch a.ActionID {
		case formatters.ActionAllMinions:
			err = b.postAllMinions(ctx, cmd, r)
		case formatters.ActionCauseMinions:
			err = b.postCauseMinions(ctx, cmd, r, rank)
		default:
			err = b.postCauseMessages(ctx, cmd, r, rank)
		}
		switch {
		case err == nil:
			rec.Outcome = OutcomeOK
		case isUsage(err):
			rec.Outcome, rec.Reason = OutcomeUsageError, err.Error()
			b.tell(ctx, cmd, escapeText(err.Error()))
		default:
			rec.Outcome, rec.Reason = OutcomeFailed, err.Error()
			b.tell(ctx, cmd, cannotPost(err, id))
		}
	}
}

// usageErr is a mistake in what an interaction carried, the person's to
// see.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func isUsage(err error) bool {
	_, ok := err.(usageErr)
	return ok
}

// finishAudit writes the audit record of an interaction and logs it. It
// is deferred, and recovers a panic of the interaction's handler: a bug in
// one button must not take the others, or Sift, down.
func (b *Bot) finishAudit(rec *AuditRecord, cmd *command, log logrus.FieldLogger) {
	if v := recover(); v != nil {
		logPanic(log, v)
		rec.Outcome, rec.Reason = OutcomeFailed, "internal error"
	}
	rec.DurationMS = b.clock.Now().Sub(cmd.received).Milliseconds()
	if err := b.audit.write(*rec); err != nil {
		log.WithError(err).Error("audit record not written")
	}
	log.WithFields(logrus.Fields{"outcome": rec.Outcome, "duration_ms": rec.DurationMS}).Info("interaction handled")
}

// scopeOf reads a scope a button carries ("kind:name") and checks it
// against the inventory as a typed command would be: a button's value
// comes back from Slack, and is not trusted more than a command.
func (b *Bot) scopeOf(value string) (triage.Scope, error) {
	kind, name, ok := strings.Cut(value, ":")
	s := triage.Scope{Kind: triage.ScopeKind(kind), Name: name}
	switch s.Kind {
	case triage.ScopeMinion, triage.ScopeDatacenter, triage.ScopeGroup:
	default:
		ok = false
	}
	if !ok {
		return s, usageErr{fmt.Sprintf("this button names no scope Sift knows (%q)", truncate(value, 80))}
	}
	if _, err := b.deps.Parser.Inventory.Resolve(s); err != nil {
		return s, usageErr{err.Error()}
	}
	return s, nil
}

// runScope authorises and runs a triage asked for by an interaction, in
// the thread cmd names, and fills in its audit record.
func (b *Bot) runScope(life lifetimes, cmd *command, scope triage.Scope, id string, log logrus.FieldLogger, rec *AuditRecord) {
	ctx := life.post
	rec.Scope = &scope
	if ok, r := b.authz.allowed(ctx, scope.Kind, cmd.user, cmd.what(scope.Kind)); !ok {
		rec.Outcome, rec.Reason = OutcomeRefused, r.audit
		b.tell(ctx, cmd, r.user)
		return
	}
	res := b.run(life, cmd.channel, cmd.threadTS, scope, formatters.SlackOptions{RequestedBy: cmd.user}, id, log)
	res.audit(rec)
	if res.ts == "" && res.postErr != nil {
		b.tell(ctx, cmd, cannotPost(res.postErr, id))
	}
}

// postAllMinions attaches every minion of a report with its causes, as
// CSV, to the thread the button is in.
func (b *Bot) postAllMinions(ctx context.Context, cmd *command, r *triage.Report) error {
	f := formatters.AllMinionsFile(r)
	if f == nil {
		return usageErr{"this report has no minion under a cause"}
	}
	return b.upload(ctx, cmd.channel, cmd.threadTS, f)
}

// postCauseMessages attaches the full text of a cause's messages.
func (b *Bot) postCauseMessages(ctx context.Context, cmd *command, r *triage.Report, rank string) error {
	n, err := strconv.Atoi(rank)
	f := formatters.CauseMessagesFile(r, n)
	if err != nil || f == nil {
		return usageErr{fmt.Sprintf("this report has no messages for cause #%s", truncate(rank, 10))}
	}
	return b.upload(ctx, cmd.channel, cmd.threadTS, f)
}

// postCauseMinions lists one cause's minions in the thread: as a message
// when they fit in one, as a file otherwise.
func (b *Bot) postCauseMinions(ctx context.Context, cmd *command, r *triage.Report, rank string) error {
	n, _ := strconv.Atoi(rank)
	m, f := formatters.CauseMinions(r, n)
	switch {
	case m != nil:
		_, err := b.Reply(ctx, cmd.channel, cmd.threadTS, *m)
		return err
	case f != nil:
		return b.upload(ctx, cmd.channel, cmd.threadTS, f)
	}
	return usageErr{fmt.Sprintf("this report has no minions for cause #%s", truncate(rank, 10))}
}

// rerunCommand is the slash command that runs a scope's triage again, as
// plain text.
func (b *Bot) rerunCommand(s triage.Scope) string {
	return strings.Trim(b.rerun(s), "`")
}

// snippetType is how Slack highlights an attached file, from its name:
// the JSON report, the CSV of every minion, plain text lists and messages.
func snippetType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "json"
	case strings.HasSuffix(name, ".csv"):
		return "csv"
	}
	return "text"
}
