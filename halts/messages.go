package halts

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/formatters"
)

// maxHeaderText is Slack's limit on a header block's text.
const maxHeaderText = 150

// maxReason caps a halt's reason in a message: sources may send pages.
const maxReason = 1000

// Marker is the text every post of a halt carries in its header, so the
// post can be found in the channel's history.
func Marker(fp string) string { return "halt " + fp }

// Title is the header of a halt's post: what halted, where, and the
// halt's marker, which is kept whole when the rest is cut.
func Title(h Halt) string {
	return titleWith("Pipeline halt: ", h)
}

func titleWith(prefix string, h Halt) string {
	suffix := " · " + Marker(h.Fingerprint)
	head := prefix + oneLine(h.Name) + " — " + oneLine(h.Scope.String())
	if r := []rune(head); len(r)+len([]rune(suffix)) > maxHeaderText {
		head = string(r[:maxHeaderText-len([]rune(suffix))-1]) + "…"
	}
	return head + suffix
}

// stored is the summary message as the store keeps it, for the resolved edit.
type stored struct {
	Text   string       `json:"text"`
	Blocks slack.Blocks `json:"blocks"`
}

func storedMessage(m formatters.SlackMessage) stored {
	return stored{Text: m.Text, Blocks: slack.Blocks{BlockSet: m.Blocks}}
}

// resolvedSummary is the post as edited when the halt cleared: a header
// that says so, how long it lasted, then the report as it was posted.
func resolvedSummary(h Halt) (formatters.SlackMessage, error) {
	var orig stored
	if len(h.Summary) > 0 {
		if err := json.Unmarshal(h.Summary, &orig); err != nil {
			return formatters.SlackMessage{}, fmt.Errorf("stored summary: %w", err)
		}
	}
	lasted := humanDuration(h.ResolvedAt.Sub(h.FiredAt))
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, titleWith("Resolved: ", h), true, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf(
			":white_check_mark: *Halt cleared after %s* (fired %s, cleared %s).",
			lasted, slackTime(h.FiredAt), slackTime(h.ResolvedAt)), false, false), nil, nil),
	}
	for _, b := range orig.Blocks.BlockSet {
		if b.BlockType() == slack.MBTHeader {
			continue
		}
		blocks = append(blocks, b)
	}
	text := "Resolved after " + lasted + ": " + orig.Text
	if orig.Text == "" {
		text = "Resolved after " + lasted + ": " + escape(h.Name) + " on " + escape(h.Scope.String())
	}
	return formatters.SlackMessage{Text: clip(text, 3000), Blocks: blocks}, nil
}

// resolvedReply is the last reply of a halt's thread.
func resolvedReply(h Halt) formatters.SlackMessage {
	text := fmt.Sprintf(":white_check_mark: Resolved: *%s* on *%s* cleared after %s.",
		escape(h.Name), escape(h.Scope.String()), humanDuration(h.ResolvedAt.Sub(h.FiredAt)))
	return textMessage(text)
}

// stillFailingMessage is the reply that says an open halt keeps firing.
func stillFailingMessage(h Halt, now time.Time) formatters.SlackMessage {
	n := h.Firings - h.FiringsAtUpdate
	text := fmt.Sprintf(":rotating_light: Still failing: *%s* on *%s*, open for %s; %d more firing %s since the last update.",
		escape(h.Name), escape(h.Scope.String()), humanDuration(now.Sub(h.FiredAt)), n, plural(n, "notice", "notices"))
	return textMessage(text)
}

// detailsMessage is the first reply of a halt's thread: what the source said.
func detailsMessage(h Halt) formatters.SlackMessage {
	var b strings.Builder
	fmt.Fprintf(&b, "*Halt* `%s` from %s *%s* on *%s*, fired %s.", h.Fingerprint, h.Source, escape(h.Name), escape(h.Scope.String()), slackTime(h.FiredAt))
	if r := strings.TrimSpace(h.Reason); r != "" {
		b.WriteString("\n>" + strings.ReplaceAll(escape(clip(r, maxReason)), "\n", "\n>"))
	}
	if link := slackLink(h.URL); link != "" {
		b.WriteString("\n" + link)
	}
	return textMessage(b.String())
}

func textMessage(text string) formatters.SlackMessage {
	return formatters.SlackMessage{
		Text:   clip(text, 3000),
		Blocks: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clip(text, 3000), false, false), nil, nil)},
	}
}

// escape makes text safe in mrkdwn: Slack reads &, < and > as markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackLink is a link to an http(s) URL, or "" for anything else: a
// source's URL is shown only when it cannot break the markup.
func slackLink(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(raw, "|<> \n") {
		return ""
	}
	return "<" + raw + "|details>"
}

// slackTime renders t in the reader's own time zone, with UTC as fallback.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// humanDuration is a duration as people say it: 45s, 12m, 3h05m, 2d4h.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinedMessage is the reply that lists the halts that joined a halt:
// n joined since the last such reply, of which listed are named.
func joinedMessage(n int, listed []Halt) formatters.SlackMessage {
	var b strings.Builder
	fmt.Fprintf(&b, ":link: %d more %s of this scope joined this halt:", n, plural(n, "alert", "alerts"))
	for _, h := range listed {
		fmt.Fprintf(&b, "\n• %s *%s*, fired %s", h.Source, escape(clip(oneLine(h.Name), 80)), slackTime(h.FiredAt))
		if r := strings.TrimSpace(h.Reason); r != "" {
			b.WriteString(": " + escape(clip(oneLine(r), 120)))
		}
	}
	if rest := n - len(listed); rest > 0 {
		fmt.Fprintf(&b, "\n…and %d more (`sift history` and the store keep them all).", rest)
	}
	return textMessage(b.String())
}

// suppressedMessage is the note of the halts not posted because the post
// budget was spent.
func suppressedMessage(n, budget int) formatters.SlackMessage {
	return textMessage(fmt.Sprintf(":no_bell: %d more %s suppressed: Sift posts at most %d halts an hour (halts.max_posts_per_hour). "+
		"They are stored, and counted in sift_halts_suppressed_total.", n, plural(n, "halt", "halts"), budget))
}

// internalErrorMessage is the reply when Sift failed on a halt by its own
// fault: the id leads to the log entry with the detail.
func internalErrorMessage(id string) formatters.SlackMessage {
	return textMessage(fmt.Sprintf(":warning: Sift hit an internal error; the log has id `%s`. It will try again.", id))
}
