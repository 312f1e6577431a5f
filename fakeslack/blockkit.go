package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// BlockKitState is the fake's final state in the shape Block Kit viewers
// read: every message after its last chat.update, ephemeral messages and
// shared files, in posting order.
type BlockKitState struct {
	Messages []BlockKitMessage          `json:"messages"`
	Users    map[string]BlockKitUser    `json:"users"`
	Files    []BlockKitFile             `json:"files"`
	Bot      map[string]string          `json:"bot"`
	Channels map[string]BlockKitChannel `json:"channels,omitempty"`
	Rejected []BlockKitRejected         `json:"rejected_calls"`
}

// BlockKitMessage is one message of BlockKitState.
type BlockKitMessage struct {
	Channel   string          `json:"channel"`
	TS        string          `json:"ts"`
	ThreadTS  string          `json:"thread_ts,omitempty"`
	User      string          `json:"user,omitempty"`
	Text      string          `json:"text"`
	Blocks    json.RawMessage `json:"blocks,omitempty"`
	Ephemeral bool            `json:"ephemeral,omitempty"`
	Source    string          `json:"source,omitempty"`
	FileID    string          `json:"file_id,omitempty"`
	seq       int
}

// BlockKitUser names a user.
type BlockKitUser struct {
	Name     string `json:"name"`
	RealName string `json:"real_name"`
}

// BlockKitChannel names a channel.
type BlockKitChannel struct {
	Name string `json:"name"`
}

// BlockKitFile is a shared file.
type BlockKitFile struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Filename string `json:"filename"`
	Length   int    `json:"length"`
}

// BlockKitRejected is a message call Slack refused.
type BlockKitRejected struct {
	Method string `json:"method"`
	Error  string `json:"error"`
}

// State returns the fake's final state; names maps user and channel ids to
// the names a viewer shows.
func (s *Server) State(names map[string]string) BlockKitState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := BlockKitState{
		Users: map[string]BlockKitUser{}, Channels: map[string]BlockKitChannel{},
		Bot: map[string]string{"user_id": s.opts.BotUserID, "name": "Sift"},
	}
	for _, m := range s.messages {
		src := "mention"
		if m.User == s.opts.BotUserID {
			src = "chat.postMessage"
		}
		st.Messages = append(st.Messages, BlockKitMessage{
			Channel: m.Channel, TS: m.TS, ThreadTS: m.ThreadTS, User: m.User, Text: m.Text, Blocks: m.Blocks, Source: src, seq: m.Seq,
		})
	}
	for _, e := range s.ephem {
		st.Messages = append(st.Messages, BlockKitMessage{
			Channel: e.Channel, TS: e.TS, ThreadTS: e.ThreadTS, User: e.User, Text: e.Text, Blocks: e.Blocks,
			Ephemeral: true, Source: "chat.postEphemeral", seq: e.Seq,
		})
	}
	for _, f := range s.files {
		st.Messages = append(st.Messages, BlockKitMessage{
			Channel: f.Channel, TS: f.TS, ThreadTS: f.ThreadTS, User: s.opts.BotUserID, FileID: f.ID,
			Source: "files.completeUploadExternal", seq: f.Seq,
		})
		st.Files = append(st.Files, BlockKitFile{ID: f.ID, Title: f.Title, Filename: f.Name, Length: len(f.Content)})
	}
	slices.SortFunc(st.Messages, func(a, b BlockKitMessage) int { return a.seq - b.seq })
	for _, c := range s.calls {
		if c.Error != "" && (c.Method == "chat.postMessage" || c.Method == "chat.update") {
			st.Rejected = append(st.Rejected, BlockKitRejected{Method: c.Method, Error: c.Error})
		}
	}
	for email, id := range s.opts.Users {
		st.Users[id] = BlockKitUser{Name: email, RealName: email}
	}
	for id, name := range names {
		if len(id) > 0 && (id[0] == 'C' || id[0] == 'G') {
			st.Channels[id] = BlockKitChannel{Name: name}
		} else {
			st.Users[id] = BlockKitUser{Name: name, RealName: name}
		}
	}
	return st
}

// WriteState writes State(names) as JSON to w.
func (s *Server) WriteState(w io.Writer, names map[string]string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(s.State(names)); err != nil {
		return fmt.Errorf("fakeslack: state: %w", err)
	}
	return nil
}
