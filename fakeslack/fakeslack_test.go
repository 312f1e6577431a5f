package fakeslack_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/sift-chatops/sift/fakeslack"
)

const (
	appToken = "xapp-1-A0SIFT-1-fake"
	botToken = "xoxb-1-fake"
)

func newFake(t *testing.T, o fakeslack.Options) *fakeslack.Server {
	t.Helper()
	if o.AppToken == "" {
		o.AppToken = appToken
	}
	if o.BotToken == "" {
		o.BotToken = botToken
	}
	if o.PingInterval == 0 {
		o.PingInterval = 50 * time.Millisecond
	}
	s := fakeslack.New(o)
	t.Cleanup(s.Close)
	return s
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAPI(s *fakeslack.Server, app, bot string) *slack.Client {
	return slack.New(bot, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(app),
		slack.OptionLog(log.New(io.Discard, "", 0)))
}

// socketClient runs a slack-go socket-mode client that acknowledges every
// envelope and hands the events to the test.
type socketClient struct {
	events chan socketmode.Event
	errc   chan error
}

func runSocket(t *testing.T, s *fakeslack.Server, app string) *socketClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sm := socketmode.New(newAPI(s, app, botToken), socketmode.OptionLog(log.New(io.Discard, "", 0)))
	c := &socketClient{events: make(chan socketmode.Event, 100), errc: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Go(func() { c.errc <- sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					_ = sm.Ack(*evt.Request)
				}
				select {
				case c.events <- evt:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// next returns the next event of one of the types.
func (c *socketClient) next(t *testing.T, ctx context.Context, types ...socketmode.EventType) socketmode.Event {
	t.Helper()
	for {
		select {
		case evt := <-c.events:
			for _, tp := range types {
				if evt.Type == tp {
					return evt
				}
			}
		case <-ctx.Done():
			t.Fatalf("no %v event: %v", types, ctx.Err())
		}
	}
}

func TestSocketDeliversAndRecordsAcks(t *testing.T) {
	s := newFake(t, fakeslack.Options{})
	ctx := testContext(t)
	c := runSocket(t, s, appToken)

	sent, err := s.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "ams01", UserID: "U1", ChannelID: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	evt := c.next(t, ctx, socketmode.EventTypeSlashCommand)
	cmd := evt.Data.(slack.SlashCommand)
	if cmd.Command != "/blame-dc" || cmd.Text != "ams01" || cmd.UserID != "U1" || cmd.ChannelID != "C1" || cmd.ResponseURL != sent.ResponseURL {
		t.Errorf("slash command = %+v", cmd)
	}
	ack, err := s.WaitAck(ctx, sent.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	if ack.RetryAttempt != 0 || ack.Latency <= 0 || ack.Sent.IsZero() {
		t.Errorf("ack = %+v", ack)
	}

	if err := s.Redeliver(ctx, sent.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	evt = c.next(t, ctx, socketmode.EventTypeSlashCommand)
	if evt.Request.RetryAttempt != 1 || evt.Request.RetryReason != "timeout" || evt.Request.EnvelopeID != sent.EnvelopeID {
		t.Errorf("redelivery = %+v", evt.Request)
	}
	if _, err := s.WaitAck(ctx, sent.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	if n := len(s.AcksOf(sent.EnvelopeID)); n != 2 {
		t.Errorf("acks of the envelope = %d, want 2", n)
	}

	root, err := s.SendMention(ctx, fakeslack.Mention{UserID: "U2", ChannelID: "C1", Text: "dc ams01"})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := s.SendMention(ctx, fakeslack.Mention{UserID: "U2", ChannelID: "C1", Text: "group europe", ThreadTS: root.TS})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []fakeslack.Sent{root, reply} {
		evt := c.next(t, ctx, socketmode.EventTypeEventsAPI)
		ev := evt.Data.(slackevents.EventsAPIEvent)
		cb := ev.Data.(*slackevents.EventsAPICallbackEvent)
		m := ev.InnerEvent.Data.(*slackevents.AppMentionEvent)
		if cb.EventID != want.EventID || m.TimeStamp != want.TS || !strings.HasPrefix(m.Text, "<@"+fakeslack.DefaultBotUserID+"> ") {
			t.Errorf("mention = %+v, event id %s; want %+v", m, cb.EventID, want)
		}
		if want == reply && m.ThreadTimeStamp != root.TS {
			t.Errorf("mention in thread has thread_ts %q, want %q", m.ThreadTimeStamp, root.TS)
		}
	}
}

func TestSocketReconnects(t *testing.T) {
	s := newFake(t, fakeslack.Options{})
	ctx := testContext(t)
	c := runSocket(t, s, appToken)
	c.next(t, ctx, socketmode.EventTypeHello)

	tests := []struct {
		name  string
		cause func() error
	}{
		{"dropped socket", func() error {
			if s.DropConnections() != 1 {
				return errors.New("no socket to drop")
			}
			return nil
		}},
		{"disconnect envelope", func() error { return s.SendDisconnect(ctx, "refresh_requested") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Connections()
			if err := tc.cause(); err != nil {
				t.Fatal(err)
			}
			if err := s.Wait(ctx, func() bool { return s.Connections() > before && s.Connected() == 1 }); err != nil {
				t.Fatal(err)
			}
			sent, err := s.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "x", UserID: "U1", ChannelID: "C1"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.WaitAck(ctx, sent.EnvelopeID); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := len(s.CallsTo("apps.connections.open")); n != 3 {
		t.Errorf("apps.connections.open calls = %d, want 3", n)
	}
}

func TestSocketPings(t *testing.T) {
	// slack-go only answers pings and drops a connection that gets none:
	// the fake must ping, and the client's pongs show that it does.
	s := newFake(t, fakeslack.Options{PingInterval: 10 * time.Millisecond})
	ctx := testContext(t)
	runSocket(t, s, appToken)
	if err := s.Wait(ctx, func() bool { return s.Pongs() >= 3 }); err != nil {
		t.Fatal(err)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("sockets opened = %d, want 1", n)
	}
}

func TestInvalidAuthStopsSocketMode(t *testing.T) {
	s := newFake(t, fakeslack.Options{})
	ctx := testContext(t)
	sm := socketmode.New(newAPI(s, "xapp-wrong", botToken), socketmode.OptionLog(log.New(io.Discard, "", 0)))
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if err == nil || err.Error() != "invalid_auth" {
				t.Fatalf("RunContext = %v, want invalid_auth", err)
			}
			return
		case <-sm.Events:
		case <-ctx.Done():
			t.Fatal("RunContext did not return")
		}
	}
}

func TestWebAPI(t *testing.T) {
	s := newFake(t, fakeslack.Options{
		Users:         map[string]string{"jdoe@example.com": "U0JDOE"},
		Usergroups:    map[string][]string{"S0SRE": {"U1", "U2"}},
		Channels:      []string{"C1"},
		MissingScopes: nil,
	})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)

	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("summary", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("detail", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("summary v2", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	f, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "r.json", Title: "Report", Content: `{"a":1}`, FileSize: 7, Channel: "C1", ThreadTimestamp: ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	root, ok := s.Message("C1", ts)
	if !ok || root.Text != "summary v2" || root.Updates != 1 || root.ThreadTS != ts {
		t.Errorf("root = %+v", root)
	}
	if th := s.Thread("C1", ts); len(th) != 1 || th[0].Text != "detail" {
		t.Errorf("thread = %+v", th)
	}
	if e := s.Ephemerals(); len(e) != 1 || e[0].User != "U1" || e[0].Text != "only you" {
		t.Errorf("ephemerals = %+v", e)
	}
	if fs := s.Files(); len(fs) != 1 || fs[0].ID != f.ID || string(fs[0].Content) != `{"a":1}` || fs[0].ThreadTS != ts || fs[0].Title != "Report" {
		t.Errorf("files = %+v", fs)
	}
	for _, c := range s.Calls() {
		if c.Token != botToken {
			t.Errorf("%s carried token %q", c.Method, c.Token)
		}
		if c.Form.Has("token") {
			t.Errorf("%s: token kept in the recorded form", c.Method)
		}
	}

	errCode := func(err error) string {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			return se.Err
		}
		if err != nil {
			return err.Error()
		}
		return ""
	}
	if u, err := api.GetUserByEmailContext(ctx, "jdoe@example.com"); err != nil || u.ID != "U0JDOE" {
		t.Errorf("lookup = %v, %v", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nobody@example.com"); errCode(err) != "users_not_found" {
		t.Errorf("lookup of unknown = %v, want users_not_found", err)
	}
	if m, err := api.GetUserGroupMembersContext(ctx, "S0SRE"); err != nil || strings.Join(m, ",") != "U1,U2" {
		t.Errorf("usergroup members = %v, %v", m, err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("x", false)); errCode(err) != "not_in_channel" {
		t.Errorf("post outside channels = %v, want not_in_channel", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001")); errCode(err) != "thread_not_found" {
		t.Errorf("post to unknown thread = %v, want thread_not_found", err)
	}
	blocks := make([]slack.Block, 51)
	for i := range blocks {
		blocks[i] = slack.NewDividerBlock()
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(blocks...)); errCode(err) != "invalid_blocks" {
		t.Errorf("post of 51 blocks = %v, want invalid_blocks", err)
	}
	bad := newAPI(s, appToken, "xoxb-wrong")
	if _, err := bad.AuthTestContext(ctx); errCode(err) != "invalid_auth" {
		t.Errorf("auth.test with a wrong token = %v, want invalid_auth", err)
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t, fakeslack.Options{MissingScopes: []string{"users:read.email"}})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)

	s.RateLimitNext("chat.postMessage", 1500*time.Millisecond)
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("rate-limited post = %v, want RateLimitedError of 2s", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("post after the 429 = %v", err)
	}
	calls := s.CallsTo("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != http.StatusTooManyRequests || calls[0].Error != "ratelimited" || calls[1].Status != http.StatusOK {
		t.Errorf("calls = %+v", calls)
	}

	s.FailNext("chat.update", "msg_too_long")
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", calls[1].Form.Get("ts"), slack.MsgOptionText("y", false))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "msg_too_long" {
		t.Errorf("failed update = %v, want msg_too_long", err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "jdoe@example.com"); !errors.As(err, &se) || se.Err != "missing_scope" {
		t.Errorf("lookup without the scope = %v, want missing_scope", err)
	}
}

func TestConversationsHistory(t *testing.T) {
	s := newFake(t, fakeslack.Options{Channels: []string{"C1", "C2"}})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)
	post := func(channel, text string, opts ...slack.MsgOption) string {
		t.Helper()
		_, ts, err := api.PostMessageContext(ctx, channel, append([]slack.MsgOption{slack.MsgOptionText(text, false)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	first := post("C1", "first")
	root := post("C1", "root")
	post("C1", "a reply", slack.MsgOptionTS(root))
	header := post("C1", "with blocks", slack.MsgOptionBlocks(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Pipeline halt · halt 0123", false, false))))
	last := s.Post("C1", "U1", "a person's message")
	post("C2", "elsewhere")

	texts := func(ms []slack.Message) string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Text)
		}
		return strings.Join(out, ", ")
	}
	tests := []struct {
		name   string
		params slack.GetConversationHistoryParameters
		want   string
		more   bool
	}{
		{"all, newest first, no replies", slack.GetConversationHistoryParameters{}, "a person's message, with blocks, root, first", false},
		{"between, bounds excluded", slack.GetConversationHistoryParameters{Oldest: first, Latest: last}, "with blocks, root", false},
		{"between, bounds included", slack.GetConversationHistoryParameters{Oldest: first, Latest: last, Inclusive: true}, "a person's message, with blocks, root, first", false},
		{"oldest in whole seconds", slack.GetConversationHistoryParameters{Oldest: "0"}, "a person's message, with blocks, root, first", false},
		{"first page", slack.GetConversationHistoryParameters{Limit: 3}, "a person's message, with blocks, root", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.params
			p.ChannelID = "C1"
			resp, err := api.GetConversationHistoryContext(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(resp.Messages); got != tc.want || resp.HasMore != tc.more || (resp.ResponseMetaData.NextCursor != "") != tc.more {
				t.Errorf("messages %q, has_more %v, cursor %q; want %q, %v", got, resp.HasMore, resp.ResponseMetaData.NextCursor, tc.want, tc.more)
			}
		})
	}

	t.Run("next page", func(t *testing.T) {
		p := slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 3}
		resp, err := api.GetConversationHistoryContext(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		p.Cursor = resp.ResponseMetaData.NextCursor
		resp, err = api.GetConversationHistoryContext(ctx, &p)
		if err != nil || texts(resp.Messages) != "first" || resp.HasMore {
			t.Errorf("second page = %q, has_more %v, %v; want first alone", texts(resp.Messages), resp.HasMore, err)
		}
	})

	t.Run("what a message shows", func(t *testing.T) {
		resp, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1", Oldest: first})
		if err != nil {
			t.Fatal(err)
		}
		byTS := map[string]slack.Message{}
		for _, m := range resp.Messages {
			byTS[m.Timestamp] = m
		}
		if m := byTS[root]; m.ThreadTimestamp != root || m.User != fakeslack.DefaultBotUserID || m.BotID == "" {
			t.Errorf("thread root = %+v", m.Msg)
		}
		if m := byTS[last]; m.User != "U1" || m.BotID != "" {
			t.Errorf("a person's message = %+v", m.Msg)
		}
		blocks := byTS[header].Blocks.BlockSet
		if h, ok := blocks[0].(*slack.HeaderBlock); len(blocks) != 1 || !ok || h.Text.Text != "Pipeline halt · halt 0123" {
			t.Errorf("blocks = %+v", blocks)
		}
	})

	t.Run("timestamps are times of posting", func(t *testing.T) {
		sec, _, _ := strings.Cut(first, ".")
		if d := time.Since(time.Unix(mustAtoi(t, sec), 0)); d < -time.Minute || d > time.Minute {
			t.Errorf("ts %s is %v away from now", first, d)
		}
	})

	errCode := func(err error) string {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			return se.Err
		}
		return fmt.Sprint(err)
	}
	refusals := []struct {
		name   string
		params slack.GetConversationHistoryParameters
		want   string
	}{
		{"not a member", slack.GetConversationHistoryParameters{ChannelID: "C9"}, "not_in_channel"},
		{"no channel", slack.GetConversationHistoryParameters{}, "channel_not_found"},
		{"bad cursor", slack.GetConversationHistoryParameters{ChannelID: "C1", Cursor: "bogus"}, "invalid_cursor"},
		{"bad oldest", slack.GetConversationHistoryParameters{ChannelID: "C1", Oldest: "yesterday"}, "invalid_ts_oldest"},
		{"bad latest", slack.GetConversationHistoryParameters{ChannelID: "C1", Latest: "1.2.3"}, "invalid_ts_latest"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.GetConversationHistoryContext(ctx, &tc.params); errCode(err) != tc.want {
				t.Errorf("conversations.history = %v, want %s", err, tc.want)
			}
		})
	}

	t.Run("scope missing", func(t *testing.T) {
		s := newFake(t, fakeslack.Options{MissingScopes: []string{"channels:history"}})
		api := newAPI(s, appToken, botToken)
		if _, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1"}); errCode(err) != "missing_scope" {
			t.Errorf("conversations.history without the scope = %v, want missing_scope", err)
		}
	})
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
