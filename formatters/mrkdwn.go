package formatters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's limits on a message. Going over any of them makes chat.postMessage
// fail (invalid_blocks, msg_too_long, msg_blocks_too_long) and the SRE gets
// nothing, so every message is built to stay inside them.
const (
	// maxBlocks: "You can include up to 50 blocks in each message."
	maxBlocks = 50
	// maxSectionText: a section block's text is at most 3000 characters;
	// the same limit holds for any text object, context elements included.
	maxSectionText = 3000
	// maxHeaderText: a header block's plain_text is at most 150 characters.
	maxHeaderText = 150
	// maxContextElements: a context block holds at most 10 elements.
	maxContextElements = 10
	// maxMessageText: the top-level text of chat.postMessage is cut (and
	// over 40 000 characters rejected with msg_too_long).
	maxMessageText = 40000
	// maxBlocksChars is not a documented limit but a budget: messages whose
	// blocks come near 13 000 characters of JSON are rejected with
	// msg_blocks_too_long, so each message keeps its blocks under 12 000.
	maxBlocksChars = 12000
	// maxFallbackText is what Sift puts in a message's top-level text, the
	// notification and screen-reader fallback: a few lines, never the
	// whole report.
	maxFallbackText = 3000
)

// textMode says how a piece of untrusted text is rendered into mrkdwn.
type textMode int

const (
	// modeLine is one line of ordinary mrkdwn: line breaks become spaces.
	modeLine textMode = iota
	// modeBlock keeps line breaks, for multi-line comments and ``` blocks.
	modeBlock
)

// escape renders untrusted text (a summary, a minion id, a commit author, a
// state comment) for a mrkdwn field of at most n characters. Slack reads
// '&', '<' and '>' as control characters: an unescaped '<' in a comment
// could become a link or an @channel, so they become &amp; &lt; &gt;. The
// limit counts the escaped form, which is what Slack counts, and the text
// is cut between entities, never inside one, ending in "…". Backticks are
// replaced in every mode, so untrusted text can neither open a code block
// nor close one of Sift's.
func escape(s string, n int, mode textMode) string {
	if n <= 0 {
		return ""
	}
	var b strings.Builder
	count, cut := 0, -1
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				r = unicode.ReplacementChar
			}
		}
		var piece string
		switch {
		case r == '&':
			piece = "&amp;"
		case r == '<':
			piece = "&lt;"
		case r == '>':
			piece = "&gt;"
		case r == '\n' && mode == modeBlock:
			piece = "\n"
		case r == '\n' || r == '\r' || r == '\t':
			piece = " "
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			continue
		case r == '`':
			// A backtick from the report would open or close a code span
			// or a ``` block, and the rest of the message would be read
			// inside out. The modifier grave accent looks the same.
			piece = "\u02cb"
		default:
			piece = string(r)
		}
		l := utf8.RuneCountInString(piece)
		if cut < 0 && count+l > n-1 {
			// From here on the text only fits if nothing follows.
			cut = b.Len()
		}
		count += l
		if count > n {
			return b.String()[:cut] + "…"
		}
		b.WriteString(piece)
	}
	return b.String()
}

// inline escapes s as one line of mrkdwn of at most n characters.
func inline(s string, n int) string { return escape(s, n, modeLine) }

// code renders s as an inline code span whose content is at most n
// characters; empty text gives no span, since two bare backticks show as is.
func code(s string, n int) string {
	c := escape(s, n, modeLine)
	if strings.TrimSpace(c) == "" {
		return ""
	}
	return "`" + c + "`"
}

// codeBlock renders s as a ``` block whose content is at most n characters.
func codeBlock(s string, n int) string {
	c := escape(s, n, modeBlock)
	if strings.TrimSpace(c) == "" {
		return ""
	}
	return "```" + c + "```"
}

// plain cleans s for a plain_text object (a header): Slack does not parse
// plain_text for links or mentions, so only control characters go, and the
// text is cut to n characters.
func plain(s string, n int) string {
	return escapeFreeCut(textClean(s, 0), n)
}

// escapeFreeCut cuts text that needs no escaping to n characters with "…".
func escapeFreeCut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return truncateRunes(s, n-1) + "…"
}

// slackUserID is the shape of a Slack user id. Ids come from configuration
// and from Slack, but they are written unescaped inside <@…>, so anything
// else is dropped rather than trusted.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// mention renders a Slack user mention, or "" for an empty or malformed id.
func mention(userID string) string {
	if !slackUserID.MatchString(userID) {
		return ""
	}
	return "<@" + userID + ">"
}

// link renders <url|label> when raw is a plain http(s) URL, and the escaped
// label alone otherwise: a URL with '|', '<', '>' or a space in it would end
// the link early and let the rest of it be read as mrkdwn.
func link(raw, label string, n int) string {
	lbl := inline(label, n)
	if !linkable(raw) {
		return lbl
	}
	return "<" + strings.ReplaceAll(raw, "&", "&amp;") + "|" + lbl + ">"
}

// linkable reports whether raw can be written as the URL of a Slack link.
func linkable(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.ContainsAny(raw, "|<> \"") || utf8.RuneCountInString(raw) > 1000 {
		return false
	}
	for _, r := range raw {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// slackDate renders t so that each reader sees it in their own time zone,
// with the UTC time as the fallback for clients that cannot.
func slackDate(t time.Time) string {
	fallback := t.UTC().Format("2006-01-02 15:04 UTC")
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), fallback)
}

// thousands writes n with thousands separators: 100,000 minions is read at
// a glance, 100000 is counted.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// clip is the last guard on a text that is already escaped: it cuts to n
// characters, without leaving half an entity, mention or link behind. The
// builders size their texts below the limits; clip keeps a mistake in that
// sizing from costing the whole message.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	s = truncateRunes(s, n-1)
	if i := strings.LastIndexByte(s, '&'); i >= 0 && !strings.Contains(s[i:], ";") {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 && !strings.Contains(s[i:], ">") {
		s = s[:i]
	}
	return s + "…"
}

func mrkdwnText(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// section is a mrkdwn section block, or nil for empty text, which Slack
// rejects.
func section(text string) slack.Block {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return slack.NewSectionBlock(mrkdwnText(clip(text, maxSectionText)), nil, nil)
}

// header is a header block; its text is plain, so it is cleaned, not escaped.
func header(text string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, plain(text, maxHeaderText), true, false))
}

// contextBlock is a context block of mrkdwn elements, or nil when all are empty.
// Elements past Slack's ten are dropped.
func contextBlock(elems ...string) slack.Block {
	var mixed []slack.MixedElement
	for _, e := range elems {
		if strings.TrimSpace(e) == "" {
			continue
		}
		if len(mixed) == maxContextElements {
			break
		}
		mixed = append(mixed, mrkdwnText(clip(e, maxSectionText)))
	}
	if len(mixed) == 0 {
		return nil
	}
	return slack.NewContextBlock("", mixed...)
}

// jsonSize is how many characters v takes as JSON, the way Slack counts a
// message's blocks (after decoding the request, so no HTML escaping).
func jsonSize(v any) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Blocks are plain structs of strings; this does not happen, and if
		// it did, saying "too big" keeps the block out of the message.
		return maxBlocksChars + 1
	}
	return utf8.RuneCount(bytes.TrimSpace(buf.Bytes()))
}

// message collects the blocks of one Slack message and refuses any block
// that would take it past Slack's limits.
type message struct {
	blocks []slack.Block
	chars  int
}

// add appends b when it fits, leaving room for reserveBlocks more blocks of
// reserveChars characters in all, and reports whether it did. A nil block
// is ignored and counts as added.
func (m *message) add(b slack.Block, reserveBlocks, reserveChars int) bool {
	if b == nil {
		return true
	}
	size := jsonSize(b) + 1 // the comma between blocks
	if len(m.blocks)+1+reserveBlocks > maxBlocks || 2+m.chars+size+reserveChars > maxBlocksChars {
		return false
	}
	m.blocks = append(m.blocks, b)
	m.chars += size
	return true
}

// fallback cleans a message's top-level text: Slack parses it like mrkdwn,
// so the caller escapes what it puts in; this only enforces the length.
func fallback(s string) string {
	return clip(s, min(maxFallbackText, maxMessageText))
}
