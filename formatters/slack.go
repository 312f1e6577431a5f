package formatters

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// How much of a report goes where in Slack. The summary is what the channel
// sees and must be read in seconds; the thread holds the evidence; the
// attached JSON holds the rest.
const (
	// summaryCauses is how many causes the channel message shows.
	summaryCauses = 3
	// threadCauses is how many causes get a thread message of their own.
	threadCauses = 10
	// threadMinionIDs is how many minion ids a cause's message lists.
	threadMinionIDs = 30
	// listedMinions caps the unreachable and module-missing lists, which
	// SREs copy to act on; past that the count is what matters.
	listedMinions = 500
	// tableMessages caps how many messages the datacenter table may take.
	tableMessages = 2
	// datacenterErrors is how many datacenter errors the thread spells out.
	datacenterErrors = 10
	// sectionBudget keeps built sections a little under maxSectionText, so
	// that a closing fence or a "…" never has to be cut.
	sectionBudget = maxSectionText - 100
)

// SlackOptions says who a Slack report is for.
type SlackOptions struct {
	// RequestedBy is the Slack user id of who asked, shown as <@U…>; empty
	// for automatic triages.
	RequestedBy string
	// AuthorMentions maps a commit author's email to their Slack user id,
	// so that the author is mentioned next to their name.
	AuthorMentions map[string]string
	// Title overrides the header, e.g. "Pipeline halt: salt-failures-dc".
	Title string
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
	thread, overflow := slackThread(r, o)
	out := SlackReport{
		Summary: slackSummary(r, o, len(thread) > 0),
		Thread:  thread,
	}
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
	elapsed := p.Elapsed.Round(time.Second).String() + " elapsed"
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
	return SlackMessage{
		Text:   fallback("Sift could not triage " + what + ": " + inline(msg, 2500)),
		Blocks: m.blocks,
	}
}

// slackSummary is the channel message: what broke, how much it explains,
// and how far to trust the report.
func slackSummary(r *triage.Report, o SlackOptions, hasThread bool) SlackMessage {
	var m message
	title := o.Title
	if title == "" {
		title = "Sift triage: " + r.Scope.String()
	}
	m.add(header(title), 0, 0)
	headline := r.Headline
	if headline == "" {
		headline = "No cause found"
	}
	m.add(section("*"+inline(headline, 1000)+"*"), 0, 0)
	m.add(section(partialNote(r)), 0, 0)
	m.add(section(slackCounts(r.Counts)), 0, 0)
	if len(r.Causes) > 0 {
		m.add(slack.NewDividerBlock(), 0, 0)
	}
	for i, c := range firstN(r.Causes, summaryCauses) {
		text := fmt.Sprintf("*%d.* %s — *%s* %s%s", i+1, causeTitle(c, o), thousands(c.Minions),
			plural(c.Minions, "minion", "minions"), slackDatacenters(c.Datacenters, 5))
		if c.Summary != "" {
			text += "\n" + inline(c.Summary, 300)
		}
		m.add(section(text), 0, 0)
	}
	if n := len(r.Causes) - summaryCauses; n > 0 {
		m.add(contextBlock(fmt.Sprintf("… and %s more %s in the thread", thousands(n), plural(n, "cause", "causes"))), 0, 0)
	}
	details := ""
	if hasThread {
		details = "Details in the thread"
	}
	m.add(contextBlock(requestedBy(o), "Started "+slackDate(r.StartedAt), "Took "+formatDuration(r.Duration), details), 0, 0)
	return SlackMessage{
		Text:   fallback("Sift triage of " + inline(r.Scope.String(), 300) + ": " + inline(headline, 2000)),
		Blocks: m.blocks,
	}
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
		fmt.Fprintf(&b, ":warning: *Partial report:* %s of %s datacenters did not answer in full; their minions may be missing.",
			thousands(len(failed)), thousands(len(r.Datacenters)))
	} else {
		b.WriteString(":x: *No master answered;* this report has no minions.")
	}
	for _, dc := range firstN(failed, 5) {
		fmt.Fprintf(&b, "\n• %s: %s", code(dc.Name, 100), inline(dc.Error, 300))
	}
	if n := len(failed) - 5; n > 0 {
		fmt.Fprintf(&b, "\n• … and %s more in the thread", thousands(n))
	}
	return b.String()
}

func slackCounts(c triage.Counts) string {
	failing := thousands(c.Failing) + " failing"
	if c.Failing > 0 {
		failing = "*" + failing + "*"
	}
	s := fmt.Sprintf("*Minions:* %s expected · %s answered · %s healthy · %s",
		thousands(c.Expected), thousands(c.Answered), thousands(c.Healthy), failing)
	// The rarer classes only when they occur: a zero is noise in a summary.
	for _, x := range []struct {
		n    int
		what string
	}{
		{c.Unreachable, "unreachable"},
		{c.ModuleMissing, "module missing"},
		{c.BlameError, "blame error"},
		{c.NoJobs, "no jobs"},
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

// causeTitle names a cause in one line of mrkdwn: the commit with its link
// and author, the release, the service, the state.
func causeTitle(c triage.Cause, o SlackOptions) string {
	e := c.Evidence
	switch c.Kind {
	case triage.CauseCommit:
		id := e.CommitID
		if id == "" {
			id = c.Key
		}
		short := truncateRunes(id, 7)
		t := "Commit " + code(short, 40)
		if linkable(e.CommitURL) {
			t = "Commit " + link(e.CommitURL, short, 40)
		}
		if a := authorText(e, o); a != "" {
			t += " by " + a
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

// authorText is the author's name with their Slack mention, so that the
// person who can fix it is notified; the email stands in for a missing name.
func authorText(e triage.Evidence, o SlackOptions) string {
	name := inline(firstNonEmpty(e.AuthorName, e.AuthorEmail), 80)
	if m := mention(authorMention(e.AuthorEmail, o.AuthorMentions)); m != "" {
		if name == "" {
			return m
		}
		return name + " (" + m + ")"
	}
	return name
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
	return fmt.Sprintf(" in %s datacenters: %s", thousands(len(dcs)), codeList(dcs, n, 100))
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

// slackThread builds the thread: one message per top cause, then the
// datacenter table and errors, then the minions Sift could not ask. It
// reports whether anything was left for the attached file.
func slackThread(r *triage.Report, o SlackOptions) ([]SlackMessage, bool) {
	var msgs []SlackMessage
	overflow := false
	for i, c := range firstN(r.Causes, threadCauses) {
		msgs = append(msgs, causeMessage(i+1, c, o))
	}
	if n := len(r.Causes) - threadCauses; n > 0 {
		overflow = true
		msgs = append(msgs, noteMessage(fmt.Sprintf("… and %s more %s — full report attached", thousands(n), plural(n, "cause", "causes"))))
	}
	table, cut := datacenterMessages(r)
	msgs = append(msgs, table...)
	overflow = overflow || cut
	msgs = append(msgs, minionListMessages(r)...)
	return msgs, overflow
}

func noteMessage(text string) SlackMessage {
	return SlackMessage{Text: fallback(text), Blocks: []slack.Block{section(text)}}
}

// causeMessage is the thread message of one cause, with its evidence. Each
// part is capped so that together they stay inside one message; the minion
// ids come last because they are what can best be left out.
func causeMessage(rank int, c triage.Cause, o SlackOptions) SlackMessage {
	var m message
	title := fmt.Sprintf("*#%d · %s* — *%s* %s%s", rank, causeTitle(c, o), thousands(c.Minions),
		plural(c.Minions, "minion", "minions"), slackDatacenters(c.Datacenters, 10))
	m.add(section(title), 0, 0)
	m.add(section(inline(c.Summary, 1000)), 0, 0)
	m.add(section(evidenceText(c.Evidence, o)), 0, 0)
	e := c.Evidence
	if e.Comment != "" {
		m.add(section("*Comment:*\n"+codeBlock(e.Comment, 1500)), 0, 0)
	}
	var examples []string
	for _, msg := range e.Messages {
		if msg == e.Comment || strings.TrimSpace(msg) == "" {
			continue
		}
		examples = append(examples, codeBlock(msg, 600))
		if len(examples) == 3 {
			break
		}
	}
	if len(examples) > 0 {
		m.add(section("*Messages:*\n"+strings.Join(examples, "\n")), 0, 0)
	}
	if listsMinions(c.Kind) {
		m.add(section(fmt.Sprintf("*Minions (%s):* listed at the end of the thread", thousands(max(c.Minions, len(c.MinionIDs))))), 0, 0)
	} else {
		m.add(section(minionIDsText(c)), 0, 0)
	}
	return SlackMessage{
		Text:   fallback(fmt.Sprintf("Cause #%d (%s): %s", rank, inline(string(c.Kind), 40), inline(c.Summary, 1000))),
		Blocks: m.blocks,
	}
}

// evidenceText lists the evidence a cause carries, one field a line, whatever
// its kind, stopping before the section limit.
func evidenceText(e triage.Evidence, o SlackOptions) string {
	var lines []string
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, "*"+label+":* "+value)
		}
	}
	if e.CommitID != "" {
		id := code(e.CommitID, 64)
		if linkable(e.CommitURL) {
			id += " (" + link(e.CommitURL, "open", 10) + ")"
		}
		add("Commit", id)
	}
	author := authorText(e, o)
	if e.AuthorEmail != "" && e.AuthorName != "" {
		author += " &lt;" + inline(e.AuthorEmail, 120) + "&gt;"
	}
	add("Author", author)
	add("Committed", inline(e.CommitDatetime, 60))
	add("Paths", codeList(e.Paths, 10, 150))
	if e.Version != "" {
		v := code(e.Version, 80)
		if e.PreviousVersion != "" {
			v += " (previous " + code(e.PreviousVersion, 80) + ")"
		}
		add("Release", v)
	}
	add("Service", code(e.ServiceURL, 200))
	switch {
	case e.Fun != "":
		s := code(e.Fun, 100)
		if e.StateID != "" {
			s += " " + code(e.StateID, 200)
		}
		if e.SLS != "" {
			s += " in " + code(e.SLS, 200)
		}
		add("State", s)
	case e.CompileState != "":
		add("Compile error in", code(e.CompileState, 200))
	case e.SLS != "":
		add("SLS", code(e.SLS, 200))
	}
	add("Failed states", codeList(stateLabels(e.FailedStates), 5, 150))
	add("Last success", inline(e.LastSuccess, 60))
	add("First failure", inline(e.FirstFailure, 60))

	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && len([]rune(b.String()))+1+len([]rune(l)) > sectionBudget {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String()
}

// minionIDsText lists the first minion ids of a cause. The rest are counted
// from c.Minions, since a report read back from JSON has only the first ids.
func minionIDsText(c triage.Cause) string {
	if len(c.MinionIDs) == 0 {
		return ""
	}
	shown := firstN(c.MinionIDs, threadMinionIDs)
	ids := make([]string, 0, len(shown))
	for _, id := range shown {
		ids = append(ids, escape(id, 80, modeLine))
	}
	text := fmt.Sprintf("*Minions (%s):*\n```%s```", thousands(max(c.Minions, len(c.MinionIDs))), strings.Join(ids, minionSeparator))
	if extra := max(c.Minions, len(c.MinionIDs)) - len(shown); extra > 0 {
		text += fmt.Sprintf("\n… and %s more", thousands(extra))
	}
	return text
}

// datacenterMessages renders the per-datacenter table as code blocks, split
// over sections and at most tableMessages messages, then the datacenters'
// errors. It reports whether rows were left out.
func datacenterMessages(r *triage.Report) ([]SlackMessage, bool) {
	if len(r.Datacenters) == 0 {
		return nil, false
	}
	rows := datacenterRows(r.Datacenters)
	head, body := rows[0], rows[1:]
	var msgs []SlackMessage
	next := 0
	for len(msgs) < tableMessages && next < len(body) {
		var m message
		if len(msgs) == 0 {
			m.add(section(fmt.Sprintf("*Datacenters (%s)*", thousands(len(body)))), 0, 0)
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
	cut := next < len(body)
	if cut {
		last := &msgs[len(msgs)-1]
		n := len(body) - next
		last.Blocks = append(last.Blocks, section(fmt.Sprintf("… and %s more %s — full report attached", thousands(n), plural(n, "datacenter", "datacenters"))))
	}
	if errs := datacenterErrorsMessage(r.Datacenters); errs != nil {
		msgs = append(msgs, *errs)
	}
	return msgs, cut
}

// datacenterRows aligns the table on the raw text, then escapes each line:
// aligning escaped text would count "&amp;" as five columns where Slack
// shows one.
func datacenterRows(dcs []triage.DatacenterResult) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DC\tMASTER\tEXPECTED\tANSWERED\tHEALTHY\tFAILING\tUNREACH\tNO MODULE\tBLAME ERR\tTIME\tERROR")
	for _, dc := range dcs {
		status := "-"
		if dc.Error != "" {
			status = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
			textClean(dc.Name, 40), textClean(dc.Master, 40),
			dc.Counts.Expected, dc.Counts.Answered, dc.Counts.Healthy, dc.Counts.Failing,
			dc.Counts.Unreachable, dc.Counts.ModuleMissing, dc.Counts.BlameError,
			formatDuration(dc.Duration), status)
	}
	tw.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = escape(strings.TrimRight(l, " "), 400, modeLine)
	}
	return lines
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

func datacenterErrorsMessage(dcs []triage.DatacenterResult) *SlackMessage {
	var failed []triage.DatacenterResult
	for _, dc := range dcs {
		if dc.Error != "" {
			failed = append(failed, dc)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	var m message
	m.add(section(fmt.Sprintf("*Datacenter errors (%s)*", thousands(len(failed)))), 0, 0)
	for _, dc := range firstN(failed, datacenterErrors) {
		m.add(section(fmt.Sprintf("%s on %s:\n%s", code(dc.Name, 100), code(dc.Master, 100), codeBlock(dc.Error, 600))), 1, 200)
	}
	if n := len(failed) - datacenterErrors; n > 0 {
		m.add(section(fmt.Sprintf("… and %s more — full report attached", thousands(n))), 0, 0)
	}
	return &SlackMessage{Text: fallback(fmt.Sprintf("%s %s", thousands(len(failed)), plural(len(failed), "datacenter error", "datacenter errors"))), Blocks: m.blocks}
}

// minionListMessages lists the minions Sift could not ask, one message per
// kind: those are the ones an SRE acts on by hand (restart the minion,
// sync the module), and copies from the thread to do it.
func minionListMessages(r *triage.Report) []SlackMessage {
	var msgs []SlackMessage
	listed := map[triage.CauseKind]bool{}
	for _, c := range r.Causes {
		// Triage keys these causes by kind, so there is one of each; the
		// check keeps a report that has more from flooding the thread.
		if !listsMinions(c.Kind) || len(c.MinionIDs) == 0 || listed[c.Kind] {
			continue
		}
		listed[c.Kind] = true
		title := "Unreachable minions"
		if c.Kind == triage.CauseModuleMissing {
			title = "Minions without the blame module"
		}
		total := max(c.Minions, len(c.MinionIDs))
		var m message
		m.add(section(fmt.Sprintf("*%s (%s)*", title, thousands(total))), 0, 0)
		ids := firstN(c.MinionIDs, listedMinions)
		next := 0
		for next < len(ids) {
			var chunk []string
			size := 6
			end := next
			for end < len(ids) {
				id := escape(ids[end], 80, modeLine)
				l := len([]rune(id)) + len(minionSeparator)
				if end > next && size+l > sectionBudget {
					break
				}
				chunk = append(chunk, id)
				size += l
				end++
			}
			if !m.add(section("```"+strings.Join(chunk, minionSeparator)+"```"), 1, 200) {
				break
			}
			next = end
		}
		if n := total - next; n > 0 {
			m.add(section(fmt.Sprintf("… and %s more", thousands(n))), 0, 0)
		}
		msgs = append(msgs, SlackMessage{Text: fallback(fmt.Sprintf("%s (%s)", title, thousands(total))), Blocks: m.blocks})
	}
	return msgs
}

// listsMinions says whether the minions of a cause of kind k get a list of
// their own at the end of the thread, rather than their first ids in the
// cause's message.
func listsMinions(k triage.CauseKind) bool {
	return k == triage.CauseUnreachable || k == triage.CauseModuleMissing
}

// minionSeparator joins minion ids in code blocks: a comma list wraps to
// the width of the thread, where one id a line would make the thread
// hundreds of lines tall.
const minionSeparator = ", "

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
