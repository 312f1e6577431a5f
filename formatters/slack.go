package formatters

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// How much of a report goes where in Slack. The summary is what the channel
// sees and must be read in seconds; the thread holds the evidence, one
// message per cause; the buttons and the attached files hold the rest.
const (
	// summaryCauses is how many causes the channel message shows.
	summaryCauses = 3
	// threadCauses is how many causes get a thread message of their own.
	threadCauses = 10
	// causeMinionIDs is how many minion ids a cause's message names; the
	// cause's button lists them all.
	causeMinionIDs = 10
	// listedMinions caps the ids listed in the message of a cause whose
	// minions Sift could not ask, which are acted on by hand: a few lines
	// of them; the cause's button lists them all.
	listedMinions = 24
	// causeExamples is how many real messages a cause shows, one per kind
	// of message.
	causeExamples = 3
	// tableMessages caps how many messages the datacenter table may take.
	tableMessages = 2
	// datacenterErrors is how many datacenter errors the thread spells out.
	datacenterErrors = 10
	// sectionBudget keeps built sections a little under maxSectionText, so
	// that a closing fence or a "…" never has to be cut.
	sectionBudget = maxSectionText - 100
	// tableName, tableCause bound the datacenter table's text columns, so
	// that a row stays near 60 characters, the width of the thread pane.
	tableName  = 10
	tableCause = 20
)

// Action ids of the buttons on a report. The bot answers them.
const (
	// ActionRerun runs the report's triage again; its value is the scope
	// as "kind:name".
	ActionRerun = "sift_rerun"
	// ActionAllMinions attaches every minion with its cause; its value is
	// the report id.
	ActionAllMinions = "sift_all_minions"
	// ActionCauseMinions lists one cause's minions; its value is the
	// report id and the cause's rank, "id/rank".
	ActionCauseMinions = "sift_cause_minions"
	// ActionCauseMessages attaches the full text of one cause's example
	// messages; its value is "id/rank" too.
	ActionCauseMessages = "sift_cause_messages"
)

// MentionPolicy says which commit authors a report mentions.
type MentionPolicy string

// Mention policies. Each person is mentioned at most once per report.
const (
	// MentionTop mentions the author of the top cause only.
	MentionTop MentionPolicy = "top"
	// MentionAll mentions the author of every commit cause.
	MentionAll MentionPolicy = "all"
	// MentionNone names authors without mentioning them.
	MentionNone MentionPolicy = "none"
)

// SlackOptions says who a Slack report is for.
type SlackOptions struct {
	// RequestedBy is the Slack user id of who asked, shown as <@U…>; empty
	// for automatic triages.
	RequestedBy string
	// AuthorMentions maps a commit author's email to their Slack user id,
	// so that the author is mentioned next to their name.
	AuthorMentions map[string]string
	// Mentions says whose authors are mentioned; empty means MentionTop.
	Mentions MentionPolicy
	// Title overrides the header, e.g. "Pipeline halt: salt-failures-dc".
	Title string
	// ReportID, when set, puts buttons on the report (re-run, all minions,
	// a cause's minions) whose values carry it; the bot keeps the report
	// under that id to answer them.
	ReportID string
}

// SlackMessage is one Slack message: blocks, and the plain text Slack
// shows in notifications and to clients that cannot render blocks.
type SlackMessage struct {
	// Text is the fallback text, mrkdwn-escaped, at most 3000 characters.
	Text   string
	Blocks []slack.Block
}

// SlackFile is a file to attach to the thread when the report did not fit
// in messages. Its fields match slack.UploadFileParameters (Filename,
// Title, Content).
type SlackFile struct {
	Name    string
	Title   string
	Content string
}

// SlackReport is a triage report as Slack messages: the summary posted to
// the channel, the messages of its thread, in order, and the file to attach
// when the thread could not hold everything.
type SlackReport struct {
	Summary SlackMessage
	Thread  []SlackMessage
	// File is the full JSON report; nil when the thread holds every cause
	// and every datacenter.
	File *SlackFile
}

// Progress is how far a running triage has got.
type Progress struct {
	DatacentersDone, DatacentersTotal int
	MinionsAnswered, MinionsExpected  int
	Elapsed                           time.Duration
	// Running names the datacenters still running.
	Running []string
	// Pending are the datacenters still running with how long each has
	// been waited for; shown instead of Running when set.
	Pending []triage.PendingDatacenter
}

// Slack renders r as a channel message and its thread. Every message stays
// inside Slack's limits whatever the size of the report: causes past the
// first ten, or datacenters past what the table holds, are counted in the
// thread and sent as the attached JSON report.
func Slack(r *triage.Report, o SlackOptions) SlackReport {
	w := newWriter(r, o)
	summary := w.summary()
	thread, overflow := w.thread()
	out := SlackReport{Summary: summary, Thread: thread}
	if overflow {
		out.File = slackFile(r)
	}
	return out
}

// SlackProgress renders the summary message of a triage still running; the
// bot updates it in place until the report replaces it.
func SlackProgress(scope triage.Scope, p Progress, o SlackOptions) SlackMessage {
	var m message
	if o.Title != "" {
		m.add(header(o.Title), 0, 0)
	}
	// The figures are bold in the message and plain in the notification,
	// which shows asterisks as they are.
	var parts, plainParts []string
	figures := func(format string, n ...int) {
		bold := make([]any, len(n))
		plain := make([]any, len(n))
		for i, x := range n {
			bold[i], plain[i] = "*"+thousands(x)+"*", thousands(x)
		}
		parts = append(parts, fmt.Sprintf(format, bold...))
		plainParts = append(plainParts, fmt.Sprintf(format, plain...))
	}
	if p.DatacentersTotal > 0 {
		figures("%s of %s datacenters done", p.DatacentersDone, p.DatacentersTotal)
	}
	switch {
	case p.MinionsExpected > 0:
		figures("%s of %s minions answered", p.MinionsAnswered, p.MinionsExpected)
	case p.MinionsAnswered > 0:
		figures("%s minions answered", p.MinionsAnswered)
	}
	// Whole seconds: a progress message is read while it changes.
	elapsed := wholeSeconds(p.Elapsed) + " elapsed"
	if p.Elapsed < time.Second {
		elapsed = "just started"
	}
	parts, plainParts = append(parts, elapsed), append(plainParts, elapsed)
	what := inline(scope.String(), 300)
	m.add(section(":hourglass_flowing_sand: Sift is triaging *"+what+"*…\n"+strings.Join(parts, " · ")), 0, 0)
	if len(p.Pending) > 0 {
		m.add(contextBlock(waitingText(p.Pending)), 0, 0)
	} else if len(p.Running) > 0 {
		m.add(contextBlock("Still running: "+codeList(p.Running, 10, 100)), 0, 0)
	}
	m.add(contextBlock(requestedBy(o)), 0, 0)
	return SlackMessage{
		Text:   fallback("Sift is triaging " + what + ": " + strings.Join(plainParts, ", ")),
		Blocks: m.blocks,
	}
}

// waitingText names the datacenters a triage still waits for, and since
// when, so that a hung master never looks like a dead bot.
func waitingText(pending []triage.PendingDatacenter) string {
	const shown = 10
	parts := make([]string, 0, shown)
	for _, d := range firstN(pending, shown) {
		waited := d.Waiting.Round(time.Second)
		since := fmt.Sprintf("%d s", int(waited/time.Second))
		if waited >= time.Minute {
			since = fmt.Sprintf("%d min %d s", int(waited/time.Minute), int(waited%time.Minute/time.Second))
		}
		parts = append(parts, fmt.Sprintf("%s (%s) for %s", inline(d.Name, 100), inline(d.Master, 100), since))
	}
	s := "Waiting for " + strings.Join(parts, ", ")
	if n := len(pending) - shown; n > 0 {
		s += fmt.Sprintf(" and %s more", thousands(n))
	}
	return s
}

// SlackError renders the message that replaces the summary when a triage
// could not run at all. msg is shown as is: it is the user's error, or the
// short apology with an id to quote.
func SlackError(scope triage.Scope, msg string, o SlackOptions) SlackMessage {
	var m message
	if o.Title != "" {
		m.add(header(o.Title), 0, 0)
	}
	what := inline(scope.String(), 300)
	m.add(section(":x: Sift could not triage *"+what+"*: "+escape(msg, 2500, modeBlock)), 0, 0)
	m.add(contextBlock(requestedBy(o)), 0, 0)
	if o.ReportID != "" {
		m.add(actions("sift_actions", rerunButton(scope, true)), 0, 0)
	}
	return SlackMessage{
		Text:   fallback("Sift could not triage " + what + ": " + inline(msg, 2500)),
		Blocks: m.blocks,
	}
}

// SlackStopped renders the message that replaces the summary of a triage
// Sift stopped (it was shutting down) before any report: a stop, not an
// error and not an all-clear, with the way to run it again. rerun is the
// command that does, e.g. "/blame-dc ams01"; empty for the @sift form.
func SlackStopped(scope triage.Scope, elapsed time.Duration, rerun string, o SlackOptions) SlackMessage {
	var m message
	if o.Title != "" {
		m.add(header(o.Title), 0, 0)
	}
	what := inline(scope.String(), 300)
	if rerun == "" {
		rerun = "@sift " + mentionVerb(scope.Kind) + " " + scope.Name
	}
	text := fmt.Sprintf(":octagonal_sign: *Sift was stopped before this triage of %s finished* (after %s). Nothing here is a result: press *Re-run*, or run %s.",
		what, wholeSeconds(elapsed), code(rerun, 300))
	m.add(section(text), 0, 0)
	m.add(contextBlock(requestedBy(o)), 0, 0)
	m.add(actions("sift_actions", rerunButton(scope, true)), 0, 0)
	return SlackMessage{
		Text:   fallback(fmt.Sprintf("Sift was stopped before this triage of %s finished (after %s); run %s again.", what, wholeSeconds(elapsed), inline(rerun, 300))),
		Blocks: m.blocks,
	}
}

// wholeSeconds is a duration to the second: "28 s", "1 min 5 s".
func wholeSeconds(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return formatDuration(d)
}

// writer renders one report. It remembers whom it has mentioned, so that
// each person is mentioned at most once per report.
type writer struct {
	r         *triage.Report
	o         SlackOptions
	mentioned map[string]bool
	// mentionable are the emails of the authors the policy lets mention.
	mentionable map[string]bool
}

func newWriter(r *triage.Report, o SlackOptions) *writer {
	w := &writer{r: r, o: o, mentioned: map[string]bool{}, mentionable: map[string]bool{}}
	switch o.Mentions {
	case MentionNone:
	case MentionAll:
		for _, c := range r.Causes {
			w.mentionable[strings.ToLower(c.Evidence.AuthorEmail)] = true
		}
	default:
		// The top cause is the first that explains failing minions:
		// unreachable minions outranking it do not make its author less
		// the one to call.
		for _, c := range r.Causes {
			if c.Kind.Explains() {
				w.mentionable[strings.ToLower(c.Evidence.AuthorEmail)] = true
				break
			}
		}
	}
	delete(w.mentionable, "")
	return w
}

// author is the author's name, with their Slack mention the first time
// the policy allows it; the email stands in for a missing name.
func (w *writer) author(e triage.Evidence) string {
	name := inline(firstNonEmpty(e.AuthorName, e.AuthorEmail), 80)
	if !w.mentionable[strings.ToLower(e.AuthorEmail)] {
		return name
	}
	id := authorMention(e.AuthorEmail, w.o.AuthorMentions)
	m := mention(id)
	if m == "" || w.mentioned[id] {
		return name
	}
	w.mentioned[id] = true
	if name == "" {
		return m
	}
	return name + " (" + m + ")"
}

// outcomeIcon marks a headline with how far the triage got.
func outcomeIcon(r *triage.Report) string {
	switch triage.OutcomeOf(r) {
	case triage.OutcomeStopped:
		return ":octagonal_sign: "
	case triage.OutcomeFailed:
		return ":x: "
	case triage.OutcomePartial:
		return ":warning: "
	}
	return ""
}

// summary is the channel message: what broke, how much it explains, and
// how far to trust the report.
func (w *writer) summary() SlackMessage {
	r := w.r
	var m message
	title := w.o.Title
	if title == "" {
		title = "Sift triage: " + r.Scope.String()
	}
	m.add(header(title), 0, 0)
	headline := r.Headline
	if headline == "" {
		headline = "No cause found"
	}
	headline = groupDigits(headline)
	m.add(section(outcomeIcon(r)+"*"+inline(headline, 1000)+"*"), 0, 0)
	m.add(section(stoppedNote(r)), 0, 0)
	m.add(section(partialNote(r)), 0, 0)
	m.add(section(slackCounts(r.Counts)), 0, 0)
	var lines []string
	for i, c := range firstN(r.Causes, summaryCauses) {
		lines = append(lines, fmt.Sprintf("*%d.* %s — *%s* %s%s", i+1, w.title(c), thousands(c.Minions),
			plural(c.Minions, "minion", "minions"), slackDatacenters(c.Datacenters, 3)))
	}
	if n := len(r.Causes) - summaryCauses; n > 0 {
		lines = append(lines, fmt.Sprintf("… and %s more %s in the thread", thousands(n), plural(n, "cause", "causes")))
	}
	if len(lines) > 0 {
		m.add(slack.NewDividerBlock(), 0, 0)
		m.add(section(strings.Join(lines, "\n")), 0, 0)
	}
	m.add(contextBlock(overlapNote(r)), 0, 0)
	m.add(contextBlock(requestedBy(w.o), "Started "+slackDate(r.StartedAt), "Took "+formatDuration(r.Duration)), 0, 0)
	if w.o.ReportID != "" {
		buttons := []slack.BlockElement{rerunButton(r.Scope, triage.OutcomeOf(r) == triage.OutcomeStopped)}
		if len(r.Causes) > 0 {
			buttons = append(buttons, button(ActionAllMinions, w.o.ReportID, "All minions (CSV)", ""))
		}
		m.add(actions("sift_actions", buttons...), 0, 0)
	}
	return SlackMessage{
		Text:   fallback("Sift triage of " + inline(r.Scope.String(), 300) + ": " + inline(headline, 2000)),
		Blocks: m.blocks,
	}
}

// stoppedNote says that a stopped triage is not an all-clear: the counts
// are what answered before the stop.
func stoppedNote(r *triage.Report) string {
	if triage.OutcomeOf(r) != triage.OutcomeStopped {
		return ""
	}
	return fmt.Sprintf("Sift was stopped before this triage finished (after %s): minions that had not answered are missing. Press *Re-run*, or send `@sift %s %s`.",
		wholeSeconds(r.Duration), mentionVerb(r.Scope.Kind), inline(r.Scope.Name, 200))
}

// mentionVerb is the word of a scope kind in an @sift command.
func mentionVerb(k triage.ScopeKind) string {
	if k == triage.ScopeDatacenter {
		return "dc"
	}
	return inline(string(k), 20)
}

// overlapNote explains counts that add up to more than the failing
// minions: one minion with two failures counts under both causes.
func overlapNote(r *triage.Report) string {
	sum, n := 0, 0
	for _, c := range r.Causes {
		if c.Kind.Explains() {
			sum += c.Minions
			n++
		}
	}
	if n < 2 || sum <= r.Counts.Failing {
		return ""
	}
	return fmt.Sprintf("A minion can count under several causes when its failures overlap: these causes add up to %s for %s failing minions.",
		thousands(sum), thousands(r.Counts.Failing))
}

// partialNote warns that datacenters are missing from the report, so that
// nobody reads "all healthy" into a datacenter that never answered.
func partialNote(r *triage.Report) string {
	var failed []triage.DatacenterResult
	for _, dc := range r.Datacenters {
		if dc.Error != "" {
			failed = append(failed, dc)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	var b strings.Builder
	if r.Reached() {
		fmt.Fprintf(&b, "*Partial report:* %s of %s datacenters did not answer in full; their minions may be missing.",
			thousands(len(failed)), thousands(len(r.Datacenters)))
	} else {
		b.WriteString("*No master answered;* this report has no minions.")
	}
	for _, dc := range firstN(failed, 5) {
		fmt.Fprintf(&b, "\n• %s: %s", code(dc.Name, 100), inline(dc.Error, 300))
	}
	if n := len(failed) - 5; n > 0 {
		fmt.Fprintf(&b, "\n• … and %s more in the thread", thousands(n))
	}
	return b.String()
}

// slackCounts tallies the minions in classes that add up to the expected.
func slackCounts(c triage.Counts) string {
	s := fmt.Sprintf("*%s failing* of %s %s", thousands(c.Failing), thousands(c.Expected), plural(c.Expected, "minion", "minions"))
	if c.Failing == 0 {
		s = fmt.Sprintf("%s failing of %s %s", thousands(c.Failing), thousands(c.Expected), plural(c.Expected, "minion", "minions"))
	}
	// The rarer classes only when they occur: a zero is noise in a summary.
	for _, x := range []struct {
		n    int
		what string
	}{
		{c.Healthy, "healthy"},
		{c.NoJobs, "no highstate yet"},
		{c.Unreachable, "unreachable"},
		{c.ModuleMissing, "without the blame module"},
		{c.BlameError, "blame error"},
	} {
		if x.n > 0 {
			s += " · " + thousands(x.n) + " " + x.what
		}
	}
	return s
}

func requestedBy(o SlackOptions) string {
	if o.RequestedBy == "" {
		return "Automatic triage"
	}
	if m := mention(o.RequestedBy); m != "" {
		return "Requested by " + m
	}
	return "Requested by " + inline(o.RequestedBy, 50)
}

// title names a cause in one line of mrkdwn: the commit with its link and
// author, the release, the service, the state.
func (w *writer) title(c triage.Cause) string {
	e := c.Evidence
	switch c.Kind {
	case triage.CauseCommit:
		t := "Commit " + commitRef(firstNonEmpty(e.CommitID, c.Key), e.CommitURL)
		if a := w.author(e); a != "" {
			t += " by " + a
		}
		return t
	case triage.CauseRollback:
		t := "Rollback to " + commitRef(firstNonEmpty(e.CommitID, c.Key), e.CommitURL)
		if e.RolledBackFrom != "" {
			t += " from " + code(truncateRunes(e.RolledBackFrom, 7), 40)
		}
		return t
	case triage.CauseRelease:
		t := "Release " + code(firstNonEmpty(e.Version, c.Key), 80)
		if e.PreviousVersion != "" {
			t += " (was " + code(e.PreviousVersion, 80) + ")"
		}
		return t
	case triage.CauseExternalService:
		return "External service " + code(firstNonEmpty(e.ServiceURL, c.Key), 200)
	case triage.CauseFailedState:
		if e.Fun == "" && e.CompileState != "" {
			return "Compile error in " + code(e.CompileState, 200)
		}
		return "Failed state " + code(firstNonEmpty(stateLabel(e), c.Key), 200)
	case triage.CauseUnreachable:
		return "Unreachable minions"
	case triage.CauseModuleMissing:
		return "Blame module missing"
	case triage.CauseBlameError:
		return "Blame call failed"
	}
	return inline(string(c.Kind), 40) + " " + code(c.Key, 200)
}

// commitRef is a short commit id, linked when there is a link.
func commitRef(id, url string) string {
	short := truncateRunes(id, 7)
	if linkable(url) {
		return link(url, short, 40)
	}
	return code(short, 40)
}

// authorMention finds the Slack user of an email; git and Slack often
// disagree on the case of an address.
func authorMention(email string, mentions map[string]string) string {
	if email == "" {
		return ""
	}
	if id, ok := mentions[email]; ok {
		return id
	}
	for k, id := range mentions {
		if strings.EqualFold(k, email) {
			return id
		}
	}
	return ""
}

// stateLabel is the raw "fun id" of a failed state.
func stateLabel(e triage.Evidence) string {
	return strings.TrimSpace(e.Fun + " " + e.StateID)
}

func slackDatacenters(dcs []string, n int) string {
	switch len(dcs) {
	case 0:
		return ""
	case 1:
		return " in " + code(dcs[0], 100)
	}
	return " in " + codeList(dcs, n, 100)
}

// codeList shows the first n items as code spans of at most each
// characters, and counts the rest.
func codeList(items []string, n, each int) string {
	shown := make([]string, 0, min(n, len(items)))
	for _, s := range firstN(items, n) {
		if c := code(s, each); c != "" {
			shown = append(shown, c)
		}
	}
	out := strings.Join(shown, ", ")
	if extra := len(items) - n; extra > 0 {
		out += fmt.Sprintf(" and %s more", thousands(extra))
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// button is a Block Kit button; style is "", "primary" or "danger".
func button(actionID, value, text, style string) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, plain(text, 75), true, false))
	if style != "" {
		b.Style = slack.Style(style)
	}
	return b
}

// rerunButton runs the scope again; it is the primary action of a report
// that did not finish.
func rerunButton(s triage.Scope, primary bool) *slack.ButtonBlockElement {
	style := ""
	if primary {
		style = "primary"
	}
	return button(ActionRerun, ScopeValue(s), "Re-run", style)
}

// ScopeValue is a scope as a button carries it: "kind:name".
func ScopeValue(s triage.Scope) string { return string(s.Kind) + ":" + s.Name }

func actions(blockID string, elems ...slack.BlockElement) slack.Block {
	return slack.NewActionBlock(blockID, elems...)
}

// thread builds the thread: one message per top cause, then the
// datacenter table, errors and notes. It reports whether anything was
// left for the attached file.
func (w *writer) thread() ([]SlackMessage, bool) {
	r := w.r
	var msgs []SlackMessage
	overflow := false
	for i, c := range firstN(r.Causes, threadCauses) {
		msgs = append(msgs, w.causeMessage(i+1, c))
	}
	if n := len(r.Causes) - threadCauses; n > 0 {
		overflow = true
		msgs = append(msgs, noteMessage(fmt.Sprintf("… and %s more %s — full report attached", thousands(n), plural(n, "cause", "causes"))))
	}
	table, cut := datacenterMessages(r)
	msgs = append(msgs, table...)
	overflow = overflow || cut
	if triage.OutcomeOf(r) == triage.OutcomeStopped {
		note := noteMessage(":octagonal_sign: " + stoppedNote(r))
		msgs = append([]SlackMessage{note}, msgs...)
	}
	return msgs, overflow
}

func noteMessage(text string) SlackMessage {
	return SlackMessage{Text: fallback(text), Blocks: []slack.Block{section(text)}}
}

// causeMessage is the thread message of one cause: its title once, the
// evidence that is not in the title, real messages, and its minions.
// Each part is capped so that together they stay inside one message.
func (w *writer) causeMessage(rank int, c triage.Cause) SlackMessage {
	var m message
	title := fmt.Sprintf("*#%d · %s* — *%s* %s%s", rank, w.title(c), thousands(c.Minions),
		plural(c.Minions, "minion", "minions"), slackDatacenters(c.Datacenters, 10))
	m.add(section(title), 0, 0)
	// Room for the minions and the button, which must not be crowded out.
	const reserveBlocks, reserveChars = 3, 3400
	m.add(section(w.evidenceText(c)), reserveBlocks, reserveChars)
	cut := false
	for i, ex := range firstN(examples(c), causeExamples) {
		g, whole := gist(ex.Text)
		cut = cut || !whole
		text := codeBlock(g, gistChars+100)
		if who := likeIt(ex); who != "" {
			text = text + "\n" + who
		}
		if i == 0 {
			text = "*What failed*\n" + text
		}
		if !m.add(section(text), reserveBlocks, reserveChars) {
			break
		}
	}
	// With a button to list them all, the first ids need no "and N more".
	ids, shown := minionsText(c, w.o.ReportID == "")
	m.add(section(ids), 1, 200)
	if w.o.ReportID != "" {
		var buttons []slack.BlockElement
		value := fmt.Sprintf("%s/%d", w.o.ReportID, rank)
		if n := max(c.Minions, len(c.MinionIDs)); n > shown && len(c.MinionIDs) > 0 {
			label := fmt.Sprintf("Show all %s minions", thousands(n))
			buttons = append(buttons, button(ActionCauseMinions, value, label, ""))
		}
		// A message cut to its gist is attached whole on request: a
		// traceback in the thread would bury the other causes.
		if cut {
			buttons = append(buttons, button(ActionCauseMessages, value, "Full messages", ""))
		}
		if len(buttons) > 0 {
			m.add(actions(fmt.Sprintf("sift_cause_%d", rank), buttons...), 0, 0)
		}
	}
	return SlackMessage{
		Text:   fallback(fmt.Sprintf("Cause #%d: %s", rank, inline(c.Summary, 1000))),
		Blocks: m.blocks,
	}
}

// evidenceText is what supports a cause beyond its title, a few short
// lines: what the commit changed, which states failed, since when.
func (w *writer) evidenceText(c triage.Cause) string {
	e := c.Evidence
	var lines []string
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, "*"+label+":* "+value)
		}
	}
	if c.Kind != triage.CauseRollback {
		// A rollback's paths are those of the commits it took out, below.
		add("Changed", codeList(e.Paths, 5, 150))
	}
	for _, rc := range firstN(e.RemovedCommits, 3) {
		t := code(truncateRunes(rc.ID, 7), 40)
		if rc.AuthorName != "" {
			t += " by " + inline(rc.AuthorName, 80)
		}
		if len(rc.Paths) > 0 {
			t += ", " + codeList(rc.Paths, 3, 150)
		}
		add("Took out", t)
	}
	if n := len(e.RemovedCommits) - 3; n > 0 {
		lines = append(lines, fmt.Sprintf("… and %s more commits taken out", thousands(n)))
	}
	if e.CommitDatetime != "" {
		add("Committed", slackTime(e.CommitDatetime))
	}
	add("Checked live", inline(e.Probe, 300))
	switch {
	case c.Kind == triage.CauseFailedState && e.Fun != "" && e.SLS != "":
		add("SLS", code(e.SLS, 200))
	case c.Kind != triage.CauseFailedState:
		add("Failed states", codeList(failedStateNames(e.FailedStates), 3, 150))
	}
	if e.Dependents > 0 {
		lines = append(lines, fmt.Sprintf("%s dependent %s failed only because this one did.", thousands(e.Dependents), plural(e.Dependents, "state", "states")))
	}
	if s := w.window(e); s != "" {
		lines = append(lines, s)
	}
	return clip(strings.Join(lines, "\n"), sectionBudget)
}

// window is the failure window: failing since when, how long before this
// triage, and the last success.
func (w *writer) window(e triage.Evidence) string {
	var parts []string
	if t, ok := parseTime(e.FirstFailure); ok {
		s := "*Failing since* " + slackDate(t)
		if a := age(t, w.r.StartedAt); a != "" && !w.r.StartedAt.IsZero() {
			s += " (" + a + ")"
		}
		parts = append(parts, s)
	} else if e.FirstFailure != "" {
		parts = append(parts, "*Failing since* "+inline(e.FirstFailure, 60))
	}
	if e.LastSuccess != "" {
		parts = append(parts, "last success "+slackTime(e.LastSuccess))
	}
	return strings.Join(parts, " · ")
}

// minionsText names a cause's first minions, and says how many it named.
// Minions Sift could not ask are listed at more length, since they are
// acted on by hand; the others are named by a few, and the button lists
// them all. Without the button, the rest are counted ("and N more") from
// c.Minions, since a report read back from JSON has only the first ids.
func minionsText(c triage.Cause, countRest bool) (string, int) {
	if len(c.MinionIDs) == 0 {
		return "", 0
	}
	total := max(c.Minions, len(c.MinionIDs))
	limit := causeMinionIDs
	if listsMinions(c.Kind) {
		limit = listedMinions
	}
	var ids []string
	size := 0
	for _, id := range firstN(c.MinionIDs, limit) {
		e := escape(id, 80, modeLine)
		if size+len([]rune(e))+2 > 2400 {
			break
		}
		ids = append(ids, e)
		size += len([]rune(e)) + 2
	}
	text := "```" + strings.Join(ids, minionSeparator) + "```"
	if extra := total - len(ids); extra > 0 && countRest {
		text += fmt.Sprintf("\n… and %s more", thousands(extra))
	}
	return text, len(ids)
}

// listsMinions says whether the minions of a cause of kind k are listed at
// length in its message, rather than named by a few.
func listsMinions(k triage.CauseKind) bool {
	return k == triage.CauseUnreachable || k == triage.CauseModuleMissing || k == triage.CauseBlameError
}

// minionSeparator joins minion ids in code blocks: a comma list wraps to
// the width of the thread, where one id a line would make the thread
// hundreds of lines tall.
const minionSeparator = ", "

// datacenterMessages renders the per-datacenter table as code blocks, split
// over sections and at most tableMessages messages, then the datacenters'
// errors and notes. A report of one datacenter that answered has no table:
// the summary's counts are its row. It reports whether rows were left out.
func datacenterMessages(r *triage.Report) ([]SlackMessage, bool) {
	if len(r.Datacenters) == 0 {
		return nil, false
	}
	var msgs []SlackMessage
	cut := false
	if len(r.Datacenters) > 1 || r.Datacenters[0].Error != "" {
		rows := datacenterRows(r)
		head, body := rows[0], rows[1:]
		next := 0
		for len(msgs) < tableMessages && next < len(body) {
			var m message
			if len(msgs) == 0 {
				m.add(section(fmt.Sprintf("*Datacenters (%s)*, most failing first", thousands(len(body)))), 0, 0)
			}
			for next < len(body) {
				chunk, end := tableChunk(head, body, next)
				// Room for the "and N more" note, should the table not fit.
				if !m.add(section(chunk), 1, 300) {
					break
				}
				next = end
			}
			if len(m.blocks) == 0 {
				break
			}
			msgs = append(msgs, SlackMessage{Text: fallback("Datacenters of " + inline(r.Scope.String(), 300)), Blocks: m.blocks})
		}
		cut = next < len(body)
		if cut {
			last := &msgs[len(msgs)-1]
			n := len(body) - next
			last.Blocks = append(last.Blocks, section(fmt.Sprintf("… and %s more %s — full report attached", thousands(n), plural(n, "datacenter", "datacenters"))))
		}
	}
	if errs := datacenterErrorsMessage(r.Datacenters); errs != nil {
		msgs = append(msgs, *errs)
	}
	return msgs, cut
}

// datacenterRows aligns the table on the raw text, then escapes each line:
// aligning escaped text would count "&amp;" as five columns where Slack
// shows one. A row is about 60 characters: name, failing of expected,
// minions with no highstate yet, time, and the datacenter's top cause or
// that it failed. Names read flush left, figures flush right.
func datacenterRows(r *triage.Report) []string {
	head := []string{"DC", "FAILING", "NO JOBS", "TIME", "TOP CAUSE"}
	rows := [][]string{head}
	for _, dc := range worstFirst(r.Datacenters) {
		top := dcTopCause(r, dc.Name)
		failing := thousands(dc.Counts.Failing) + "/" + thousands(dc.Counts.Expected)
		if dc.Error != "" {
			top = "error, see below"
			if dc.Counts.Expected == 0 {
				failing = "-"
			}
		}
		rows = append(rows, []string{textClean(dc.Name, tableName), failing, thousands(dc.Counts.NoJobs),
			formatDuration(dc.Duration), textClean(top, tableCause)})
	}
	width := make([]int, len(head))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	lines := make([]string, len(rows))
	for n, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			switch i {
			case 0:
				b.WriteString(cell + pad)
			case len(row) - 1:
				b.WriteString("  " + cell)
			default:
				b.WriteString("  " + pad + cell)
			}
		}
		lines[n] = escape(strings.TrimRight(b.String(), " "), 400, modeLine)
	}
	return lines
}

// worstFirst orders datacenters for the table: the most failing minions
// first, then those that failed (their errors follow the table), then the
// others by name.
func worstFirst(dcs []triage.DatacenterResult) []triage.DatacenterResult {
	out := slices.Clone(dcs)
	slices.SortStableFunc(out, func(a, b triage.DatacenterResult) int {
		if c := cmp.Compare(b.Counts.Failing, a.Counts.Failing); c != 0 {
			return c
		}
		if ae, be := a.Error != "", b.Error != ""; ae != be {
			if ae {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// dcTopCause names the highest-ranked cause that explains failing
// minions of a datacenter, in a few words.
func dcTopCause(r *triage.Report, dc string) string {
	for _, c := range r.Causes {
		if !c.Kind.Explains() {
			continue
		}
		for _, d := range c.Datacenters {
			if d == dc {
				return shortCause(c)
			}
		}
	}
	return "-"
}

// shortCause names a cause in a table cell.
func shortCause(c triage.Cause) string {
	e := c.Evidence
	switch c.Kind {
	case triage.CauseCommit:
		return "commit " + truncateRunes(firstNonEmpty(e.CommitID, c.Key), 7)
	case triage.CauseRollback:
		return "rollback " + truncateRunes(firstNonEmpty(e.CommitID, c.Key), 7)
	case triage.CauseRelease:
		return "release " + firstNonEmpty(e.Version, c.Key)
	case triage.CauseExternalService:
		s := firstNonEmpty(e.ServiceURL, c.Key)
		if _, host, ok := strings.Cut(s, "://"); ok {
			s = host
		}
		return s
	case triage.CauseFailedState:
		if e.Fun == "" && e.CompileState != "" {
			return "compile " + e.CompileState
		}
		return firstNonEmpty(e.StateID, c.Key)
	}
	return string(c.Kind)
}

// tableChunk takes rows from body[from:] into one code block, with the
// header row, as long as it stays under the section budget; at least one
// row, so that the table always moves on.
func tableChunk(head string, body []string, from int) (string, int) {
	text := head
	size := len([]rune(head)) + 6
	end := from
	for end < len(body) {
		l := len([]rune(body[end])) + 1
		if end > from && size+l > sectionBudget {
			break
		}
		text += "\n" + body[end]
		size += l
		end++
	}
	return "```" + text + "```", end
}

// datacenterErrorsMessage spells out why datacenters failed, and what
// the report must say about how their calls went (the notes), each once.
func datacenterErrorsMessage(dcs []triage.DatacenterResult) *SlackMessage {
	var failed, noted []triage.DatacenterResult
	for _, dc := range dcs {
		if dc.Error != "" {
			failed = append(failed, dc)
		}
		if len(dc.Notes) > 0 {
			noted = append(noted, dc)
		}
	}
	if len(failed) == 0 && len(noted) == 0 {
		return nil
	}
	var m message
	if len(failed) > 0 {
		m.add(section(fmt.Sprintf("*Datacenter errors (%s)*", thousands(len(failed)))), 0, 0)
		for _, dc := range firstN(failed, datacenterErrors) {
			m.add(section(fmt.Sprintf("%s on %s:\n%s", code(dc.Name, 100), code(dc.Master, 100), codeBlock(dc.Error, 600))), 2, 1200)
		}
		if n := len(failed) - datacenterErrors; n > 0 {
			m.add(section(fmt.Sprintf("… and %s more — full report attached", thousands(n))), 1, 1000)
		}
	}
	if len(noted) > 0 {
		// The same note on many datacenters is said once, with their names.
		var order []string
		where := map[string][]string{}
		for _, dc := range noted {
			for _, n := range dc.Notes {
				if _, ok := where[n]; !ok {
					order = append(order, n)
				}
				where[n] = append(where[n], dc.Name)
			}
		}
		var lines []string
		for _, n := range firstN(order, 10) {
			lines = append(lines, "• "+codeList(where[n], 5, 60)+": "+inline(n, 300))
		}
		m.add(contextBlock("*Notes*\n"+strings.Join(lines, "\n")), 0, 0)
	}
	text := fmt.Sprintf("%s %s", thousands(len(failed)), plural(len(failed), "datacenter error", "datacenter errors"))
	if len(failed) == 0 {
		text = "Notes on the datacenters"
	}
	return &SlackMessage{Text: fallback(text), Blocks: m.blocks}
}

// slackFile is the full JSON report, attached when the thread could not
// hold it all.
func slackFile(r *triage.Report) *SlackFile {
	content, err := JSON(r)
	name := "sift-report-" + fileSafe(string(r.Scope.Kind)) + "-" + fileSafe(r.Scope.Name) + "-" + r.StartedAt.UTC().Format("20060102T150405Z")
	if err != nil {
		// JSON only fails on values a report cannot hold; should it ever,
		// the text report still gets the evidence to the thread.
		return &SlackFile{Name: name + ".txt", Title: "Sift report: " + r.Scope.String(), Content: Text(r)}
	}
	return &SlackFile{
		Name:    name + ".json",
		Title:   "Sift report: " + r.Scope.String() + " (" + r.StartedAt.UTC().Format("2006-01-02 15:04 UTC") + ")",
		Content: string(content),
	}
}

// fileSafe keeps the characters a file name can always hold, each other
// run becoming one '_', and cuts the result to 40 characters.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
