package formatters

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sift-chatops/sift/triage"
)

// The text report is read in a terminal during an incident: the causes that
// matter come first, and everything long is cut so that one cause cannot
// push the others off the screen.
const (
	// maxTextCauses is how many causes the text report lists; the JSON
	// report has them all.
	maxTextCauses = 20
	// maxTextMinionIDs is how many minion ids each cause shows.
	maxTextMinionIDs = 10
	// maxTextPaths is how many changed paths a commit shows.
	maxTextPaths = 10
	// maxTextMessages is how many example messages each cause shows.
	maxTextMessages = 3
	// maxTextField is the longest single value, in characters, such as a
	// state comment or a message.
	maxTextField = 300
	// maxTextDatacenterError is the longest datacenter error in the table.
	maxTextDatacenterError = 120
)

// Text renders r as a plain text report for a terminal: the headline, the
// scope and counts, the ranked causes with their evidence, and a table of
// datacenters. Values are cleaned of control characters so that what a
// minion or a commit says cannot drive the terminal.
func Text(r *triage.Report) string {
	var b strings.Builder
	b.WriteString(textClean(r.Headline, 0))
	b.WriteString("\n\n")

	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Scope\t%s\n", textClean(r.Scope.String(), maxTextField))
	fmt.Fprintf(tw, "Started\t%s\n", r.StartedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "Duration\t%s\n", formatDuration(r.Duration))
	fmt.Fprintf(tw, "Minions\t%s\n", textCounts(r.Counts))
	tw.Flush()

	fmt.Fprintf(&b, "\nCAUSES (%d)\n", len(r.Causes))
	if len(r.Causes) == 0 {
		b.WriteString("\nNo cause found.\n")
	}
	for i, c := range firstN(r.Causes, maxTextCauses) {
		b.WriteString("\n")
		writeTextCause(&b, i+1, c)
	}
	if n := len(r.Causes) - maxTextCauses; n > 0 {
		fmt.Fprintf(&b, "\n... and %d more %s; use --format json for all\n", n, plural(n, "cause", "causes"))
	}

	if len(r.Datacenters) > 0 {
		fmt.Fprintf(&b, "\nDATACENTERS (%d)\n\n", len(r.Datacenters))
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tMASTER\tEXPECTED\tANSWERED\tHEALTHY\tFAILING\tUNREACHABLE\tMODULE MISSING\tBLAME ERROR\tDURATION\tERROR")
		for _, dc := range r.Datacenters {
			errText := textClean(dc.Error, maxTextDatacenterError)
			if errText == "" {
				errText = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
				textClean(dc.Name, maxTextField), textClean(dc.Master, maxTextField),
				dc.Counts.Expected, dc.Counts.Answered, dc.Counts.Healthy, dc.Counts.Failing,
				dc.Counts.Unreachable, dc.Counts.ModuleMissing, dc.Counts.BlameError,
				formatDuration(dc.Duration), errText)
		}
		tw.Flush()
		// Notes say how a call went when the figures alone would mislead.
		for _, dc := range r.Datacenters {
			for _, n := range dc.Notes {
				fmt.Fprintf(&b, "note: %s (%s): %s\n", textClean(dc.Name, maxTextField), textClean(dc.Master, maxTextField), textClean(n, maxTextField))
			}
		}
	}
	return b.String()
}

// writeTextCause writes one ranked cause and whatever evidence it carries.
// Fields are written whenever they are set, whatever the kind, so that
// evidence triage adds later is not dropped here.
func writeTextCause(b *strings.Builder, rank int, c triage.Cause) {
	fmt.Fprintf(b, "#%d  %s  %s\n", rank, c.Kind, textClean(c.Summary, maxTextField))
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(tw, "    %s\t%s\n", label, value)
		}
	}
	line("minions", strconv.Itoa(c.Minions)+textDatacenters(c.Datacenters))

	e := c.Evidence
	line("commit", textClean(e.CommitID, maxTextField))
	author := textClean(e.AuthorName, maxTextField)
	if e.AuthorEmail != "" {
		author = strings.TrimSpace(author + " <" + textClean(e.AuthorEmail, maxTextField) + ">")
	}
	line("author", author)
	line("date", textClean(e.CommitDatetime, maxTextField))
	line("paths", textList(e.Paths, maxTextPaths))
	line("link", textClean(e.CommitURL, maxTextField))
	if e.Version != "" {
		release := textClean(e.Version, maxTextField)
		if e.PreviousVersion != "" {
			release += " (previous " + textClean(e.PreviousVersion, maxTextField) + ")"
		}
		line("release", release)
	}
	line("service", textClean(e.ServiceURL, maxTextField))
	line("checked live", textClean(e.Probe, maxTextField))
	line("state", textState(e))
	line("failed states", textList(failedStateNames(e.FailedStates), maxTextMessages))
	line("window", textWindow(e))
	// Real messages, never the masked templates they are grouped by; the
	// gist of each, since the JSON report holds the evidence in full.
	exs := examples(c)
	for _, ex := range firstN(exs, maxTextMessages) {
		g, _ := gist(ex.Text)
		m := textClean(g, maxTextField)
		if ex.Minion != "" {
			m += " (on " + textClean(ex.Minion, maxTextField)
			if ex.Count > 1 {
				m += fmt.Sprintf(" and %d more like it", ex.Count-1)
			}
			m += ")"
		}
		line("message", m)
	}
	if n := len(exs) - maxTextMessages; n > 0 {
		line("message", fmt.Sprintf("... and %d more", n))
	}
	line("minion ids", textMinionIDs(c))
	tw.Flush()
}

// textMinionIDs lists the first minion ids of c. The rest are counted from
// c.Minions, not from the list, because a report read back from JSON holds
// only the first ids of each cause.
func textMinionIDs(c triage.Cause) string {
	if len(c.MinionIDs) == 0 {
		return ""
	}
	shown := firstN(c.MinionIDs, maxTextMinionIDs)
	out := textList(shown, len(shown))
	if extra := max(c.Minions, len(c.MinionIDs)) - len(shown); extra > 0 {
		out += fmt.Sprintf(" ... and %d more", extra)
	}
	return out
}

// textState describes the failed state, or the SLS that did not compile.
func textState(e triage.Evidence) string {
	switch {
	case e.Fun != "":
		s := textClean(e.Fun, maxTextField)
		if e.StateID != "" {
			s += " " + textClean(e.StateID, maxTextField)
		}
		if e.SLS != "" {
			s += " in " + textClean(e.SLS, maxTextField)
		}
		return s
	case e.CompileState != "":
		return "compile error in " + textClean(e.CompileState, maxTextField)
	case e.SLS != "":
		return "in " + textClean(e.SLS, maxTextField)
	}
	return ""
}

func textWindow(e triage.Evidence) string {
	var parts []string
	if e.LastSuccess != "" {
		parts = append(parts, "last success "+textClean(e.LastSuccess, maxTextField))
	}
	if e.FirstFailure != "" {
		parts = append(parts, "first failure "+textClean(e.FirstFailure, maxTextField))
	}
	return strings.Join(parts, ", ")
}

func textDatacenters(dcs []string) string {
	switch len(dcs) {
	case 0:
		return ""
	case 1:
		return " in " + textClean(dcs[0], maxTextField)
	}
	return fmt.Sprintf(" in %d datacenters: %s", len(dcs), textList(dcs, maxTextMinionIDs))
}

func textCounts(c triage.Counts) string {
	return fmt.Sprintf("%d expected, %d answered: %d healthy, %d failing, %d no jobs, %d unreachable, %d module missing, %d blame error",
		c.Expected, c.Answered, c.Healthy, c.Failing, c.NoJobs, c.Unreachable, c.ModuleMissing, c.BlameError)
}

// textList joins the first n items and says how many were left out.
func textList(items []string, n int) string {
	if len(items) == 0 {
		return ""
	}
	shown := make([]string, 0, min(n, len(items)))
	for _, s := range firstN(items, n) {
		shown = append(shown, textClean(s, maxTextField))
	}
	out := strings.Join(shown, ", ")
	if extra := len(items) - n; extra > 0 {
		out += fmt.Sprintf(" ... and %d more", extra)
	}
	return out
}

// textClean makes s safe for one line of a terminal: runs of blanks, line
// breaks and tabs become one space (a tab would also break the table
// alignment), other control
// characters, escape sequences included, are dropped, and invalid UTF-8
// becomes U+FFFD. With n > 0 the result is cut to n characters, ending in
// "...".
func textClean(s string, n int) string {
	var b strings.Builder
	count := 0
	space := false
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				r = unicode.ReplacementChar
			}
		}
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == ' ':
			// A multi-line comment is read on one line: runs of blanks
			// would only push the rest of it off the screen.
			if space {
				continue
			}
			r = ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			continue
		}
		space = r == ' '
		if n > 0 && count == n {
			return truncateRunes(b.String(), n-3) + "..."
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// truncateRunes returns the first n runes of s.
func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// formatDuration writes a duration the way people say it: "850 ms",
// "3.2 s", "41 s", "1 min 5 s", "2 h 10 min".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		if s := int(d.Seconds()) % 60; s > 0 {
			return fmt.Sprintf("%d min %d s", int(d.Minutes()), s)
		}
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	d = d.Round(time.Minute)
	if m := int(d.Minutes()) % 60; m > 0 {
		return fmt.Sprintf("%d h %d min", int(d.Hours()), m)
	}
	return fmt.Sprintf("%d h", int(d.Hours()))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
