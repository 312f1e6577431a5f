package formatters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// checkSlackReport checks every message of r against Slack's limits.
func checkSlackReport(t *testing.T, r SlackReport) {
	t.Helper()
	checkMessage(t, "summary", r.Summary)
	for i, m := range r.Thread {
		checkMessage(t, fmt.Sprintf("thread[%d]", i), m)
	}
}

// checkMessage checks one message against each limit Slack enforces, and
// that all text is escaped.
func checkMessage(t *testing.T, name string, m SlackMessage) {
	t.Helper()
	if m.Text == "" {
		t.Errorf("%s: empty fallback text", name)
	}
	if n := utf8.RuneCountInString(m.Text); n > maxFallbackText || n > maxMessageText {
		t.Errorf("%s: fallback text has %d characters", name, n)
	}
	checkEscaped(t, name+" text", m.Text)
	if len(m.Blocks) == 0 || len(m.Blocks) > maxBlocks {
		t.Errorf("%s: %d blocks (want 1..%d)", name, len(m.Blocks), maxBlocks)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m.Blocks); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if n := utf8.RuneCount(bytes.TrimSpace(buf.Bytes())); n > maxBlocksChars {
		t.Errorf("%s: blocks take %d characters of JSON (budget %d)", name, n, maxBlocksChars)
	}
	for i, b := range m.Blocks {
		where := fmt.Sprintf("%s block %d", name, i)
		switch b := b.(type) {
		case *slack.HeaderBlock:
			if b.Text == nil || b.Text.Type != slack.PlainTextType {
				t.Errorf("%s: header without plain_text", where)
				continue
			}
			if n := utf8.RuneCountInString(b.Text.Text); n == 0 || n > maxHeaderText {
				t.Errorf("%s: header has %d characters", where, n)
			}
		case *slack.SectionBlock:
			if b.Text == nil || len(b.Fields) > 0 {
				t.Errorf("%s: section without text, or with fields", where)
				continue
			}
			checkText(t, where, b.Text)
		case *slack.ContextBlock:
			els := b.ContextElements.Elements
			if len(els) == 0 || len(els) > maxContextElements {
				t.Errorf("%s: context with %d elements", where, len(els))
			}
			for _, e := range els {
				tb, ok := e.(*slack.TextBlockObject)
				if !ok {
					t.Errorf("%s: context element %T", where, e)
					continue
				}
				checkText(t, where, tb)
			}
		case *slack.DividerBlock:
		case *slack.ActionBlock:
			els := b.Elements.ElementSet
			if len(els) == 0 || len(els) > maxActionElements {
				t.Errorf("%s: actions with %d elements", where, len(els))
			}
			for _, e := range els {
				btn, ok := e.(*slack.ButtonBlockElement)
				if !ok {
					t.Errorf("%s: action element %T", where, e)
					continue
				}
				if n := utf8.RuneCountInString(btn.Text.Text); n == 0 || n > maxButtonText || btn.Text.Type != slack.PlainTextType {
					t.Errorf("%s: button text %q", where, btn.Text.Text)
				}
				if n := len(btn.Value); n > maxButtonValue || len(btn.ActionID) == 0 || len(btn.ActionID) > 255 {
					t.Errorf("%s: button %q value of %d characters", where, btn.ActionID, n)
				}
			}
		default:
			t.Errorf("%s: unexpected block %T", where, b)
		}
	}
}

// Slack's limits on buttons: an actions block holds at most 25 elements,
// a button's text 75 characters and its value 2000.
const (
	maxActionElements = 25
	maxButtonText     = 75
	maxButtonValue    = 2000
)

func checkText(t *testing.T, where string, tb *slack.TextBlockObject) {
	t.Helper()
	if n := utf8.RuneCountInString(tb.Text); n == 0 || n > maxSectionText {
		t.Errorf("%s: text has %d characters", where, n)
	}
	if !utf8.ValidString(tb.Text) {
		t.Errorf("%s: text is not valid UTF-8", where)
	}
	if tb.Type == slack.MarkdownType {
		checkEscaped(t, where, tb.Text)
	}
}

// ours matches what Sift itself writes with angle brackets: mentions, links
// and dates. Anything else in angle brackets came from a report unescaped.
var ours = regexp.MustCompile(`<@[UW][A-Z0-9]+>|<https?://[^|<> ]+\|[^<>]*>|<!date\^[0-9]+\^[^|<>]+\|[^<>]*>`)

var entity = regexp.MustCompile(`&(amp|lt|gt);`)

func checkEscaped(t *testing.T, where, s string) {
	t.Helper()
	rest := ours.ReplaceAllString(s, "")
	if strings.ContainsAny(rest, "<>") {
		t.Errorf("%s: unescaped '<' or '>' in %.200q", where, s)
	}
	if strings.Contains(entity.ReplaceAllString(rest, ""), "&") {
		t.Errorf("%s: unescaped '&' in %.200q", where, s)
	}
	if strings.Count(s, "```")%2 != 0 {
		t.Errorf("%s: unbalanced code fence in %.200q", where, s)
	}
}
