package secretstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxFormBody bounds the form bodies Transport rewrites; larger bodies
// (file uploads) carry no token.
const maxFormBody = 4 << 20

// Transport puts the current value of a secret on each request in place of
// a placeholder: in the Authorization header ("Bearer <placeholder>") and
// in a form body's token field. Clients that fix their credentials at
// construction (slack-go does) are given the placeholder and so use a
// rotated token without being rebuilt; the placeholder is all they hold.
type Transport struct {
	Base http.RoundTripper
	// Store holds the secrets.
	Store *Store
	// Placeholders maps each placeholder to the key of its secret.
	Placeholders map[string]string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	out := req
	clone := func() {
		if out == req {
			out = req.Clone(req.Context())
		}
	}
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		if key, ok := t.Placeholders[tok]; ok {
			v, err := t.value(req.Context(), key)
			if err != nil {
				return nil, err
			}
			clone()
			out.Header.Set("Authorization", "Bearer "+v)
			// A client sends its token once: the body is left alone.
			return base.RoundTrip(out)
		}
	}
	// Only bodies of known, bounded length are read: one of unknown length
	// could not be sent whole again after a bounded read.
	if req.Body != nil && req.Body != http.NoBody && isForm(req.Header.Get("Content-Type")) &&
		req.ContentLength > 0 && req.ContentLength <= maxFormBody {
		body, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		// Parsed only when a placeholder is in it: most bodies carry none.
		if form, err := t.formWithPlaceholder(body); err == nil && form != nil {
			if key, ok := t.Placeholders[form.Get("token")]; ok {
				v, err := t.value(req.Context(), key)
				if err != nil {
					return nil, err
				}
				form.Set("token", v)
				body = []byte(form.Encode())
			}
		}
		clone()
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.Header.Set("Content-Length", strconv.Itoa(len(body)))
		b := body
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return base.RoundTrip(out)
}

func (t *Transport) value(ctx context.Context, key string) (string, error) {
	v, err := t.Store.Get(ctx, key)
	if err != nil {
		// The error names the key and source; the request is not sent.
		return "", fmt.Errorf("secret %s: %w", key, err)
	}
	return v.Reveal(), nil
}

// formWithPlaceholder parses body when it holds a placeholder; nil when not.
func (t *Transport) formWithPlaceholder(body []byte) (url.Values, error) {
	for p := range t.Placeholders {
		if bytes.Contains(body, []byte(url.QueryEscape(p))) {
			return url.ParseQuery(string(body))
		}
	}
	return nil, nil
}

func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}
