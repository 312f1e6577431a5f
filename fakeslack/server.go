// Package fakeslack is a fake Slack for end-to-end tests of a socket-mode
// bot: the Web API methods Sift calls and a socket-mode WebSocket endpoint,
// both served on 127.0.0.1, answering the way Slack and slack-go v0.35.0
// behave on the wire.
//
// Point slack-go at it with slack.OptionAPIURL(s.APIURL()). The fake hands
// out single-use socket URLs from apps.connections.open, says hello, pings
// every few seconds (slack-go only answers pings and drops a connection
// that gets none), and records every Web API call with its body and every
// acknowledgement with its latency, in one order. Tests script Slack's side:
// send a slash command or a mention, redeliver an envelope, drop the
// socket, ask for a reconnect, answer the next call of a method with 429.
//
// It checks what it can check cheaply and what Slack rejects: tokens,
// message size limits, thread and message timestamps, that an uploaded file
// was uploaded before it is completed.
package fakeslack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultPingInterval = 2 * time.Second
	DefaultTeamID       = "T0FAKE"
	DefaultBotUserID    = "U0SIFTBOT"
	DefaultAppID        = "A0SIFT"
)

// Options shape the fake workspace. The zero value is a workspace that
// accepts any well-formed token, where the bot is in every channel and no
// user can be found by email.
type Options struct {
	// AppToken and BotToken, when set, are the only tokens accepted;
	// otherwise any token with the right prefix (xapp-, xoxb-) is.
	AppToken, BotToken string
	// PingInterval is how often every socket is pinged; 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// Users maps an email address to a user id, for users.lookupByEmail.
	Users map[string]string
	// Usergroups maps a user group id (S…) to its members' user ids.
	Usergroups map[string][]string
	// Channels, when set, are the channels the bot is a member of; posting
	// anywhere else answers not_in_channel.
	Channels []string
	// MissingScopes are OAuth scopes the bot token lacks (users:read.email,
	// usergroups:read, channels:history, ...); the methods that need one
	// answer missing_scope.
	MissingScopes []string
	// TeamID, BotUserID and AppID name the workspace, the bot user and the
	// app; empty means the defaults.
	TeamID, BotUserID, AppID string
	// TriggerTTL, when set, is how long a trigger id opens a view (Slack:
	// 3 s); 0 keeps them valid, once, for ever, so that a loaded test
	// machine does not fail a test on time.
	TriggerTTL time.Duration
}

// Call is one Web API request the fake received.
type Call struct {
	// Seq orders calls and acknowledgements together.
	Seq int
	// Method is the Web API method (chat.postMessage, ...), "upload" for
	// the bytes sent to an upload URL, or "response_url".
	Method string
	// Form is the form body without its token; JSON the body of a JSON
	// call. Upload calls have neither: see Files.
	Form url.Values
	JSON json.RawMessage
	// Token is the token the call carried, from the form or the
	// Authorization header.
	Token string
	// Status and Error are the fake's answer: the HTTP status and, for
	// ok:false, the error code.
	Status int
	Error  string
	At     time.Time
}

// Message is a message of a channel: one the bot posted, or one a test
// user posted by mentioning the bot.
type Message struct {
	Seq      int
	Channel  string
	TS       string
	ThreadTS string
	User     string
	Text     string
	Blocks   json.RawMessage
	// Updates counts the chat.update calls that changed the message.
	Updates int
}

// Ephemeral is a message only one user saw.
type Ephemeral struct {
	Seq int
	// TS is the message_ts Slack answered; an ephemeral message is in no
	// channel's history.
	TS       string
	Channel  string
	User     string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
}

// File is a file shared by files.completeUploadExternal.
type File struct {
	Seq int
	// TS is when the file was shared.
	TS       string
	ID       string
	Name     string
	Title    string
	Channel  string
	ThreadTS string
	Content  []byte
}

// Response is a message posted to a slash command's response_url.
type Response struct {
	Seq          int
	ChannelID    string
	ResponseType string
	Text         string
	ThreadTS     string
}

// Server is a running fake Slack.
type Server struct {
	opts Options
	srv  *httptest.Server
	api  string

	mu sync.Mutex
	// changed is closed and replaced on every change, for Wait.
	changed  chan struct{}
	seq      int
	lastTS   int64 // microseconds of the last timestamp handed out
	idCount  int
	calls    []Call
	faults   []fault
	messages []*Message
	byKey    map[string]*Message // channel + "/" + ts
	ephem    []Ephemeral
	files    []File
	uploads  map[string]*upload // file id → pending upload
	resps    []Response
	respURLs map[string]string // response_url id → channel
	tickets  map[string]bool   // unused socket tickets
	opened   int               // sockets opened
	pongs    int
	conns    []*wsConn
	sent     map[string]*sentEnvelope // envelope id → envelope
	acks     []Ack
	triggers map[string]*trigger
	views    map[string]*openView
	// viewOrder lists view ids in the order they were opened.
	viewOrder []string
	closed    bool
	sockets   sync.WaitGroup
}

type fault struct {
	method     string
	match      func(url.Values) bool
	status     int
	retryAfter time.Duration
	code       string
}

type upload struct {
	name    string
	length  int
	content []byte
	done    bool
}

// New starts a fake Slack on 127.0.0.1 on a free port.
func New(o Options) *Server {
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.TeamID == "" {
		o.TeamID = DefaultTeamID
	}
	if o.BotUserID == "" {
		o.BotUserID = DefaultBotUserID
	}
	if o.AppID == "" {
		o.AppID = DefaultAppID
	}
	s := &Server{
		opts:     o,
		changed:  make(chan struct{}),
		byKey:    map[string]*Message{},
		uploads:  map[string]*upload{},
		respURLs: map[string]string{},
		tickets:  map[string]bool{},
		sent:     map[string]*sentEnvelope{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{method}", s.serveAPI)
	mux.HandleFunc("POST /upload/v1/{id}", s.serveUpload)
	mux.HandleFunc("POST /commands/{id}", s.serveResponseURL)
	mux.HandleFunc("GET /link/{ticket}", s.serveSocket)
	s.srv = httptest.NewServer(mux)
	s.api = s.srv.URL + "/api/"
	return s
}

// APIURL is the Web API base URL to give slack.OptionAPIURL, ending in "/".
func (s *Server) APIURL() string { return s.api }

// Close closes every socket and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := slices.Clone(s.conns)
	s.conns = nil
	s.notifyLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.sockets.Wait()
	s.srv.Close()
}

// Wait blocks until cond holds or ctx ends. cond is evaluated again after
// every change the fake sees (a call, an ack, a connection); it may call
// the Server's accessors.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeslack: waiting: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes every Wait; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextSeqLocked returns the next number of the shared order; s.mu must be held.
func (s *Server) nextSeqLocked() int {
	s.seq++
	return s.seq
}

// newTSLocked returns a fresh message timestamp: the time of posting to
// the microsecond, as in Slack, so that conversations.history's oldest and
// latest select what they would in Slack. Two messages in one microsecond
// get the next free one, which keeps timestamps unique and in posting
// order. s.mu must be held.
func (s *Server) newTSLocked() string {
	s.lastTS = max(time.Now().UnixMicro(), s.lastTS+1)
	return formatTS(s.lastTS)
}

// newIDLocked returns a fresh id with prefix; s.mu must be held.
func (s *Server) newIDLocked(prefix string) string {
	s.idCount++
	return fmt.Sprintf("%s%08X", prefix, s.idCount)
}

// RateLimitNext makes the next call of method answer HTTP 429 with
// Retry-After, in whole seconds as Slack sends it (rounded up).
func (s *Server) RateLimitNext(method string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// FailNext makes the next call of method answer {"ok":false,"error":code}.
func (s *Server) FailNext(method, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, status: http.StatusOK, code: code})
}

// FailNextMatching makes the next call of method whose form satisfies
// match answer {"ok":false,"error":code}, e.g. only a reply in a thread.
func (s *Server) FailNextMatching(method, code string, match func(form url.Values) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, status: http.StatusOK, code: code, match: match})
}

// Calls returns every Web API call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls of one method, in order.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the messages of a channel, top-level and replies, in
// the order they were posted.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

// Message returns the message of channel at ts.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[channel+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Thread returns the replies in the thread of channel rooted at ts, in order.
func (s *Server) Thread(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel && m.ThreadTS == ts && m.TS != ts {
			out = append(out, *m)
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages posted so far.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ephem)
}

// Files returns the files shared so far.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.files)
}

// Responses returns the messages posted to response_urls.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resps)
}

// record appends a call and wakes waiters.
func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Seq = s.nextSeqLocked()
	c.At = time.Now()
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

// takeFault pops the first fault queued for a call of method with form.
func (s *Server) takeFault(method string, form url.Values) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.method == method && (f.match == nil || f.match(form)) {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

// answer writes a Web API answer.
func answer(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveAPI is every Web API method: it reads the body (form or JSON),
// checks the token, applies queued faults, then runs the method.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	call := Call{Method: method}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			call.Status, call.Error = http.StatusOK, "invalid_form_data"
			s.record(call)
			answer(w, http.StatusOK, errAnswer(call.Error))
			return
		}
		call.Token = form.Get("token")
		form.Del("token")
		call.Form = form
	} else if len(body) > 0 {
		call.JSON = json.RawMessage(body)
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && call.Token == "" {
		call.Token = tok
	}

	if f, ok := s.takeFault(method, call.Form); ok {
		call.Status = f.status
		if f.status == http.StatusTooManyRequests {
			secs := int((f.retryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			call.Error = "ratelimited"
		} else {
			call.Error = f.code
		}
		s.record(call)
		answer(w, f.status, errAnswer(call.Error))
		return
	}
	if code := s.checkToken(method, call.Token); code != "" {
		call.Status, call.Error = http.StatusOK, code
		s.record(call)
		answer(w, http.StatusOK, errAnswer(code))
		return
	}
	var res map[string]any
	if method == "views.open" {
		// A JSON method: slack-go posts the view as a JSON body.
		res = s.viewsOpen(call.JSON)
	} else {
		res = s.method(method, call.Form)
	}
	call.Status = http.StatusOK
	if ok, _ := res["ok"].(bool); !ok {
		call.Error, _ = res["error"].(string)
	}
	s.record(call)
	answer(w, http.StatusOK, res)
}

// checkToken returns the error code Slack answers for a call with this
// token, or "" when the token is good for method.
func (s *Server) checkToken(method, token string) string {
	want, prefix := s.opts.BotToken, "xoxb-"
	if method == "apps.connections.open" {
		want, prefix = s.opts.AppToken, "xapp-"
	}
	switch {
	case token == "":
		return "not_authed"
	case want != "" && token != want, want == "" && !strings.HasPrefix(token, prefix):
		return "invalid_auth"
	}
	return ""
}

func errAnswer(code string) map[string]any {
	return map[string]any{"ok": false, "error": code}
}

// serveUpload receives the bytes of a file, multipart as slack-go sends them.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	call := Call{Method: "upload", Form: url.Values{"file_id": {id}}}
	call.Token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var content []byte
	f, _, err := r.FormFile("file")
	if err == nil {
		content, err = io.ReadAll(f)
		_ = f.Close()
	}
	s.mu.Lock()
	u, known := s.uploads[id]
	if known && err == nil {
		u.content = content
		u.done = true
	}
	s.mu.Unlock()
	switch {
	case !known:
		call.Status = http.StatusNotFound
	case err != nil:
		call.Status = http.StatusBadRequest
	default:
		call.Status = http.StatusOK
	}
	s.record(call)
	w.WriteHeader(call.Status)
	if call.Status == http.StatusOK {
		_, _ = fmt.Fprintf(w, "OK - %d", len(content))
	}
}

// serveResponseURL receives a message posted to a slash command's
// response_url: JSON, no token.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call := Call{Method: "response_url", JSON: json.RawMessage(body), Status: http.StatusOK}
	var msg struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
		ThreadTS     string `json:"thread_ts"`
	}
	s.mu.Lock()
	channel, known := s.respURLs[r.PathValue("id")]
	s.mu.Unlock()
	if err := json.Unmarshal(body, &msg); err != nil || !known {
		call.Status = http.StatusNotFound
		s.record(call)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.record(call)
	s.mu.Lock()
	s.resps = append(s.resps, Response{Seq: s.nextSeqLocked(), ChannelID: channel, ResponseType: msg.ResponseType, Text: msg.Text, ThreadTS: msg.ThreadTS})
	s.notifyLocked()
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}
