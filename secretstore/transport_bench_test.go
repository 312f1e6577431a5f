package secretstore

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// nopTransport answers every request at once, so a benchmark measures only
// what Transport adds.
type nopTransport struct{}

func (nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

// BenchmarkTransport puts the bot token on a chat.postMessage the size of a
// report's summary (Block Kit JSON in a form field, ~24 KB).
func BenchmarkTransport(b *testing.B) {
	src := newFake()
	src.set("slack.bot_token", "xoxb-1234-5678-benchmarktoken", nil)
	store := New(src, Options{})
	blocks := `[` + strings.Repeat(`{"type":"section","text":{"type":"mrkdwn","text":"*web01.ams01* failed: Service ntpd failed to start after 3 attempts, see /var/log/salt/minion"}},`, 160) + `{"type":"divider"}]`
	form := url.Values{"channel": {"C0INCIDENT"}, "blocks": {blocks}, "text": {"commit e4a91b2 explains 30 of 30 failing minions"}}
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
		auth string
		body url.Values
	}{
		{"direct", nopTransport{}, "xoxb-1234-5678-benchmarktoken", form},
		{"header", &Transport{Base: nopTransport{}, Store: store, Placeholders: map[string]string{"xoxb-placeholder": "slack.bot_token"}}, "xoxb-placeholder", form},
		{"no placeholder", &Transport{Base: nopTransport{}, Store: store, Placeholders: map[string]string{"xoxb-placeholder": "slack.bot_token"}}, "xoxb-1234-5678-benchmarktoken", form},
		{"form token", &Transport{Base: nopTransport{}, Store: store, Placeholders: map[string]string{"xoxb-placeholder": "slack.bot_token"}}, "",
			url.Values{"token": {"xoxb-placeholder"}, "channel": form["channel"], "blocks": form["blocks"], "text": form["text"]}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			enc := tc.body.Encode()
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, "https://slack.com/api/chat.postMessage", strings.NewReader(enc))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.auth != "" {
					req.Header.Set("Authorization", "Bearer "+tc.auth)
				}
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
