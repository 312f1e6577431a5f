package fakeslack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits Slack applies to a modal opened with views.open.
const (
	maxViewTitle    = 24
	maxViewBlocks   = 100
	maxViewMetadata = 3000
	maxCallbackID   = 255
)

// BlockAction is a click on a button of a message the bot posted.
type BlockAction struct {
	UserID    string
	ChannelID string
	// MessageTS is the message that holds the button.
	MessageTS string
	// ActionID and Value pick the button; Slack only sends actions of
	// buttons that exist, so the fake refuses others.
	ActionID string
	Value    string
}

// MessageShortcut is a message shortcut used on a message.
type MessageShortcut struct {
	UserID    string
	ChannelID string
	// MessageTS is the message the shortcut was used on.
	MessageTS  string
	CallbackID string
}

// ViewValue is what a user put in one input element of a modal.
type ViewValue struct {
	// Type is the element's type: static_select, external_select, ...
	Type string
	// Selected is the value of the chosen option; Text its label.
	Selected, Text string
}

// ViewSubmission submits an open modal with the values of its inputs,
// by block id then action id.
type ViewSubmission struct {
	UserID string
	ViewID string
	Values map[string]map[string]ViewValue
}

// BlockSuggestion is a user typing in an external_select of an open modal.
type BlockSuggestion struct {
	UserID   string
	ViewID   string
	BlockID  string
	ActionID string
	// Value is what the user typed.
	Value string
}

// View is a modal opened with views.open.
type View struct {
	ID        string
	TriggerID string
	// View is the view as the bot sent it.
	View json.RawMessage
	// Open is false once the view was submitted and its acknowledgement
	// did not keep it open (response_action "errors").
	Open bool
}

type openView struct {
	View
	user   string
	parsed map[string]any
	// submitted is the envelope of the pending submission, if any.
	submitted string
}

type trigger struct {
	issued time.Time
	used   bool
	user   string
}

// newTriggerLocked issues a trigger id for an interaction of user; s.mu
// must be held.
func (s *Server) newTriggerLocked(user string) string {
	id := fmt.Sprintf("%d.%s.%s", time.Now().Unix(), strings.TrimPrefix(s.opts.TeamID, "T"), s.newIDLocked("tr"))
	if s.triggers == nil {
		s.triggers = map[string]*trigger{}
	}
	s.triggers[id] = &trigger{issued: time.Now(), user: user}
	return id
}

// userObject is a user as interaction payloads carry it.
func (s *Server) userObject(id string) map[string]any {
	name := strings.ToLower(id)
	return map[string]any{"id": id, "username": name, "name": name, "team_id": s.opts.TeamID}
}

func (s *Server) teamObject() map[string]any {
	return map[string]any{"id": s.opts.TeamID, "domain": "fake"}
}

// responseURLLocked hands out a response_url for channel; s.mu must be held.
func (s *Server) responseURLLocked(channel string) string {
	id := s.newIDLocked("R")
	s.respURLs[id] = channel
	return s.srv.URL + "/commands/" + id
}

// interactive records an interactive envelope for delivery; s.mu must be
// held.
func (s *Server) interactiveLocked(payload map[string]any) string {
	id := s.newEnvelopeID()
	s.sent[id] = &sentEnvelope{sent: map[int]time.Time{}, env: map[string]any{
		"envelope_id": id, "type": "interactive", "payload": payload, "accepts_response_payload": false,
	}}
	s.notifyLocked()
	return id
}

// SendBlockAction delivers a block_actions envelope for a click on a
// button of one of the bot's messages, as Slack does. The button must be
// in the message as it is now.
func (s *Server) SendBlockAction(ctx context.Context, a BlockAction) (Sent, error) {
	s.mu.Lock()
	m, ok := s.byKey[a.ChannelID+"/"+a.MessageTS]
	if !ok {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: block action on %s/%s: no such message", a.ChannelID, a.MessageTS)
	}
	btn, blockID, found := findButton(m.Blocks, a.ActionID, a.Value)
	if !found {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: block action: no button %s=%q in message %s", a.ActionID, a.Value, a.MessageTS)
	}
	trig := s.newTriggerLocked(a.UserID)
	container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false}
	msg := map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "user": m.User, "team": s.opts.TeamID}
	if m.User == s.opts.BotUserID {
		msg["bot_id"] = "B0SIFT"
		msg["app_id"] = s.opts.AppID
	}
	if len(m.Blocks) > 0 {
		msg["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
		msg["thread_ts"] = m.ThreadTS
	}
	action := map[string]any{
		"type": "button", "action_id": a.ActionID, "block_id": blockID, "value": a.Value,
		"text": btn["text"], "action_ts": formatTS(time.Now().UnixMicro()),
	}
	if st, ok := btn["style"]; ok {
		action["style"] = st
	}
	payload := map[string]any{
		"type": "block_actions", "user": s.userObject(a.UserID), "api_app_id": s.opts.AppID,
		"token": "fakeslackverificationtoken", "container": container, "trigger_id": trig,
		"team": s.teamObject(), "enterprise": nil, "is_enterprise_install": false,
		"channel": map[string]any{"id": a.ChannelID, "name": "incident"},
		"message": msg, "state": map[string]any{"values": map[string]any{}},
		"response_url": s.responseURLLocked(a.ChannelID),
		"actions":      []any{action},
	}
	id := s.interactiveLocked(payload)
	s.mu.Unlock()
	return Sent{EnvelopeID: id, TriggerID: trig}, s.deliver(ctx, id)
}

// findButton finds the button with actionID and value in a message's
// blocks, and the id of its actions block.
func findButton(blocks json.RawMessage, actionID, value string) (map[string]any, string, bool) {
	var bs []map[string]any
	if json.Unmarshal(blocks, &bs) != nil {
		return nil, "", false
	}
	for _, b := range bs {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			el, _ := e.(map[string]any)
			if el["type"] == "button" && el["action_id"] == actionID && el["value"] == value {
				blockID, _ := b["block_id"].(string)
				return el, blockID, true
			}
		}
	}
	return nil, "", false
}

// SendMessageShortcut delivers a message_action envelope: a user used the
// app's message shortcut on a message.
func (s *Server) SendMessageShortcut(ctx context.Context, sc MessageShortcut) (Sent, error) {
	s.mu.Lock()
	m, ok := s.byKey[sc.ChannelID+"/"+sc.MessageTS]
	if !ok {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: shortcut on %s/%s: no such message", sc.ChannelID, sc.MessageTS)
	}
	trig := s.newTriggerLocked(sc.UserID)
	msg := map[string]any{"type": "message", "user": m.User, "ts": m.TS, "text": m.Text, "team": s.opts.TeamID}
	if m.ThreadTS != "" {
		msg["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		msg["blocks"] = m.Blocks
	}
	payload := map[string]any{
		"type": "message_action", "token": "fakeslackverificationtoken",
		"action_ts": formatTS(time.Now().UnixMicro()), "team": s.teamObject(),
		"user": s.userObject(sc.UserID), "channel": map[string]any{"id": sc.ChannelID, "name": "incident"},
		"is_enterprise_install": false, "enterprise": nil, "callback_id": sc.CallbackID,
		"trigger_id": trig, "response_url": s.responseURLLocked(sc.ChannelID),
		"message_ts": m.TS, "message": msg,
	}
	id := s.interactiveLocked(payload)
	s.mu.Unlock()
	return Sent{EnvelopeID: id, TriggerID: trig}, s.deliver(ctx, id)
}

// viewsOpen answers views.open: a JSON body with a trigger_id and a modal
// view, checked as Slack checks them.
func (s *Server) viewsOpen(body json.RawMessage) map[string]any {
	var req struct {
		TriggerID string          `json:"trigger_id"`
		View      json.RawMessage `json:"view"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.TriggerID == "" || len(req.View) == 0 {
		return errAnswer("invalid_arguments")
	}
	var v map[string]any
	if err := json.Unmarshal(req.View, &v); err != nil {
		return errAnswer("invalid_arguments")
	}
	if problems := checkView(v); len(problems) > 0 {
		return map[string]any{"ok": false, "error": "invalid_arguments", "response_metadata": map[string]any{"messages": problems}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.triggers[req.TriggerID]
	switch {
	case !ok:
		return errAnswer("invalid_trigger_id")
	case t.used:
		return errAnswer("exchanged_trigger_id")
	case s.opts.TriggerTTL > 0 && time.Since(t.issued) > s.opts.TriggerTTL:
		return errAnswer("expired_trigger_id")
	}
	t.used = true
	id := s.newIDLocked("V")
	v["id"] = id
	v["team_id"] = s.opts.TeamID
	v["app_id"] = s.opts.AppID
	v["bot_id"] = "B0SIFT"
	v["hash"] = fmt.Sprintf("%d.%s", time.Now().Unix(), id)
	v["root_view_id"] = id
	v["previous_view_id"] = nil
	v["state"] = map[string]any{"values": map[string]any{}}
	for _, k := range []string{"private_metadata", "callback_id", "external_id"} {
		if _, ok := v[k]; !ok {
			v[k] = ""
		}
	}
	if s.views == nil {
		s.views = map[string]*openView{}
	}
	s.views[id] = &openView{View: View{ID: id, TriggerID: req.TriggerID, View: req.View, Open: true}, user: t.user, parsed: v}
	s.viewOrder = append(s.viewOrder, id)
	s.notifyLocked()
	return map[string]any{"ok": true, "view": v}
}

// checkView lists what Slack would reject in a modal view.
func checkView(v map[string]any) []string {
	var problems []string
	if v["type"] != "modal" {
		problems = append(problems, "[ERROR] must be 'modal' [json-pointer:/view/type]")
	}
	textLen := func(key string) (int, bool) {
		t, ok := v[key].(map[string]any)
		if !ok {
			return 0, false
		}
		s, _ := t["text"].(string)
		return utf8.RuneCountInString(s), t["type"] == "plain_text"
	}
	if n, ok := textLen("title"); !ok || n == 0 || n > maxViewTitle {
		problems = append(problems, fmt.Sprintf("[ERROR] must be plain_text of 1..%d characters [json-pointer:/view/title]", maxViewTitle))
	}
	for _, k := range []string{"submit", "close"} {
		if _, present := v[k]; !present {
			continue
		}
		if n, ok := textLen(k); !ok || n == 0 || n > maxViewTitle {
			problems = append(problems, fmt.Sprintf("[ERROR] must be plain_text of 1..%d characters [json-pointer:/view/%s]", maxViewTitle, k))
		}
	}
	blocks, _ := v["blocks"].([]any)
	if len(blocks) == 0 || len(blocks) > maxViewBlocks {
		problems = append(problems, fmt.Sprintf("[ERROR] must have 1..%d blocks [json-pointer:/view/blocks]", maxViewBlocks))
	}
	ids := map[string]bool{}
	inputs := false
	for i, b := range blocks {
		bm, _ := b.(map[string]any)
		if id, _ := bm["block_id"].(string); id != "" {
			if ids[id] {
				problems = append(problems, fmt.Sprintf("[ERROR] duplicate block_id [json-pointer:/view/blocks/%d/block_id]", i))
			}
			ids[id] = true
		}
		if bm["type"] == "input" {
			inputs = true
			if _, ok := bm["element"].(map[string]any); !ok {
				problems = append(problems, fmt.Sprintf("[ERROR] input without element [json-pointer:/view/blocks/%d]", i))
			}
			if _, ok := bm["label"].(map[string]any); !ok {
				problems = append(problems, fmt.Sprintf("[ERROR] input without label [json-pointer:/view/blocks/%d]", i))
			}
		}
	}
	if _, ok := v["submit"]; inputs && !ok {
		problems = append(problems, "[ERROR] a view with input blocks must have submit [json-pointer:/view/submit]")
	}
	if md, _ := v["private_metadata"].(string); utf8.RuneCountInString(md) > maxViewMetadata {
		problems = append(problems, "[ERROR] must be at most 3000 characters [json-pointer:/view/private_metadata]")
	}
	if cb, _ := v["callback_id"].(string); len(cb) > maxCallbackID {
		problems = append(problems, "[ERROR] must be at most 255 characters [json-pointer:/view/callback_id]")
	}
	return problems
}

// Views returns the modals opened so far, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.viewOrder))
	for _, id := range s.viewOrder {
		out = append(out, s.views[id].View)
	}
	return out
}

// viewElement finds the element of an input (or section accessory) of a
// view by block and action id.
func viewElement(v map[string]any, blockID, actionID string) (map[string]any, bool) {
	blocks, _ := v["blocks"].([]any)
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		if bm["block_id"] != blockID {
			continue
		}
		for _, k := range []string{"element", "accessory"} {
			if el, ok := bm[k].(map[string]any); ok && el["action_id"] == actionID {
				return el, true
			}
		}
	}
	return nil, false
}

// SubmitView delivers a view_submission envelope for an open modal. The
// values must name inputs of the view. The modal closes when the bot
// acknowledges without response_action "errors".
func (s *Server) SubmitView(ctx context.Context, sub ViewSubmission) (Sent, error) {
	s.mu.Lock()
	ov, ok := s.views[sub.ViewID]
	if !ok || !ov.Open {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: submit view %s: not open", sub.ViewID)
	}
	values := map[string]any{}
	for blockID, byAction := range sub.Values {
		values[blockID] = map[string]any{}
		for actionID, val := range byAction {
			el, found := viewElement(ov.parsed, blockID, actionID)
			if !found {
				s.mu.Unlock()
				return Sent{}, fmt.Errorf("fakeslack: submit view %s: no input %s/%s", sub.ViewID, blockID, actionID)
			}
			typ, _ := el["type"].(string)
			if val.Type != "" && val.Type != typ {
				s.mu.Unlock()
				return Sent{}, fmt.Errorf("fakeslack: submit view %s: %s/%s is a %s, not a %s", sub.ViewID, blockID, actionID, typ, val.Type)
			}
			state := map[string]any{"type": typ}
			if val.Selected != "" {
				state["selected_option"] = map[string]any{
					"text":  map[string]any{"type": "plain_text", "text": val.Text, "emoji": true},
					"value": val.Selected,
				}
			} else {
				state["selected_option"] = nil
			}
			values[blockID].(map[string]any)[actionID] = state
		}
	}
	view := map[string]any{}
	for k, v := range ov.parsed {
		view[k] = v
	}
	view["state"] = map[string]any{"values": values}
	payload := map[string]any{
		"type": "view_submission", "team": s.teamObject(), "user": s.userObject(sub.UserID),
		"api_app_id": s.opts.AppID, "token": "fakeslackverificationtoken",
		"trigger_id": s.newTriggerLocked(sub.UserID), "view": view, "response_urls": []any{},
		"is_enterprise_install": false, "enterprise": nil,
	}
	id := s.interactiveLocked(payload)
	ov.submitted = id
	s.mu.Unlock()
	return Sent{EnvelopeID: id}, s.deliver(ctx, id)
}

// SendBlockSuggestion delivers a block_suggestion envelope: the user typed
// in an external_select of an open modal. The bot answers with the
// options in its acknowledgement's payload.
func (s *Server) SendBlockSuggestion(ctx context.Context, bs BlockSuggestion) (Sent, error) {
	s.mu.Lock()
	ov, ok := s.views[bs.ViewID]
	if !ok || !ov.Open {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: suggestion in view %s: not open", bs.ViewID)
	}
	el, found := viewElement(ov.parsed, bs.BlockID, bs.ActionID)
	if !found || el["type"] != "external_select" {
		s.mu.Unlock()
		return Sent{}, fmt.Errorf("fakeslack: suggestion: %s/%s is not an external_select of view %s", bs.BlockID, bs.ActionID, bs.ViewID)
	}
	payload := map[string]any{
		"type": "block_suggestion", "user": s.userObject(bs.UserID),
		"container":  map[string]any{"type": "view", "view_id": bs.ViewID},
		"api_app_id": s.opts.AppID, "token": "fakeslackverificationtoken",
		"action_id": bs.ActionID, "block_id": bs.BlockID, "value": bs.Value,
		"team": s.teamObject(), "enterprise": nil, "is_enterprise_install": false,
		"view": ov.parsed,
	}
	id := s.interactiveLocked(payload)
	s.mu.Unlock()
	return Sent{EnvelopeID: id}, s.deliver(ctx, id)
}

// closeSubmittedLocked closes the view whose submission envelope was
// acknowledged, unless the acknowledgement kept it open; s.mu must be held.
func (s *Server) closeSubmittedLocked(envelopeID string, payload json.RawMessage) {
	for _, ov := range s.views {
		if ov.submitted != envelopeID {
			continue
		}
		ov.submitted = ""
		var resp struct {
			ResponseAction string `json:"response_action"`
		}
		_ = json.Unmarshal(payload, &resp)
		if resp.ResponseAction != "errors" {
			ov.Open = false
		}
	}
}
