// Package fakesalt is a fake salt-api (rest_cherrypy) that answers exactly
// like Salt 3006 does, byte for byte where the real answers were captured:
// login and tokens, the local, local_async and runner clients, GET /jobs,
// CherryPy's HTML error pages. Tests of other packages and `sift demo` use it
// to script a fleet of minions and the faults of a master.
package fakesalt

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
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

// DefaultTokenTTL is Salt's default token_expire: twelve hours.
const DefaultTokenTTL = 12 * time.Hour

// Master is one fake salt-master and its salt-api. Change it while its
// server runs only through Server.Update.
type Master struct {
	// Name is the master's name (for the demo and logs; salt-api never says it).
	Name string
	// Username, Password and Eauth are the only credentials login accepts.
	Username, Password, Eauth string
	// TokenTTL is how long a token lives; 0 means DefaultTokenTTL. An
	// expired token is answered 401 "Authentication error occurred.".
	TokenTTL time.Duration
	// DisabledClients are clients missing from netapi_enable_clients: they
	// are answered 400 "Client disabled". Clients other than local,
	// local_async and runner are always disabled.
	DisabledClients []string
	// Down makes every request answer CherryPy's 500 page.
	Down bool
	// Malformed makes POST / and GET /jobs answer 200 with broken JSON.
	Malformed bool
	// RunnerRefused is a user whose external_auth grants no runner (only
	// @jobs, as in sample 55): runner calls answer Salt's 401 page (sample
	// 56) while local, local_async and GET /jobs work.
	RunnerRefused bool
	// NoMinionDataCache is a master with minion_data_cache off: it cannot
	// tell connected minions, so manage.present lists none and
	// manage.not_present every accepted minion.
	NoMinionDataCache bool
	// RunnerDelay is how long a runner call takes: a real master starts a
	// runner process for each, 0.5 to 1 s.
	RunnerDelay time.Duration
	// TimeScale scales the timeout and gather_job_timeout of a synchronous
	// local call, for the minions that make it wait: 0 answers them false at
	// once; 0.01 turns Salt's 5 s + 10 s into 150 ms.
	TimeScale float64
	// Minions are the minions whose keys the master knows (and, with
	// NotAccepted, the ones it does not).
	Minions []*Minion
}

// Minion is one fake minion.
type Minion struct {
	ID string
	// Grains are matched by grain targets (G@datacenter:ams01).
	Grains map[string]string
	// Answer is what the minion answers to the blame call: the dict keyed by
	// the three functions (see the builders such as Healthy and FailedState),
	// or a string, or any JSON. Nil answers Healthy().
	Answer json.RawMessage
	// Delay is how long after a job starts the minion answers.
	Delay time.Duration
	// Unreachable is a minion with an accepted key, connected to the
	// master, that never answers (hung): absent from a job's results, false
	// in a synchronous call, listed by manage.present.
	Unreachable bool
	// Disconnected is a minion with an accepted key that is not connected to
	// the master (stopped, or its host down): it never answers, and
	// manage.not_present lists it.
	Disconnected bool
	// NotAccepted is a minion id with no accepted key: a list target naming it
	// answers Salt's "Minion did not return. [No response]" string, and no
	// other target matches it.
	NotAccepted bool
}

// Fault replaces the answer of one request.
type Fault struct {
	// Path is the request path the fault applies to: "/login" and "/" are
	// exact, "/jobs/" (any other path ending in a slash) is a prefix; empty
	// applies to any request.
	Path string
	// Client, when set, restricts the fault to POST / calls of that client
	// ("local", "local_async", "runner").
	Client string
	// Kind is how the answer breaks; FaultAnswer when zero.
	Kind FaultKind
	// Status and Body are the answer of a FaultAnswer; a body starting with
	// "<" is sent as HTML, anything else as JSON.
	Status int
	Body   string
}

// FaultKind is how a faulty answer breaks.
type FaultKind int

// The ways an answer breaks.
const (
	// FaultAnswer answers Status and Body instead of the real answer.
	FaultAnswer FaultKind = iota
	// FaultTruncate sends the real answer's status, headers and
	// Content-Length, then half of its body, and closes the connection.
	FaultTruncate
	// FaultReset resets the connection without answering.
	FaultReset
	// FaultStall answers nothing until the client gives up.
	FaultStall
)

// Server is a running fake salt-api.
type Server struct {
	srv *httptest.Server

	mu      sync.Mutex
	master  *Master
	tokens  map[string]time.Time // token → expiry
	jobs    map[string]*job
	lastJob time.Time
	faults  []Fault
	counts  map[string]int
	now     func() time.Time
	encoded map[encodedKey]encodedResult
	// stop ends the answers that stall, when the server closes.
	stop chan struct{}
}

// NewServer starts a fake salt-api for m on 127.0.0.1 (plain HTTP).
func NewServer(m *Master) *Server {
	s := newServer(m)
	s.srv = httptest.NewServer(s)
	return s
}

// NewTLSServer starts a fake salt-api for m over HTTPS, with a certificate
// that Certificate returns.
func NewTLSServer(m *Master) *Server {
	s := newServer(m)
	s.srv = httptest.NewTLSServer(s)
	return s
}

func newServer(m *Master) *Server {
	return &Server{master: m, tokens: map[string]time.Time{}, jobs: map[string]*job{}, counts: map[string]int{}, now: time.Now, stop: make(chan struct{}),
		encoded: map[encodedKey]encodedResult{}}
}

// UseClock makes the master read its time from now: when jobs start, when
// minions answer them, when tokens expire. A synchronous call still waits
// on the wall clock.
func (s *Server) UseClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// URL is the base URL of the fake salt-api.
func (s *Server) URL() string { return s.srv.URL }

// Certificate is the TLS server's certificate (nil for plain HTTP), to
// write a CA file from.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// Close stops the server; later requests are refused connections.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Update changes the master while the server runs.
func (s *Server) Update(change func(m *Master)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s.master)
	clear(s.encoded)
}

// FailNext makes the next request, whatever its path, answer status and body.
func (s *Server) FailNext(status int, body string) { s.Inject(Fault{Status: status, Body: body}) }

// Inject queues a fault for the next request that matches its path.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ExpireTokens expires every token issued so far, as time would.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for t := range s.tokens {
		s.tokens[t] = now
	}
}

// Requests counts every request received.
func (s *Server) Requests() int { return s.count("all") }

// Logins counts POST /login requests, refused ones included.
func (s *Server) Logins() int { return s.count("login") }

// Calls counts the POST / lowstates of one client ("local", "local_async", "runner").
func (s *Server) Calls(client string) int { return s.count("client " + client) }

// Polls counts GET /jobs/<jid> requests.
func (s *Server) Polls() int { return s.count("jobs") }

func (s *Server) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

// ServeHTTP routes salt-api's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var clients []string
	if r.URL.Path == "/" && r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequest))
		r.Body = io.NopCloser(bytes.NewReader(body))
		clients = lowstateClients(body)
	}
	s.mu.Lock()
	s.counts["all"]++
	switch {
	case r.URL.Path == "/login":
		s.counts["login"]++
	case strings.HasPrefix(r.URL.Path, "/jobs/"):
		s.counts["jobs"]++
	}
	for _, c := range clients {
		s.counts["client "+c]++
	}
	fault, faulted := s.takeFault(r.URL.Path, clients)
	down := s.master.Down
	s.mu.Unlock()

	switch {
	case faulted && fault.Kind != FaultAnswer:
		s.breakAnswer(w, r, fault.Kind)
	case faulted:
		ct := "application/json"
		if strings.HasPrefix(strings.TrimSpace(fault.Body), "<") {
			ct = htmlType
		}
		reply(w, fault.Status, ct, []byte(fault.Body))
	case down:
		replyHTML(w, http.StatusInternalServerError, pageInternalError())
	default:
		s.serve(w, r)
	}
}

// serve answers a request as the master would.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/login" && r.Method == http.MethodPost:
		s.login(w, r)
	case r.URL.Path == "/" && r.Method == http.MethodPost:
		if s.authorized(w, r) {
			s.run(w, r)
		}
	case r.URL.Path == "/jobs" || strings.HasPrefix(r.URL.Path, "/jobs/"):
		if r.Method != http.MethodGet {
			replyHTML(w, http.StatusMethodNotAllowed, page(405, "Method Not Allowed", "The method is not allowed for the requested URL."))
			return
		}
		if s.authorized(w, r) {
			s.serveJobs(w, r)
		}
	default:
		replyHTML(w, http.StatusNotFound, page(404, "Not Found", "The path '"+r.URL.Path+"' was not found."))
	}
}

// maxRequest bounds the body of a request the fake reads.
const maxRequest = 16 << 20

// lowstateClients lists the clients of a POST / body.
func lowstateClients(body []byte) []string {
	var chunks []struct {
		Client string `json:"client"`
	}
	if json.Unmarshal(body, &chunks) != nil {
		var one struct {
			Client string `json:"client"`
		}
		_ = json.Unmarshal(body, &one)
		return []string{one.Client}
	}
	out := make([]string, 0, len(chunks))
	for _, c := range chunks {
		out = append(out, c.Client)
	}
	return out
}

// takeFault pops the first queued fault for path and clients; s.mu must
// be held.
func (s *Server) takeFault(path string, clients []string) (Fault, bool) {
	for i, f := range s.faults {
		match := f.Path == "" || path == f.Path ||
			(len(f.Path) > 1 && strings.HasSuffix(f.Path, "/") && strings.HasPrefix(path, f.Path))
		if match && (f.Client == "" || slices.Contains(clients, f.Client)) {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return Fault{}, false
}

// login answers POST /login, with a JSON or a form body.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var creds struct{ Username, Password, Eauth string }
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		v, _ := url.ParseQuery(string(body))
		creds.Username, creds.Password, creds.Eauth = v.Get("username"), v.Get("password"), v.Get("eauth")
	} else if err := json.Unmarshal(body, &creds); err != nil {
		replyHTML(w, http.StatusBadRequest, page(400, "Bad Request", "Invalid JSON document"))
		return
	}
	s.mu.Lock()
	m := s.master
	if creds.Username != m.Username || creds.Password != m.Password || creds.Eauth != m.Eauth {
		s.mu.Unlock()
		replyHTML(w, http.StatusUnauthorized, samplePage("03-login-bad-password.html"))
		return
	}
	perms := []string{".*", "@jobs", "@runner"}
	if m.RunnerRefused {
		perms = []string{".*", "@jobs"}
	}
	ttl := m.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	token := newToken()
	start := s.now()
	s.tokens[token] = start.Add(ttl)
	s.mu.Unlock()

	unix := func(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }
	ans := object{{"return", []any{object{
		{"token", token},
		{"expire", unix(start.Add(ttl))},
		{"start", unix(start)},
		{"user", creds.Username},
		{"eauth", creds.Eauth},
		{"perms", perms},
	}}}}
	w.Header().Set("X-Auth-Token", token)
	replyJSON(w, ans)
}

func newToken() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// authorized checks X-Auth-Token and answers CherryPy's 401 pages when it
// is missing, unknown or expired.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	token := r.Header.Get("X-Auth-Token")
	s.mu.Lock()
	expiry, known := s.tokens[token]
	now := s.now()
	s.mu.Unlock()
	switch {
	case !known:
		replyHTML(w, http.StatusUnauthorized, samplePage("04-no-token.html"))
		return false
	case !now.Before(expiry):
		replyHTML(w, http.StatusUnauthorized, samplePage("07-expired-token.html"))
		return false
	}
	return true
}

const htmlType = "text/html;charset=utf-8"

func reply(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Server", "CherryPy/18.8.0")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func replyHTML(w http.ResponseWriter, status int, body []byte) { reply(w, status, htmlType, body) }

func replyJSON(w http.ResponseWriter, v any) {
	b, err := pyJSON(v)
	if err != nil {
		replyHTML(w, http.StatusInternalServerError, pageInternalError())
		return
	}
	reply(w, http.StatusOK, "application/json", b)
}

// malformed is the start of an answer cut short, as a proxy that dropped
// the connection would leave it.
var malformed = []byte(`{"return": [{"web-ams01-001": {"blame.last_failed_states": [{"__id__": "/etc/ng`)
