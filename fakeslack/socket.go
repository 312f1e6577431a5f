package fakeslack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrClosed is returned by the senders once the fake is closed.
var ErrClosed = errors.New("fakeslack: closed")

// Ack is the bot's acknowledgement of one delivery of an envelope.
type Ack struct {
	// Seq orders acknowledgements and calls together.
	Seq        int
	EnvelopeID string
	// RetryAttempt is the delivery acknowledged: 0 the first, 1 the
	// first redelivery.
	RetryAttempt int
	Payload      json.RawMessage
	// Sent is when the fake started writing the envelope; Received when it
	// read the acknowledgement. Latency is the difference.
	Sent, Received time.Time
	Latency        time.Duration
}

// SlashCommand is what a user typed as a slash command.
type SlashCommand struct {
	Command   string
	Text      string
	UserID    string
	ChannelID string
}

// Mention is a message that mentions the bot. Text is what follows the
// mention ("dc ams01"); ThreadTS, when set, puts the message in that thread.
type Mention struct {
	UserID    string
	ChannelID string
	Text      string
	ThreadTS  string
}

// Sent is an envelope the fake delivered.
type Sent struct {
	EnvelopeID string
	// EventID is the event's id, for events_api envelopes.
	EventID string
	// TS is the timestamp of the mentioning message, for mentions.
	TS string
	// ResponseURL is the slash command's response_url.
	ResponseURL string
	// TriggerID is the interaction's trigger, which opens a view once.
	TriggerID string
}

// sentEnvelope is an envelope as delivered, kept for redelivery.
type sentEnvelope struct {
	env      map[string]any
	attempts int
	sent     map[int]time.Time // retry attempt → when it was written
}

// wsConn is one socket-mode connection.
type wsConn struct {
	ws     *websocket.Conn
	writeM sync.Mutex // gorilla allows one writer at a time
	done   chan struct{}
	once   sync.Once
}

func (c *wsConn) write(b []byte) error { return c.writeAt(b, nil) }

// writeAt writes b, telling at when its writing starts: envelopes queued
// behind others are timed from their own write.
func (c *wsConn) writeAt(b []byte, at func(time.Time)) error {
	c.writeM.Lock()
	defer c.writeM.Unlock()
	now := time.Now()
	if at != nil {
		at(now)
	}
	_ = c.ws.SetWriteDeadline(now.Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// close drops the TCP connection without a close frame, as a network
// failure would.
func (c *wsConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.NetConn().Close()
	})
}

// openConnection answers apps.connections.open with a single-use socket URL.
func (s *Server) openConnection() map[string]any {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	ticket := hex.EncodeToString(b)
	s.mu.Lock()
	s.tickets[ticket] = true
	s.mu.Unlock()
	return map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/" + ticket}
}

var upgrader = websocket.Upgrader{
	// slack-go dials with Origin: https://api.slack.com; a browser's
	// same-origin check has no meaning here.
	CheckOrigin: func(*http.Request) bool { return true },
}

// serveSocket runs one socket-mode connection: hello, pings, and reading
// the bot's acknowledgements until the connection ends.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.PathValue("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	if valid {
		// Close waits for the socket's handler: a hijacked connection is
		// no longer the HTTP server's to wait for.
		s.sockets.Add(1)
	}
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	defer s.sockets.Done()
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}
	defer c.close()
	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pongs++
		s.notifyLocked()
		return nil
	})

	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "fakeslack", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	})
	// The connection is listed before the client can see hello, and
	// nothing is written on it before hello: envelopes wait for writeM.
	c.writeM.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.writeM.Unlock()
		return
	}
	s.opened++
	s.conns = append(s.conns, c)
	s.notifyLocked()
	s.mu.Unlock()
	defer s.forget(c)
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = ws.WriteMessage(websocket.TextMessage, hello)
	c.writeM.Unlock()
	if err != nil {
		return
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.ping(c) })
	defer c.close() // ends the pinger before wg.Wait
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		s.receive(data)
	}
}

// ping pings the connection every PingInterval until it ends.
func (s *Server) ping(c *wsConn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
				return
			}
		}
	}
}

// forget removes a connection that ended.
func (s *Server) forget(c *wsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.conns, c); i >= 0 {
		s.conns = slices.Delete(s.conns, i, i+1)
		s.notifyLocked()
	}
}

// receive records an acknowledgement.
func (s *Server) receive(data []byte) {
	now := time.Now()
	var ack struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &ack); err != nil || ack.EnvelopeID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := Ack{Seq: s.nextSeqLocked(), EnvelopeID: ack.EnvelopeID, Payload: ack.Payload, Received: now}
	if env, ok := s.sent[ack.EnvelopeID]; ok {
		a.RetryAttempt = env.attempts - 1
		a.Sent = env.sent[a.RetryAttempt]
		a.Latency = now.Sub(a.Sent)
	}
	s.acks = append(s.acks, a)
	s.closeSubmittedLocked(ack.EnvelopeID, ack.Payload)
	s.notifyLocked()
}

// Acks returns every acknowledgement so far, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// AcksOf returns the acknowledgements of one envelope.
func (s *Server) AcksOf(envelopeID string) []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ack
	for _, a := range s.acks {
		if a.EnvelopeID == envelopeID {
			out = append(out, a)
		}
	}
	return out
}

// WaitAck waits for the acknowledgement of the latest delivery of an
// envelope.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var got Ack
	err := s.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		env, ok := s.sent[envelopeID]
		if !ok {
			return false
		}
		for _, a := range s.acks {
			if a.EnvelopeID == envelopeID && a.RetryAttempt == env.attempts-1 {
				got = a
				return true
			}
		}
		return false
	})
	return got, err
}

// Connections returns how many sockets were opened so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Pongs returns how many pongs answered the fake's pings.
func (s *Server) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// Connected returns how many sockets are open now.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DropConnections drops every open socket without a close frame, as a
// network failure does, and returns how many it dropped.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.conns = nil
	s.notifyLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return len(conns)
}

// SendDisconnect sends a disconnect envelope on every open socket, as Slack
// does before it refreshes a connection; slack-go then reconnects. The fake
// stops delivering to those sockets at once.
func (s *Server) SendDisconnect(ctx context.Context, reason string) error {
	if err := s.waitConnected(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.conns = nil
	s.notifyLocked()
	s.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "fakeslack"},
	})
	var errs []error
	for _, c := range conns {
		errs = append(errs, c.write(msg))
	}
	return errors.Join(errs...)
}

// waitConnected waits for an open socket.
func (s *Server) waitConnected(ctx context.Context) error {
	return s.Wait(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) > 0 || s.closed
	})
}

// deliver writes an envelope on the newest open socket, waiting for one.
func (s *Server) deliver(ctx context.Context, id string) error {
	for {
		if err := s.waitConnected(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		c := s.conns[len(s.conns)-1]
		env := s.sent[id]
		env.env["retry_attempt"] = env.attempts
		if env.attempts > 0 {
			env.env["retry_reason"] = "timeout"
		}
		b, err := json.Marshal(env.env)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("fakeslack: envelope: %w", err)
		}
		attempt := env.attempts
		env.attempts++
		s.mu.Unlock()
		stamp := func(t time.Time) {
			s.mu.Lock()
			env.sent[attempt] = t
			s.mu.Unlock()
		}
		if err := c.writeAt(b, stamp); err != nil {
			// The socket died under us: Slack delivers on another one.
			s.mu.Lock()
			env.attempts--
			delete(env.sent, attempt)
			s.mu.Unlock()
			s.forget(c)
			c.close()
			continue
		}
		return nil
	}
}

func (s *Server) newEnvelopeID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// SendSlashCommand delivers a slash command on the newest socket, waiting
// for one, as Slack does when a user runs it.
func (s *Server) SendSlashCommand(ctx context.Context, cmd SlashCommand) (Sent, error) {
	id := s.newEnvelopeID()
	s.mu.Lock()
	respID := s.newIDLocked("R")
	s.respURLs[respID] = cmd.ChannelID
	responseURL := s.srv.URL + "/commands/" + respID
	trigger := s.newTriggerLocked(cmd.UserID)
	s.sent[id] = &sentEnvelope{sent: map[int]time.Time{}, env: map[string]any{
		"envelope_id": id,
		"type":        "slash_commands",
		"payload": map[string]any{
			// The legacy verification token, not a credential of the app's.
			"token":   "fakeslackverificationtoken",
			"team_id": s.opts.TeamID, "team_domain": "fake",
			"channel_id": cmd.ChannelID, "channel_name": "incident",
			"user_id": cmd.UserID, "user_name": strings.ToLower(cmd.UserID),
			"command": cmd.Command, "text": cmd.Text,
			"api_app_id": s.opts.AppID, "is_enterprise_install": "false",
			"response_url": responseURL, "trigger_id": trigger,
		},
		"accepts_response_payload": true,
	}}
	s.mu.Unlock()
	return Sent{EnvelopeID: id, ResponseURL: responseURL, TriggerID: trigger}, s.deliver(ctx, id)
}

// Post posts a user's message that does not mention the bot, such as the
// root of an incident thread, and returns its ts.
func (s *Server) Post(channel, user, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Seq: s.nextSeqLocked(), Channel: channel, TS: s.newTSLocked(), User: user, Text: text}
	s.messages = append(s.messages, m)
	s.byKey[channel+"/"+m.TS] = m
	s.notifyLocked()
	return m.TS
}

// PostInThread posts a user's reply in the thread of channel rooted at
// threadTS (a reply to a reply goes to the root, as in Slack) and returns
// its ts.
func (s *Server) PostInThread(channel, threadTS, user, text string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	root, ok := s.byKey[channel+"/"+threadTS]
	if !ok {
		return "", fmt.Errorf("fakeslack: reply in thread %s of %s: no such message", threadTS, channel)
	}
	if root.ThreadTS != "" && root.ThreadTS != root.TS {
		root = s.byKey[channel+"/"+root.ThreadTS]
	}
	root.ThreadTS = root.TS
	m := &Message{Seq: s.nextSeqLocked(), Channel: channel, TS: s.newTSLocked(), ThreadTS: root.TS, User: user, Text: text}
	s.messages = append(s.messages, m)
	s.byKey[channel+"/"+m.TS] = m
	s.notifyLocked()
	return m.TS, nil
}

// SendMention posts a user's message that mentions the bot, in the channel
// or in the thread m.ThreadTS, and delivers its app_mention event.
func (s *Server) SendMention(ctx context.Context, m Mention) (Sent, error) {
	id := s.newEnvelopeID()
	s.mu.Lock()
	if m.ThreadTS != "" {
		if _, ok := s.byKey[m.ChannelID+"/"+m.ThreadTS]; !ok {
			s.mu.Unlock()
			return Sent{}, fmt.Errorf("fakeslack: mention in thread %s of %s: no such message", m.ThreadTS, m.ChannelID)
		}
	}
	ts := s.newTSLocked()
	eventID := s.newIDLocked("Ev")
	text := "<@" + s.opts.BotUserID + "> " + m.Text
	msg := &Message{Seq: s.nextSeqLocked(), Channel: m.ChannelID, TS: ts, ThreadTS: m.ThreadTS, User: m.UserID, Text: text}
	s.messages = append(s.messages, msg)
	s.byKey[m.ChannelID+"/"+ts] = msg
	if m.ThreadTS != "" {
		if root := s.byKey[m.ChannelID+"/"+m.ThreadTS]; root.ThreadTS == "" {
			root.ThreadTS = root.TS
		}
	}
	event := map[string]any{
		"type": "app_mention", "user": m.UserID, "text": text, "ts": ts,
		"channel": m.ChannelID, "event_ts": ts,
	}
	if m.ThreadTS != "" {
		event["thread_ts"] = m.ThreadTS
	}
	s.sent[id] = &sentEnvelope{sent: map[int]time.Time{}, env: map[string]any{
		"envelope_id": id,
		"type":        "events_api",
		"payload": map[string]any{
			"token": "fakeslackverificationtoken", "team_id": s.opts.TeamID, "api_app_id": s.opts.AppID,
			"event": event, "type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(),
			"authorizations": []any{map[string]any{
				"team_id": s.opts.TeamID, "user_id": s.opts.BotUserID, "is_bot": true, "is_enterprise_install": false,
			}},
			"is_ext_shared_channel": false, "event_context": "4-fake",
		},
		"accepts_response_payload": false,
	}}
	s.notifyLocked()
	s.mu.Unlock()
	return Sent{EnvelopeID: id, EventID: eventID, TS: ts}, s.deliver(ctx, id)
}

// RedeliverAs delivers an envelope's payload again under a new envelope
// id, with retry_attempt one higher, as Slack may redeliver an event; the
// event id stays. It returns the new envelope's id.
func (s *Server) RedeliverAs(ctx context.Context, envelopeID string) (string, error) {
	id := s.newEnvelopeID()
	s.mu.Lock()
	old, ok := s.sent[envelopeID]
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("fakeslack: redeliver %s: never sent", envelopeID)
	}
	env := make(map[string]any, len(old.env))
	for k, v := range old.env {
		env[k] = v
	}
	env["envelope_id"] = id
	s.sent[id] = &sentEnvelope{env: env, attempts: old.attempts, sent: map[int]time.Time{}}
	s.mu.Unlock()
	return id, s.deliver(ctx, id)
}

// Redeliver delivers an envelope again, with retry_attempt one higher and
// retry_reason "timeout", as Slack does when an acknowledgement is late.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) error {
	s.mu.Lock()
	_, ok := s.sent[envelopeID]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("fakeslack: redeliver %s: never sent", envelopeID)
	}
	return s.deliver(ctx, envelopeID)
}
