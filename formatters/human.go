package formatters

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/sift-chatops/sift/triage"
)

// How much of a real message a person is shown before the full text.
const (
	// gistLines is how many lines the meaningful part of a message keeps.
	gistLines = 6
	// gistChars bounds the meaningful part of a message.
	gistChars = 600
	// shortLines, shortChars: a message this short is shown whole, since
	// its gist and the full text would say the same thing twice.
	shortLines = 10
	shortChars = 700
)

// failureLine matches the lines of a state comment or command output that
// say what failed, as opposed to progress, notices and context.
var failureLine = regexp.MustCompile(`(?i)(\berror|\bfail|\bfatal|\[alert\]|\[emerg|\[crit|\bdenied\b|\brefused\b|not found|no such|\bunable\b|\bcannot\b|can't|\binvalid\b|exception|timed out|\bmissing\b|\bconflict|^e: |\bsealed\b|\bforbidden\b|\bunknown\b|\bexit (status|code) [1-9])`)

// exceptionLine matches the last line of a Python traceback: the
// exception's type and message.
var exceptionLine = regexp.MustCompile(`^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Failure)(: .*)?$`)

// gist is the meaningful part of a long message: for a traceback the line
// before it and the exception line; for a state comment or command output
// its first line and the lines that say what failed. A short message is
// its own gist. The second result says whether the gist is the whole text.
func gist(s string) (string, bool) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
	}
	if len(lines) <= shortLines && len([]rune(s)) <= shortChars {
		return s, true
	}
	var keep []string
	add := func(l string) {
		l = strings.TrimSpace(l)
		for _, k := range keep {
			if k == l {
				return
			}
		}
		keep = append(keep, l)
	}
	if tb := tracebackStart(lines); tb >= 0 {
		if tb > 0 {
			add(lines[0])
		}
		for i := len(lines) - 1; i > tb; i-- {
			if exceptionLine.MatchString(strings.TrimSpace(lines[i])) && !strings.HasPrefix(lines[i], " ") {
				add(lines[i])
				break
			}
		}
	}
	if len(keep) == 0 {
		add(lines[0])
		for _, l := range lines[1:] {
			if len(keep) == gistLines {
				break
			}
			if failureLine.MatchString(strings.TrimSpace(l)) {
				add(l)
			}
		}
		if len(keep) == 1 {
			for _, l := range lines[1:min(3, len(lines))] {
				add(l)
			}
		}
	}
	g := strings.Join(keep, "\n")
	if len([]rune(g)) > gistChars {
		g = truncateRunes(g, gistChars-1) + "…"
	}
	return g, g == s
}

// tracebackStart is the index of a Python traceback's first line, or -1.
func tracebackStart(lines []string) int {
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "Traceback (most recent call last)") {
			return i
		}
	}
	return -1
}

// examples are the real messages shown for a cause: the aggregator's, or
// for a failed state without them, the comment it kept. Templates (the
// masked grouping form) are never shown to people.
func examples(c triage.Cause) []triage.Example {
	var out []triage.Example
	for _, ex := range c.Evidence.Examples {
		if strings.TrimSpace(ex.Text) != "" {
			out = append(out, ex)
		}
	}
	if len(out) == 0 && c.Kind == triage.CauseFailedState && strings.TrimSpace(c.Evidence.Comment) != "" {
		out = append(out, triage.Example{Text: c.Evidence.Comment})
	}
	return out
}

// likeIt says whose message an example is: "on web-001 and 46 more like it".
func likeIt(ex triage.Example) string {
	s := ""
	if ex.Minion != "" {
		s = "on " + code(ex.Minion, 80)
	}
	if n := ex.Count - 1; n > 0 {
		if s == "" {
			return fmt.Sprintf("%s %s like it", thousands(ex.Count), plural(ex.Count, "minion", "minions"))
		}
		s += fmt.Sprintf(" and %s more like it", thousands(n))
	}
	return s
}

// failedStateNames names the failed states most common among a cause's
// minions as a person reads them ("file.managed /etc/nginx/nginx.conf"),
// without the grouping template of their messages.
func failedStateNames(sigs []triage.Signature) []string {
	var out []string
	for _, sig := range sigs {
		n := signatureName(sig)
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// signatureName is the "fun id" of a failed state, or the sls of a
// compile error.
func signatureName(sig triage.Signature) string {
	if sig.Fun == "" {
		if sig.SLS == "" {
			return ""
		}
		return "compile error in " + sig.SLS
	}
	return strings.TrimSpace(sig.Fun + " " + sig.StateID)
}

// parseTime reads the times minions report (RFC 3339, with or without
// fractions).
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// slackTime renders a time a minion reported as a Slack date, or the raw
// text escaped when it is not a time.
func slackTime(s string) string {
	t, ok := parseTime(s)
	if !ok {
		return inline(s, 60)
	}
	return slackDate(t)
}

// age says how long before ref t was, in the largest unit that reads
// well: "23 min", "3 h 5 min", "2 days".
func age(t, ref time.Time) string {
	d := ref.Sub(t)
	switch {
	case d < 0:
		return ""
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m > 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// groupDigits writes the whole numbers of a sentence that triage wrote
// (the headline) the way the rest of a report writes them: "3000 failing"
// becomes "3,000 failing". Only numbers standing alone are touched, never
// the digits of a version, a commit, an address or a name.
func groupDigits(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i := 0; i < len(runes); {
		if !unicode.IsDigit(runes[i]) {
			b.WriteRune(runes[i])
			i++
			continue
		}
		j := i
		for j < len(runes) && unicode.IsDigit(runes[j]) {
			j++
		}
		word := string(runes[i:j])
		before := i == 0 || runes[i-1] == ' ' || runes[i-1] == '('
		after := j == len(runes) || runes[j] == ' ' || runes[j] == ')' ||
			(strings.ContainsRune(",;:", runes[j]) && (j+1 == len(runes) || runes[j+1] == ' '))
		if before && after && len(word) > 3 && word[0] != '0' {
			n := 0
			for _, d := range word {
				n = n*10 + int(d-'0')
			}
			if len(word) < 16 {
				word = thousands(n)
			}
		}
		b.WriteString(word)
		i = j
	}
	return b.String()
}
