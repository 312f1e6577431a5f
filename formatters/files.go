package formatters

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// AllMinionsFile is every minion of a report with its cause, as CSV: one
// row per minion and cause, so a minion under several causes has several
// rows. It returns nil for a report without minions under a cause.
func AllMinionsFile(r *triage.Report) *SlackFile {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"minion", "cause_rank", "cause_kind", "cause", "cause_datacenters"})
	rows := 0
	for i, c := range r.Causes {
		for _, id := range c.MinionIDs {
			_ = w.Write([]string{csvCell(id), strconv.Itoa(i + 1), string(c.Kind), csvCell(c.Summary), csvCell(strings.Join(c.Datacenters, " "))})
			rows++
		}
	}
	w.Flush()
	if rows == 0 {
		return nil
	}
	return &SlackFile{
		Name:    "sift-minions-" + fileSafe(string(r.Scope.Kind)) + "-" + fileSafe(r.Scope.Name) + ".csv",
		Title:   fmt.Sprintf("Every minion of %s with its cause (%s rows)", textClean(r.Scope.String(), 200), thousands(rows)),
		Content: buf.String(),
	}
}

// CauseMessagesFile is the full text of the example messages of the
// cause of rank (from 1), as a plain text snippet; nil when the cause has
// none.
func CauseMessagesFile(r *triage.Report, rank int) *SlackFile {
	if rank < 1 || rank > len(r.Causes) {
		return nil
	}
	c := r.Causes[rank-1]
	exs := examples(c)
	if len(exs) == 0 {
		return nil
	}
	var b strings.Builder
	for i, ex := range exs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "== %s", textClean(ex.Minion, 255))
		if ex.Count > 1 {
			fmt.Fprintf(&b, " and %d more like it", ex.Count-1)
		}
		b.WriteString(" ==\n")
		b.WriteString(strings.ToValidUTF8(ex.Text, "\uFFFD"))
		b.WriteString("\n")
	}
	return &SlackFile{
		Name:    fmt.Sprintf("sift-messages-cause-%d-%s.txt", rank, fileSafe(r.Scope.Name)),
		Title:   fmt.Sprintf("Full messages of cause #%d of %s", rank, textClean(r.Scope.String(), 200)),
		Content: b.String(),
	}
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// causeMinionsInline bounds the ids of a cause listed in a message rather
// than a file.
const causeMinionsInline = 2500

// CauseMinions lists every minion of the cause of rank (from 1): as a
// thread message when they fit in one, as a text file otherwise. Both are
// nil for a cause that does not exist or has no minion ids.
func CauseMinions(r *triage.Report, rank int) (*SlackMessage, *SlackFile) {
	if rank < 1 || rank > len(r.Causes) || len(r.Causes[rank-1].MinionIDs) == 0 {
		return nil, nil
	}
	c := r.Causes[rank-1]
	w := newWriter(r, SlackOptions{Mentions: MentionNone})
	n := len(c.MinionIDs)
	title := fmt.Sprintf("The %s %s of cause #%d", thousands(n), plural(n, "minion", "minions"), rank)
	var ids []string
	size := 0
	for _, id := range c.MinionIDs {
		e := escape(id, 255, modeLine)
		size += len([]rune(e)) + len(minionSeparator)
		ids = append(ids, e)
	}
	if size <= causeMinionsInline {
		text := "*" + title + ":* " + w.title(c) + "\n```" + strings.Join(ids, minionSeparator) + "```"
		return &SlackMessage{Text: fallback(title), Blocks: []slack.Block{section(text)}}, nil
	}
	return nil, &SlackFile{
		Name:    fmt.Sprintf("sift-minions-cause-%d-%s.txt", rank, fileSafe(r.Scope.Name)),
		Title:   title + ": " + textClean(c.Summary, 200),
		Content: strings.Join(c.MinionIDs, "\n") + "\n",
	}
}
