package fakeslack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sift-chatops/sift/fakeslack"
)

// acker runs a slack-go socket-mode client that acknowledges each
// interactive envelope with what payload returns for it.
func acker(t *testing.T, s *fakeslack.Server, payload func(slack.InteractionCallback) any) chan slack.InteractionCallback {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sm := socketmode.New(newAPI(s, appToken, botToken))
	got := make(chan slack.InteractionCallback, 10)
	done := make(chan struct{}, 2)
	go func() { _ = sm.RunContext(ctx); done <- struct{}{} }()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue
				}
				cb, _ := evt.Data.(slack.InteractionCallback)
				var p any
				if evt.Type == socketmode.EventTypeInteractive && payload != nil {
					p = payload(cb)
				}
				_ = sm.AckCtx(ctx, evt.Request.EnvelopeID, p)
				if evt.Type == socketmode.EventTypeInteractive {
					got <- cb
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return got
}

func next(t *testing.T, ctx context.Context, ch chan slack.InteractionCallback) slack.InteractionCallback {
	t.Helper()
	select {
	case cb := <-ch:
		return cb
	case <-ctx.Done():
		t.Fatal("no interaction")
	}
	return slack.InteractionCallback{}
}

// postButtons posts a bot message with a Re-run button in a thread.
func postButtons(t *testing.T, ctx context.Context, api *slack.Client) (root, ts string) {
	t.Helper()
	_, root, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("summary", false))
	if err != nil {
		t.Fatal(err)
	}
	btn := slack.NewButtonBlockElement("sift_rerun", "datacenter:ams01", slack.NewTextBlockObject(slack.PlainTextType, "Re-run", true, false))
	btn.Style = slack.StylePrimary
	_, ts, err = api.PostMessageContext(ctx, "C1", slack.MsgOptionTS(root), slack.MsgOptionText("cause", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("sift_actions", btn)))
	if err != nil {
		t.Fatal(err)
	}
	return root, ts
}

func TestBlockActionsAsSlackSendsThem(t *testing.T) {
	s := newFake(t, fakeslack.Options{})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)
	got := acker(t, s, nil)
	root, ts := postButtons(t, ctx, api)

	if _, err := s.SendBlockAction(ctx, fakeslack.BlockAction{UserID: "U1", ChannelID: "C1", MessageTS: ts, ActionID: "sift_rerun", Value: "other"}); err == nil {
		t.Error("a click on a button the message does not have was delivered")
	}
	sent, err := s.SendBlockAction(ctx, fakeslack.BlockAction{UserID: "U1", ChannelID: "C1", MessageTS: ts, ActionID: "sift_rerun", Value: "datacenter:ams01"})
	if err != nil {
		t.Fatal(err)
	}
	cb := next(t, ctx, got)
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U1" || cb.Channel.ID != "C1" || cb.TriggerID != sent.TriggerID ||
		cb.Container.Type != "message" || cb.Container.MessageTs != ts || cb.Container.ThreadTs != root ||
		cb.Message.Timestamp != ts || cb.Message.ThreadTimestamp != root || cb.ResponseURL == "" {
		t.Errorf("callback = %+v", cb)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("actions = %+v", cb.ActionCallback)
	}
	a := cb.ActionCallback.BlockActions[0]
	if a.ActionID != "sift_rerun" || a.Value != "datacenter:ams01" || a.BlockID != "sift_actions" || a.Type != "button" || a.Text.Text != "Re-run" {
		t.Errorf("action = %+v", a)
	}
	if len(cb.Message.Blocks.BlockSet) != 1 {
		t.Errorf("message blocks = %+v", cb.Message.Blocks)
	}
}

func TestShortcutViewAndSuggestions(t *testing.T) {
	s := newFake(t, fakeslack.Options{})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)
	got := acker(t, s, func(cb slack.InteractionCallback) any {
		switch cb.Type {
		case slack.InteractionTypeBlockSuggestion:
			return slack.OptionsResponse{Options: []*slack.OptionBlockObject{
				slack.NewOptionBlockObject(cb.Value+"-1", slack.NewTextBlockObject(slack.PlainTextType, cb.Value+"-1", false, false), nil),
			}}
		case slack.InteractionTypeViewSubmission:
			if cb.View.State.Values["b_dc"]["dc"].SelectedOption.Value == "bad" {
				return slack.NewErrorsViewSubmissionResponse(map[string]string{"b_dc": "no such datacenter"})
			}
		}
		return nil
	})
	root := s.Post("C1", "U2", "incident root")
	reply := s.Post("C1", "U2", "a reply")
	_ = reply
	sent, err := s.SendMessageShortcut(ctx, fakeslack.MessageShortcut{UserID: "U1", ChannelID: "C1", MessageTS: root, CallbackID: "sift_triage"})
	if err != nil {
		t.Fatal(err)
	}
	cb := next(t, ctx, got)
	if cb.Type != slack.InteractionTypeMessageAction || cb.CallbackID != "sift_triage" || cb.TriggerID != sent.TriggerID ||
		cb.Channel.ID != "C1" || cb.Message.Timestamp != root || cb.Message.Text != "incident root" || cb.MessageTs != root || cb.User.ID != "U1" {
		t.Errorf("shortcut callback = %+v", cb)
	}

	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	minion := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, text("minion"), "minion")
	dc := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, text("dc"), "dc",
		slack.NewOptionBlockObject("ams01", text("ams01"), nil), slack.NewOptionBlockObject("bad", text("bad"), nil))
	view := slack.ModalViewRequest{
		Type: slack.VTModal, Title: text("Triage with Sift"), Submit: text("Triage"), CallbackID: "sift_triage", PrivateMetadata: "C1/" + root,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("b_minion", text("Minion"), nil, minion).WithOptional(true),
			slack.NewInputBlock("b_dc", text("Datacenter"), nil, dc).WithOptional(true),
		}},
	}
	bad := view
	bad.Title = text("A title longer than Slack allows")
	if _, err := api.OpenViewContext(ctx, cb.TriggerID, bad); err == nil || !strings.Contains(err.Error(), "invalid_arguments") {
		t.Errorf("views.open of a bad view: %v", err)
	}
	if _, err := api.OpenViewContext(ctx, "1.2.nope", view); err == nil || !strings.Contains(err.Error(), "invalid_trigger_id") {
		t.Errorf("views.open with an unknown trigger: %v", err)
	}
	resp, err := api.OpenViewContext(ctx, cb.TriggerID, view)
	if err != nil {
		t.Fatal(err)
	}
	if resp.View.ID == "" || resp.View.CallbackID != "sift_triage" || resp.View.PrivateMetadata != "C1/"+root {
		t.Errorf("opened view = %+v", resp.View)
	}
	if _, err := api.OpenViewContext(ctx, cb.TriggerID, view); err == nil || !strings.Contains(err.Error(), "exchanged_trigger_id") {
		t.Errorf("a trigger opened two views: %v", err)
	}

	sug, err := s.SendBlockSuggestion(ctx, fakeslack.BlockSuggestion{UserID: "U1", ViewID: resp.View.ID, BlockID: "b_minion", ActionID: "minion", Value: "web"})
	if err != nil {
		t.Fatal(err)
	}
	cb = next(t, ctx, got)
	if cb.Type != slack.InteractionTypeBlockSuggestion || cb.ActionID != "minion" || cb.BlockID != "b_minion" || cb.Value != "web" ||
		cb.Container.ViewID != resp.View.ID || cb.View.ID != resp.View.ID {
		t.Errorf("suggestion callback = %+v", cb)
	}
	ack, err := s.WaitAck(ctx, sug.EnvelopeID)
	if err != nil || !strings.Contains(string(ack.Payload), `"web-1"`) {
		t.Errorf("suggestion ack = %s, %v", ack.Payload, err)
	}
	if _, err := s.SendBlockSuggestion(ctx, fakeslack.BlockSuggestion{UserID: "U1", ViewID: resp.View.ID, BlockID: "b_dc", ActionID: "dc", Value: "a"}); err == nil {
		t.Error("a suggestion for a static select was delivered")
	}

	submit := func(value string) (slack.InteractionCallback, fakeslack.Ack) {
		t.Helper()
		sent, err := s.SubmitView(ctx, fakeslack.ViewSubmission{UserID: "U1", ViewID: resp.View.ID, Values: map[string]map[string]fakeslack.ViewValue{
			"b_dc": {"dc": {Type: "static_select", Selected: value, Text: value}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		cb := next(t, ctx, got)
		ack, err := s.WaitAck(ctx, sent.EnvelopeID)
		if err != nil {
			t.Fatal(err)
		}
		return cb, ack
	}
	cb, _ = submit("bad")
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != "sift_triage" || cb.View.PrivateMetadata != "C1/"+root ||
		cb.View.State == nil || cb.View.State.Values["b_dc"]["dc"].SelectedOption.Value != "bad" || cb.User.ID != "U1" {
		t.Errorf("submission callback = %+v", cb)
	}
	if !s.Views()[0].Open {
		t.Error("an errors answer closed the view")
	}
	submit("ams01")
	if s.Views()[0].Open {
		t.Error("a plain acknowledgement left the view open")
	}
	if _, err := s.SubmitView(ctx, fakeslack.ViewSubmission{UserID: "U1", ViewID: resp.View.ID}); err == nil {
		t.Error("a closed view was submitted")
	}
}

func TestTriggersExpire(t *testing.T) {
	// A TTL no call can meet, so that the test does not depend on time.
	s := newFake(t, fakeslack.Options{TriggerTTL: time.Nanosecond})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)
	got := acker(t, s, nil)
	root := s.Post("C1", "U2", "root")
	if _, err := s.SendMessageShortcut(ctx, fakeslack.MessageShortcut{UserID: "U1", ChannelID: "C1", MessageTS: root, CallbackID: "x"}); err != nil {
		t.Fatal(err)
	}
	cb := next(t, ctx, got)
	text := slack.NewTextBlockObject(slack.PlainTextType, "T", false, false)
	view := slack.ModalViewRequest{Type: slack.VTModal, Title: text, Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}}}
	if _, err := api.OpenViewContext(ctx, cb.TriggerID, view); err == nil || !strings.Contains(err.Error(), "expired_trigger_id") {
		t.Errorf("views.open with an expired trigger: %v", err)
	}
}

func TestStateForBlockKitViewers(t *testing.T) {
	s := newFake(t, fakeslack.Options{Users: map[string]string{"jdoe@example.com": "U0JDOE"}})
	ctx := testContext(t)
	api := newAPI(s, appToken, botToken)
	root, ts := postButtons(t, ctx, api)
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", root, slack.MsgOptionText("summary, final", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UploadFileContext(ctx, slack.UploadFileParameters{Channel: "C1", ThreadTimestamp: root, Filename: "m.csv", Content: "a,b\n", FileSize: 4, Title: "Minions"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteState(&buf, map[string]string{"C1": "incident", "U1": "alice"}); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Messages []struct {
			Channel, TS, Text, Source, User string
			ThreadTS                        string          `json:"thread_ts"`
			FileID                          string          `json:"file_id"`
			Ephemeral                       bool            `json:"ephemeral"`
			Blocks                          json.RawMessage `json:"blocks"`
		} `json:"messages"`
		Users    map[string]struct{ Name string } `json:"users"`
		Channels map[string]struct{ Name string } `json:"channels"`
		Files    []struct{ ID, Title string }     `json:"files"`
		Bot      map[string]string                `json:"bot"`
	}
	if err := json.Unmarshal(buf.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != 4 {
		t.Fatalf("%d messages: %s", len(st.Messages), buf.String())
	}
	m := st.Messages
	if m[0].TS != root || m[0].Text != "summary, final" || m[1].TS != ts || m[1].ThreadTS != root || len(m[1].Blocks) == 0 ||
		!m[2].Ephemeral || m[2].User != "U1" || m[3].FileID == "" || m[3].ThreadTS != root {
		t.Errorf("messages = %+v", m)
	}
	if len(st.Files) != 1 || st.Files[0].ID != m[3].FileID || st.Files[0].Title != "Minions" {
		t.Errorf("files = %+v", st.Files)
	}
	if st.Users["U1"].Name != "alice" || st.Users["U0JDOE"].Name == "" || st.Channels["C1"].Name != "incident" || st.Bot["user_id"] != fakeslack.DefaultBotUserID {
		t.Errorf("names: users %v channels %v bot %v", st.Users, st.Channels, st.Bot)
	}
}
