// Package saltapi is Sift's client of Salt's REST API (salt-api,
// rest_cherrypy): it logs in, runs the blame module's three functions on the
// minions of a target and hands their answers to the triage domain as they
// arrive.
package saltapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"
)

// Salt's own defaults for a job's timeout and gather_job_timeout.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultGatherJobTimeout = 10 * time.Second
	DefaultPollInterval     = time.Second
	// DefaultPollTimeout bounds one GET /jobs/<jid>: a 5 000-minion answer
	// is about 12 MB.
	DefaultPollTimeout = 20 * time.Second
)

const (
	// loginTimeout bounds a login when the caller's context has no deadline:
	// salt-api answers a login in milliseconds, a PAM backend in a second or two.
	loginTimeout = 30 * time.Second
	// callMargin is added to Salt's timeout and gather_job_timeout to bound a
	// synchronous call: salt-api itself waits that long for the minions.
	callMargin = 15 * time.Second
	// maxBody bounds an answer kept in memory: thousands of minions answering
	// a few tens of kilobytes each.
	maxBody = 512 << 20
	// errorPageLimit bounds the part of an error page that is read: CherryPy's
	// pages are under a kilobyte, a proxy's a few.
	errorPageLimit = 64 << 10
	// drainLimit bounds what is read of an answer after the part needed:
	// GET /jobs/<jid> repeats every result after the job's info.
	drainLimit = 1 << 20
)

// Config is how to reach and authenticate to one salt-api.
type Config struct {
	// Name is the master's name, used in errors and logs.
	Name string
	// URL is salt-api's base URL, e.g. https://salt-eu.example.com:8000.
	URL string
	// Eauth is the external auth backend (pam, ldap, sharedsecret, ...).
	Eauth string
	// Username is the user salt-api authenticates.
	Username string
	// Password is the secret: it never appears in logs, errors or String().
	Password string
	// TLSCAFile is a PEM file of the CAs that sign salt-api's certificate.
	TLSCAFile string
	// InsecureSkipVerify disables the certificate check (a lab only).
	InsecureSkipVerify bool
	// Timeout and GatherJobTimeout are Salt's timeout and
	// gather_job_timeout, sent with every job.
	Timeout, GatherJobTimeout time.Duration
	// PollInterval is the interval between two GET /jobs/<jid> of an
	// asynchronous job.
	PollInterval time.Duration
	// PollTimeout bounds one GET /jobs/<jid>; a poll past it is retried.
	PollTimeout time.Duration
	// Clock is the time the polling of a job reads and waits on; nil is
	// the wall clock.
	Clock Clock
	// Log receives the client's logs; nil discards them.
	Log logrus.FieldLogger
	// OnResponse, when set, is told the status of every HTTP exchange,
	// 0 when no answer came back; for metrics.
	OnResponse func(master string, status int)
	// HTTPClient replaces the client's own HTTP client (tests). TLS options
	// are applied to its transport when it is an *http.Transport.
	HTTPClient *http.Client
}

// String describes the configuration without its password.
func (c Config) String() string {
	return fmt.Sprintf("salt-api %s (url %s, user %s, eauth %s, password <secret>)", c.Name, redactURL(c.URL), c.Username, c.Eauth)
}

// redactURL hides a password written into the URL's user info.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

// GoString keeps the password out of %#v as well.
func (c Config) GoString() string { return c.String() }

// Client talks to one salt-api. It is safe for concurrent use: the token is
// shared by every call.
type Client struct {
	cfg  Config
	log  logrus.FieldLogger
	http *resty.Client

	// loginSlot lets one call log in while the others wait for its token
	// (a channel rather than a mutex, so that waiting respects contexts).
	loginSlot chan struct{}
	mu        sync.Mutex
	token     string

	// presence shares the question of who is connected between the calls
	// that ask it at the same time.
	presence singleflight.Group
}

// New checks cfg, fills its defaults and returns a client. It does not
// contact salt-api.
func New(cfg Config) (*Client, error) {
	var problems []error
	if cfg.Name == "" {
		problems = append(problems, errors.New("name: empty"))
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		problems = append(problems, errors.New("url: not a URL"))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		problems = append(problems, fmt.Errorf("url %q: not an http:// or https:// URL", redactURL(cfg.URL)))
	}
	if cfg.Username == "" {
		problems = append(problems, errors.New("username: empty"))
	}
	if cfg.Eauth == "" {
		problems = append(problems, errors.New("eauth: empty (pam, ldap, sharedsecret, ...)"))
	}
	if cfg.Timeout < 0 || cfg.GatherJobTimeout < 0 || cfg.PollInterval < 0 || cfg.PollTimeout < 0 {
		problems = append(problems, errors.New("timeout, gather_job_timeout, poll_interval, poll_timeout: negative"))
	}
	hc, err := httpClient(cfg)
	if err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("salt-api %s config: %w", cfg.Name, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.GatherJobTimeout == 0 {
		cfg.GatherJobTimeout = DefaultGatherJobTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	log := cfg.Log
	if log == nil {
		discard := logrus.New()
		discard.SetOutput(io.Discard)
		log = discard
	}
	log = log.WithField("master", cfg.Name)
	rc := resty.NewWithClient(hc).
		SetBaseURL(strings.TrimRight(cfg.URL, "/")).
		SetLogger(restyLogger{log}).
		SetResponseBodyLimit(maxBody)
	return &Client{cfg: cfg, log: log, http: rc, loginSlot: make(chan struct{}, 1)}, nil
}

// httpClient builds the HTTP client: no cookie jar (salt-api's session
// cookie would stand in for the token and hide its expiry), no redirects
// (a redirected POST would lose its body), and the TLS options.
func httpClient(cfg Config) (*http.Client, error) {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.TLSCAFile == "" && !cfg.InsecureSkipVerify {
		return hc, nil
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("tls_ca_file: the HTTP client's transport %T is not an *http.Transport", t)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		tc = tr.TLSClientConfig.Clone()
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file %q: no PEM certificate in it", cfg.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	tc.InsecureSkipVerify = cfg.InsecureSkipVerify
	tr.TLSClientConfig = tc
	out := *hc
	out.Transport = tr
	return &out, nil
}

// restyLogger sends resty's own messages to the client's logger.
type restyLogger struct{ log logrus.FieldLogger }

// Errorf logs resty's errors at debug level: the client reports failures itself.
func (l restyLogger) Errorf(format string, v ...any) {
	l.log.WithField("detail", fmt.Sprintf(format, v...)).Debug("http client error")
}

// Warnf logs resty's warnings at debug level.
func (l restyLogger) Warnf(format string, v ...any) {
	l.log.WithField("detail", fmt.Sprintf(format, v...)).Debug("http client warning")
}

// Debugf logs resty's debug messages.
func (l restyLogger) Debugf(format string, v ...any) {
	l.log.WithField("detail", fmt.Sprintf(format, v...)).Debug("http client debug")
}

// exchange is one HTTP request and its answer, before any interpretation.
type exchange struct {
	method, path string
	// endpoint names the request in errors: login, local, local_async, jobs.
	endpoint string
	// label prefixes errors; the endpoint when empty.
	label string
	body  any
}

// wrap prefixes err with the master and what was asked of it.
func (c *Client) wrap(ex exchange, err error) error {
	label := ex.label
	if label == "" {
		label = ex.endpoint
	}
	return fmt.Errorf("salt-api %s %s: %w", c.cfg.Name, label, err)
}

// send makes one HTTP request. Transport failures come back as an
// *UnreachableError, or as the context's error when it ended. With read
// set, a 2xx body is handed to read as it arrives instead of being returned.
func (c *Client) send(ctx context.Context, ex exchange, token string, read func(io.Reader) error) (int, []byte, error) {
	req := c.http.R().SetContext(ctx).SetHeader("Accept", "application/json")
	if token != "" {
		req.SetHeader("X-Auth-Token", token)
	}
	if ex.body != nil {
		b, err := json.Marshal(ex.body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		req.SetHeader("Content-Type", "application/json").SetBody(b)
	}
	if read != nil {
		req.SetDoNotParseResponse(true)
	}
	resp, err := req.Execute(ex.method, ex.path)
	if err != nil {
		c.observe(0)
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("no answer in time: %w", ctx.Err())
		}
		return 0, nil, c.unreachable(ex, err)
	}
	status := resp.StatusCode()
	c.observe(status)
	if read == nil {
		return status, resp.Body(), nil
	}
	raw := resp.RawBody()
	defer raw.Close()
	if status < 200 || status > 299 {
		// An error page is read only as far as its message.
		body, _ := io.ReadAll(io.LimitReader(raw, errorPageLimit))
		return status, body, nil
	}
	if err := read(raw); err != nil {
		if ctx.Err() != nil {
			return status, nil, fmt.Errorf("answer not read in time: %w", ctx.Err())
		}
		return status, nil, err
	}
	// A short rest is drained so that the connection serves the next poll;
	// past drainLimit, a new connection costs less than reading on.
	_, _ = io.Copy(io.Discard, io.LimitReader(raw, drainLimit))
	return status, nil, nil
}

func (c *Client) observe(status int) {
	if c.cfg.OnResponse != nil {
		c.cfg.OnResponse(c.cfg.Name, status)
	}
}

func (c *Client) unreachable(ex exchange, err error) error {
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the method and URL, which the message already names.
		inner = ue.Err
	}
	return &UnreachableError{Master: c.cfg.Name, URL: strings.TrimRight(redactURL(c.cfg.URL), "/") + ex.path, TLS: isTLSError(err), Err: inner}
}

func isTLSError(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &invalid), errors.As(err, &hostname),
		errors.As(err, &verify), errors.As(err, &record):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}

// httpError builds the error of a non-2xx answer.
func (c *Client) httpError(endpoint string, status int, body []byte) error {
	he := &HTTPError{Master: c.cfg.Name, Endpoint: endpoint, Status: status, Excerpt: excerpt(body)}
	if clientDisabled(he) {
		return &ClientDisabledError{Master: c.cfg.Name, Client: endpoint, Err: he}
	}
	return he
}

// decode reads a 2xx answer into out; salt-api's answers are JSON, so
// anything else is a protocol error that quotes the answer's start.
func (c *Client) decode(endpoint string, body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		return &ProtocolError{Master: c.cfg.Name, Endpoint: endpoint, Reason: "not JSON: " + err.Error(), Excerpt: shorten(strings.TrimSpace(string(body)), 80)}
	}
	return nil
}

// call makes an authenticated request and decodes its JSON answer into out.
func (c *Client) call(ctx context.Context, ex exchange, out any) error {
	body, err := c.request(ctx, ex, nil)
	if err != nil {
		return err
	}
	if err := c.decode(ex.endpoint, body, out); err != nil {
		return c.wrap(ex, err)
	}
	return nil
}

// stream makes an authenticated request and hands its 2xx body to read as
// it arrives.
func (c *Client) stream(ctx context.Context, ex exchange, read func(io.Reader) error) error {
	_, err := c.request(ctx, ex, read)
	return err
}

// request makes an authenticated request and returns its 2xx body (none
// when read consumed it).
//
// A 401 means salt-api refused the token before it ran anything (the
// expired or revoked token of a long-lived bot), so no job started and the
// request is made once more after a new login; unless the page says that
// the user is not permitted to run what was asked, which a new token does
// not change. No other failure is retried here: a POST may have started a
// job.
func (c *Client) request(ctx context.Context, ex exchange, read func(io.Reader) error) ([]byte, error) {
	token, err := c.tokenFor(ctx, "")
	if err != nil {
		return nil, err
	}
	status, body, err := c.send(ctx, ex, token, read)
	if err != nil {
		return nil, c.wrap(ex, err)
	}
	if status == http.StatusUnauthorized {
		he := &HTTPError{Master: c.cfg.Name, Endpoint: ex.endpoint, Status: status, Excerpt: excerpt(body)}
		if notPermitted(he) {
			return nil, c.wrap(ex, fmt.Errorf("user %q is not permitted to run this (check its external_auth permissions): %w", c.cfg.Username, he))
		}
		c.log.WithFields(logrus.Fields{"endpoint": ex.endpoint, "answer": he.Excerpt}).Info("token refused, logging in again")
		if token, err = c.tokenFor(ctx, token); err != nil {
			return nil, err
		}
		if status, body, err = c.send(ctx, ex, token, read); err != nil {
			return nil, c.wrap(ex, err)
		}
		if status == http.StatusUnauthorized {
			return nil, c.wrap(ex, fmt.Errorf("refused right after a new login (check the external_auth permissions of user %q for %s): %w",
				c.cfg.Username, ex.endpoint, c.httpError(ex.endpoint, status, body)))
		}
	}
	if status < 200 || status > 299 {
		return nil, c.wrap(ex, c.httpError(ex.endpoint, status, body))
	}
	return body, nil
}

// tokenFor returns the shared token, logging in when there is none or when
// the one there is the stale token a call just saw refused.
func (c *Client) tokenFor(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if token != "" && token != stale {
		return token, nil
	}
	select {
	case c.loginSlot <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.loginSlot }()
	// Another call may have logged in while this one waited.
	c.mu.Lock()
	token = c.token
	c.mu.Unlock()
	if token != "" && token != stale {
		return token, nil
	}
	token, err := c.login(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("salt-api %s login: %w", c.cfg.Name, err)
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return token, nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Eauth    string `json:"eauth"`
}

type loginAnswer struct {
	Return []struct {
		Token  string  `json:"token"`
		Expire float64 `json:"expire"`
		User   string  `json:"user"`
		Eauth  string  `json:"eauth"`
	} `json:"return"`
}

// login asks salt-api for a new token.
func (c *Client) login(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	ex := exchange{method: http.MethodPost, path: "/login", endpoint: "login",
		body: loginRequest{Username: c.cfg.Username, Password: c.cfg.Password, Eauth: c.cfg.Eauth}}
	status, body, err := c.send(ctx, ex, "", nil)
	if err != nil {
		return "", err
	}
	if status == http.StatusUnauthorized {
		return "", fmt.Errorf("the master refused the credentials of user %q with eauth %q (check the password and the eauth): %w",
			c.cfg.Username, c.cfg.Eauth, c.httpError(ex.endpoint, status, body))
	}
	if status < 200 || status > 299 {
		return "", c.httpError(ex.endpoint, status, body)
	}
	var ans loginAnswer
	if err := c.decode(ex.endpoint, body, &ans); err != nil {
		return "", err
	}
	if len(ans.Return) == 0 || ans.Return[0].Token == "" {
		return "", &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "no token in the answer", Excerpt: shorten(string(bytes.TrimSpace(body)), 80)}
	}
	c.log.WithFields(logrus.Fields{"user": ans.Return[0].User, "eauth": ans.Return[0].Eauth, "expire": ans.Return[0].Expire}).Debug("logged in")
	return ans.Return[0].Token, nil
}
