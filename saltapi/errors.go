package saltapi

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode/utf8"
)

// maxExcerpt bounds the text of an answer quoted in an error: enough for
// CherryPy's one-sentence message, short enough for a chat line.
const maxExcerpt = 200

// HTTPError is a non-2xx answer of salt-api. CherryPy answers its errors
// with HTML pages, never JSON, so only the status and a short text excerpt
// of the page are kept.
type HTTPError struct {
	// Master names the salt-api that answered.
	Master string
	// Endpoint is what was asked: "login", the client ("local",
	// "local_async", "runner") or "jobs".
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Excerpt is the page's message, tags stripped, at most about 200 characters.
	Excerpt string
}

// Error describes the failure in one line.
func (e *HTTPError) Error() string {
	if e.Excerpt == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Excerpt)
}

// ClientDisabledError is salt-api refusing a client that the master's
// netapi_enable_clients does not list (Salt 3006 and later).
type ClientDisabledError struct {
	Master string
	// Client is the refused client: "local", "local_async" or "runner".
	Client string
	Err    *HTTPError
}

// Error describes the failure in one line.
func (e *ClientDisabledError) Error() string {
	return fmt.Sprintf("client %q is disabled on the master: add %s to netapi_enable_clients in the master config of %s (%v)",
		e.Client, e.Client, e.Master, e.Err)
}

// Unwrap returns the underlying error.
func (e *ClientDisabledError) Unwrap() error { return e.Err }

// UnreachableError is a salt-api that could not be reached at all: refused
// connection, unknown host, TLS failure, timeout.
type UnreachableError struct {
	Master string
	URL    string
	// TLS is set when the TLS handshake or the certificate check failed.
	TLS bool
	Err error
}

// Error describes the failure in one line.
func (e *UnreachableError) Error() string {
	if e.TLS {
		return fmt.Sprintf("cannot reach %s over TLS: %v (set tls_ca_file to the CA that signed the salt-api certificate)", e.URL, e.Err)
	}
	return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err)
}

// Unwrap returns the underlying error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// ProtocolError is a 2xx answer that is not what salt-api answers: broken
// JSON, or JSON of an unexpected shape.
type ProtocolError struct {
	Master   string
	Endpoint string
	// Reason says what is wrong with the answer.
	Reason string
	// Excerpt is the start of the answer; empty when it was read as a stream.
	Excerpt string
}

// Error describes the failure in one line.
func (e *ProtocolError) Error() string {
	if e.Excerpt == "" {
		return fmt.Sprintf("unexpected answer from %s: %s", e.Endpoint, e.Reason)
	}
	return fmt.Sprintf("unexpected answer from %s: %s (answer starts with %q)", e.Endpoint, e.Reason, e.Excerpt)
}

var (
	// Blocks whose text is not part of the message.
	htmlSkipped = regexp.MustCompile(`(?is)<(head|style|script)\b.*?</(head|style|script)\s*>|<!DOCTYPE[^>]*>|<!--.*?-->`)
	// CherryPy puts its message in the page's first paragraph.
	htmlParagraph = regexp.MustCompile(`(?is)<p\b[^>]*>(.*?)</p\s*>`)
	htmlTag       = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces        = regexp.MustCompile(`\s+`)
)

// excerpt turns an answer body into one short line of text: the message of
// an HTML page, or the start of anything else.
func excerpt(body []byte) string {
	s := string(body)
	if looksLikeHTML(s) {
		if m := htmlParagraph.FindStringSubmatch(s); m != nil && strings.TrimSpace(htmlTag.ReplaceAllString(m[1], "")) != "" {
			s = m[1]
		} else {
			s = htmlSkipped.ReplaceAllString(s, " ")
		}
		s = html.UnescapeString(htmlTag.ReplaceAllString(s, " "))
	}
	s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
	return shorten(s, maxExcerpt)
}

func looksLikeHTML(s string) bool {
	head := strings.ToLower(strings.TrimSpace(s[:min(len(s), 512)]))
	return strings.HasPrefix(head, "<!doctype") || strings.HasPrefix(head, "<html") || strings.Contains(head, "<body")
}

// shorten cuts s to at most n bytes on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// clientDisabled reports whether a 400 page is Salt's "Client disabled" refusal.
func clientDisabled(e *HTTPError) bool {
	return e.Status == 400 && strings.Contains(e.Excerpt, "Client disabled")
}

// notPermitted reports whether a 401 page is Salt refusing a valid token's
// user what it asked ("Authentication failure of type "token" occurred for
// user sift."), as against a token it no longer knows.
func notPermitted(e *HTTPError) bool {
	return e.Status == 401 && strings.Contains(e.Excerpt, "occurred for user")
}
