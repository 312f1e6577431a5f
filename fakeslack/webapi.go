package fakeslack

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Slack's limits on a message, as it enforces them.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxHeaderText      = 150
	maxContextElements = 10
	maxMessageText     = 40000
)

// method runs one Web API method on a form whose token was checked.
func (s *Server) method(name string, form url.Values) map[string]any {
	switch name {
	case "apps.connections.open":
		return s.openConnection()
	case "auth.test":
		return map[string]any{
			"ok": true, "url": "https://fake.slack.com/", "team": "Fake", "user": "sift",
			"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "bot_id": "B0SIFT", "is_enterprise_install": false,
		}
	case "chat.postMessage":
		return s.postMessage(form)
	case "chat.update":
		return s.update(form)
	case "chat.postEphemeral":
		return s.postEphemeral(form)
	case "conversations.history":
		return s.history(form)
	case "files.getUploadURLExternal":
		return s.getUploadURL(form)
	case "files.completeUploadExternal":
		return s.completeUpload(form)
	case "users.lookupByEmail":
		if r := s.needScope("users:read.email"); r != nil {
			return r
		}
		if id, ok := s.opts.Users[form.Get("email")]; ok {
			return map[string]any{"ok": true, "user": map[string]any{"id": id, "team_id": s.opts.TeamID, "name": id,
				"profile": map[string]any{"email": form.Get("email")}}}
		}
		return errAnswer("users_not_found")
	case "usergroups.users.list":
		if r := s.needScope("usergroups:read"); r != nil {
			return r
		}
		members, ok := s.opts.Usergroups[form.Get("usergroup")]
		if !ok {
			return errAnswer("no_such_subteam")
		}
		return map[string]any{"ok": true, "users": append([]string{}, members...)}
	}
	return errAnswer("unknown_method")
}

func (s *Server) needScope(scope string) map[string]any {
	if !slices.Contains(s.opts.MissingScopes, scope) {
		return nil
	}
	return map[string]any{"ok": false, "error": "missing_scope", "needed": scope, "provided": "chat:write,commands,app_mentions:read"}
}

// member checks that the bot may post in channel.
func (s *Server) member(channel string) string {
	switch {
	case channel == "":
		return "channel_not_found"
	case len(s.opts.Channels) > 0 && !slices.Contains(s.opts.Channels, channel):
		return "not_in_channel"
	}
	return ""
}

// checkContent applies Slack's limits to a message's text and blocks.
func checkContent(text, blocks string) string {
	if text == "" && blocks == "" {
		return "no_text"
	}
	if utf8.RuneCountInString(text) > maxMessageText {
		return "msg_too_long"
	}
	if blocks == "" {
		return ""
	}
	var bs []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []json.RawMessage `json:"elements"`
	}
	if err := json.Unmarshal([]byte(blocks), &bs); err != nil || len(bs) > maxBlocks {
		return "invalid_blocks"
	}
	for _, b := range bs {
		n := 0
		if b.Text != nil {
			n = utf8.RuneCountInString(b.Text.Text)
		}
		switch {
		case b.Type == "section" && (b.Text == nil || n == 0 || n > maxSectionText),
			b.Type == "header" && (n == 0 || n > maxHeaderText),
			b.Type == "context" && (len(b.Elements) == 0 || len(b.Elements) > maxContextElements):
			return "invalid_blocks"
		}
	}
	return ""
}

func (s *Server) postMessage(form url.Values) map[string]any {
	channel, threadTS := form.Get("channel"), form.Get("thread_ts")
	if code := s.member(channel); code != "" {
		return errAnswer(code)
	}
	if code := checkContent(form.Get("text"), form.Get("blocks")); code != "" {
		return errAnswer(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if threadTS != "" {
		root, ok := s.byKey[channel+"/"+threadTS]
		if !ok {
			return errAnswer("thread_not_found")
		}
		if root.ThreadTS != "" && root.ThreadTS != root.TS {
			// A reply to a reply goes to the thread's root, as in Slack.
			threadTS = root.ThreadTS
		}
	}
	m := &Message{
		Seq: s.nextSeqLocked(), Channel: channel, TS: s.newTSLocked(), ThreadTS: threadTS,
		User: s.opts.BotUserID, Text: form.Get("text"), Blocks: rawOrNil(form.Get("blocks")),
	}
	s.messages = append(s.messages, m)
	s.byKey[channel+"/"+m.TS] = m
	if threadTS != "" {
		if root := s.byKey[channel+"/"+threadTS]; root.ThreadTS == "" {
			root.ThreadTS = threadTS
		}
	}
	s.notifyLocked()
	msg := map[string]any{"type": "message", "user": m.User, "text": m.Text, "ts": m.TS, "bot_id": "B0SIFT"}
	if threadTS != "" {
		msg["thread_ts"] = threadTS
	}
	return map[string]any{"ok": true, "channel": channel, "ts": m.TS, "message": msg}
}

func (s *Server) update(form url.Values) map[string]any {
	channel, ts := form.Get("channel"), form.Get("ts")
	if code := s.member(channel); code != "" {
		return errAnswer(code)
	}
	if code := checkContent(form.Get("text"), form.Get("blocks")); code != "" {
		return errAnswer(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[channel+"/"+ts]
	switch {
	case !ok:
		return errAnswer("message_not_found")
	case m.User != s.opts.BotUserID:
		return errAnswer("cant_update_message")
	}
	m.Text = form.Get("text")
	m.Blocks = rawOrNil(form.Get("blocks"))
	m.Updates++
	s.notifyLocked()
	return map[string]any{"ok": true, "channel": channel, "ts": ts, "text": m.Text}
}

func (s *Server) postEphemeral(form url.Values) map[string]any {
	channel := form.Get("channel")
	if code := s.member(channel); code != "" {
		return errAnswer(code)
	}
	if form.Get("user") == "" {
		return errAnswer("user_not_found")
	}
	if code := checkContent(form.Get("text"), form.Get("blocks")); code != "" {
		return errAnswer(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.newTSLocked()
	s.ephem = append(s.ephem, Ephemeral{
		Seq: s.nextSeqLocked(), Channel: channel, User: form.Get("user"), ThreadTS: form.Get("thread_ts"),
		Text: form.Get("text"), Blocks: rawOrNil(form.Get("blocks")), TS: ts,
	})
	s.notifyLocked()
	return map[string]any{"ok": true, "message_ts": ts}
}

func (s *Server) getUploadURL(form url.Values) map[string]any {
	length, err := strconv.Atoi(form.Get("length"))
	if form.Get("filename") == "" || err != nil || length <= 0 {
		return errAnswer("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked("F")
	s.uploads[id] = &upload{name: form.Get("filename"), length: length}
	return map[string]any{"ok": true, "upload_url": s.srv.URL + "/upload/v1/" + id, "file_id": id}
}

func (s *Server) completeUpload(form url.Values) map[string]any {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(form.Get("files")), &files); err != nil || len(files) == 0 {
		return errAnswer("invalid_arguments")
	}
	channel, threadTS := form.Get("channel_id"), form.Get("thread_ts")
	if channel != "" {
		if code := s.member(channel); code != "" {
			return errAnswer(code)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if threadTS != "" {
		if _, ok := s.byKey[channel+"/"+threadTS]; !ok {
			return errAnswer("thread_not_found")
		}
	}
	var out []map[string]any
	for _, f := range files {
		u, ok := s.uploads[f.ID]
		if !ok || !u.done {
			return errAnswer("file_not_found")
		}
		if len(u.content) != u.length {
			return errAnswer("file_size_mismatch")
		}
		delete(s.uploads, f.ID)
		s.files = append(s.files, File{
			Seq: s.nextSeqLocked(), ID: f.ID, Name: u.name, Title: f.Title,
			Channel: channel, ThreadTS: threadTS, Content: u.content, TS: s.newTSLocked(),
		})
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	s.notifyLocked()
	return map[string]any{"ok": true, "files": out}
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
