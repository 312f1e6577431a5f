package bot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

func TestFindPost(t *testing.T) {
	const marker = "halt 0123456789abcdef"
	// post is what the bot posted for a halt: the marker in the header.
	post := func(t *testing.T, h *harness) string {
		t.Helper()
		ts, err := h.bot.Reply(h.ctx, incident, "", formatters.SlackMessage{
			Text:   "Sift triage of datacenter ams01",
			Blocks: []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Pipeline halt: release — datacenter ams01 · "+marker, false, false))},
		})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	// chatter is n messages of people, posted after the halt's.
	chatter := func(h *harness, n int) {
		for i := range n {
			h.slack.Post(incident, bob, fmt.Sprintf("looking at it (%d)", i))
		}
	}
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }

	tests := []struct {
		name string
		fake fakeslack.Options
		// prepare fills the channel and returns the search's since and
		// the ts FindPost must answer.
		prepare func(t *testing.T, h *harness) (since time.Time, want string)
		// wantErr is in the error FindPost must return, and wantCode
		// its Slack code, when the search fails.
		wantErr, wantCode string
		wantPages         int
	}{
		{
			name: "found among other messages",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				if _, err := h.bot.Reply(h.ctx, incident, "", formatters.SlackMessage{Text: "another report"}); err != nil {
					t.Fatal(err)
				}
				ts := post(t, h)
				// Neither a reply in its thread nor a person quoting it
				// is the post.
				if _, err := h.bot.Reply(h.ctx, incident, ts, formatters.SlackMessage{Text: "details of " + marker}); err != nil {
					t.Fatal(err)
				}
				h.slack.Post(incident, bob, "is this the same as "+marker+"?")
				return since, ts
			},
			wantPages: 1,
		},
		{
			name: "not there",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				if _, err := h.bot.Reply(h.ctx, incident, "", formatters.SlackMessage{Text: "halt 0123456789abcdee"}); err != nil {
					t.Fatal(err)
				}
				h.slack.Post(incident, bob, "we saw "+marker+" yesterday")
				return since, ""
			},
			wantPages: 1,
		},
		{
			name: "posted before since",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				post(t, h)
				return time.Now().Add(time.Second), ""
			},
			wantPages: 1,
		},
		{
			name: "found on a later page",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				ts := post(t, h)
				chatter(h, 250)
				return since, ts
			},
			wantPages: 2,
		},
		{
			name: "beyond the bound",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				post(t, h)
				chatter(h, 1000)
				return since, ""
			},
			wantErr:   "not in the newest 1000 messages",
			wantPages: 5,
		},
		{
			name: "rate limited",
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				ts := post(t, h)
				h.slack.RateLimitNext("conversations.history", 2*time.Second)
				return since, ts
			},
			wantPages: 2, // the same page, asked again
		},
		{
			name: "scope missing",
			fake: fakeslack.Options{MissingScopes: []string{"channels:history"}},
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				since := hourAgo()
				post(t, h)
				return since, ""
			},
			wantErr:   "needs the channels:history scope (groups:history for a private channel)",
			wantCode:  "missing_scope",
			wantPages: 1,
		},
		{
			name: "bot not in the channel",
			fake: fakeslack.Options{Channels: []string{elsewhere}},
			prepare: func(t *testing.T, h *harness) (time.Time, string) {
				return hourAgo(), ""
			},
			wantErr:   "invite the bot to the channel",
			wantCode:  "not_in_channel",
			wantPages: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var slackErrors []string
			h := start(t, setup{
				inv: &smallInventory, fake: tc.fake,
				triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
					return cannedReport(s), nil
				}).factory(),
				deps: func(d *bot.Deps) {
					d.OnSlackError = func(method, code string) {
						mu.Lock()
						defer mu.Unlock()
						slackErrors = append(slackErrors, method+" "+code)
					}
				},
			})
			since, want := tc.prepare(t, h)

			got, err := h.bot.FindPost(h.ctx, incident, marker, since)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("FindPost = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("FindPost = %q, %v; want an error saying %q", got, err, tc.wantErr)
			}
			if got != want {
				t.Errorf("FindPost = %q, want %q", got, want)
			}
			if tc.wantCode != "" {
				var se *bot.SlackError
				if !errors.As(err, &se) || se.Method != "conversations.history" || se.Code != tc.wantCode {
					t.Errorf("error %v is not the SlackError of conversations.history %s", err, tc.wantCode)
				}
				mu.Lock()
				if !slices.Contains(slackErrors, "conversations.history "+tc.wantCode) {
					t.Errorf("OnSlackError calls = %v, want conversations.history %s", slackErrors, tc.wantCode)
				}
				mu.Unlock()
			}

			calls := h.slack.CallsTo("conversations.history")
			if len(calls) != tc.wantPages {
				t.Fatalf("%d conversations.history calls, want %d:\n%s", len(calls), tc.wantPages, bodyOf(calls))
			}
			f := calls[0].Form
			wantOldest := fmt.Sprintf("%d.%06d", since.Unix(), since.Nanosecond()/1000)
			if f.Get("channel") != incident || f.Get("oldest") != wantOldest || f.Get("limit") != "200" || f.Has("cursor") {
				t.Errorf("first call's form = %v, want channel %s, oldest %s, limit 200, no cursor", f, incident, wantOldest)
			}
			for i, c := range calls[1:] {
				if tc.name == "rate limited" {
					if c.Form.Encode() != calls[0].Form.Encode() {
						t.Errorf("the page asked again differs:\n%s\n%s", calls[0].Form.Encode(), c.Form.Encode())
					}
				} else if c.Form.Get("cursor") == "" || c.Form.Get("oldest") != wantOldest {
					t.Errorf("call %d's form = %v, want the cursor and the same oldest", i+2, c.Form)
				}
			}
		})
	}
}

func TestFindPostAsksWhoItIsOnce(t *testing.T) {
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		return cannedReport(s), nil
	}).factory()})
	before := len(h.slack.CallsTo("auth.test")) // Run's own
	for range 3 {
		if _, err := h.bot.FindPost(h.ctx, incident, "halt 0123456789abcdef", time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.slack.CallsTo("auth.test")) - before; n != 1 {
		t.Errorf("%d auth.test calls for three searches, want 1", n)
	}
}
