package saltapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sift-chatops/sift/fakesalt"
)

// readJobSample reads a GET /jobs/<jid> answer as a poll does.
func readJobSample(body []byte, known ...string) (minions []string, returns map[string]json.RawMessage, order []string, err error) {
	returns = map[string]json.RawMessage{}
	jr := jobReader{
		known:   func(id string) bool { return slices.Contains(known, id) },
		minions: func(ids []string) { minions = append(minions, ids...) },
		answer: func(id string, raw json.RawMessage) {
			returns[id] = raw
			order = append(order, id)
		},
	}
	err = jr.read(bytes.NewReader(body))
	return minions, returns, order, err
}

// TestReadJobRealAnswers reads the captured GET /jobs/<jid> answers with
// the client's own reader.
func TestReadJobRealAnswers(t *testing.T) {
	cases := []struct {
		sample  string
		known   []string
		minions []string
		back    []string
		check   func(t *testing.T, returns map[string]json.RawMessage)
	}{
		{"24-jobs-jid-running.json", nil, []string{"web-1", "web-2"}, nil, nil},
		{"25-jobs-jid-done.json", nil, []string{"web-1", "web-2"}, []string{"web-1", "web-2"}, func(t *testing.T, returns map[string]json.RawMessage) {
			if string(returns["web-1"]) != "true" {
				t.Errorf("web-1 = %s", returns["web-1"])
			}
		}},
		// A minion already delivered is skipped.
		{"25-jobs-jid-done.json", []string{"web-1"}, []string{"web-1", "web-2"}, []string{"web-2"}, nil},
		{"57-jobs-jid-user-without-runner.json", nil, []string{"web-1", "web-2"}, []string{"web-1", "web-2"}, nil},
		{"50-jobs-jid-multi-fun-module-missing.json", nil, []string{"db-1", "web-1", "web-2"}, []string{"web-1", "web-2"}, func(t *testing.T, returns map[string]json.RawMessage) {
			// The return is unwrapped from retcode {} and success per function.
			var ans map[string]string
			if err := json.Unmarshal(returns["web-2"], &ans); err != nil || len(ans) != 3 {
				t.Fatalf("web-2 = %.200s (%v)", returns["web-2"], err)
			}
			if !strings.HasSuffix(ans["blame.last_highstate_failure"], "TypeError: 'str' object is not callable\n") {
				t.Errorf("traceback %q", ans["blame.last_highstate_failure"])
			}
		}},
	}
	for _, c := range cases {
		minions, returns, order, err := readJobSample(fakesalt.Sample(c.sample), c.known...)
		if err != nil {
			t.Fatalf("%s: %v", c.sample, err)
		}
		if !slices.Equal(minions, c.minions) || !slices.Equal(order, c.back) {
			t.Errorf("%s: minions %v back %v", c.sample, minions, order)
		}
		if c.check != nil {
			c.check(t, returns)
		}
	}

	_, _, _, err := readJobSample([]byte(`{"info": [{"jid": "1", "Error": "Cannot contact returner or no job with this jid", "StartTime": "", "Result": {}}], "return": [{}]}`))
	if !errors.Is(err, ErrUnknownJob) {
		t.Errorf("unknown jid: %v", err)
	}
}

// TestReadJobBrokenBodies: every answer read whole before the body broke
// off is delivered, and the failure is one a poll retries.
func TestReadJobBrokenBodies(t *testing.T) {
	full := fakesalt.Sample("25-jobs-jid-done.json")
	cut := bytes.Index(full, []byte(`"web-2": {"return"`)) + 12
	cases := []struct {
		name string
		body []byte
		back []string
	}{
		{"truncated after web-1", full[:cut], []string{"web-1"}},
		{"truncated in the return list", full[:len(full)-20], []string{"web-1", "web-2"}},
		{"not JSON", []byte("<html><body>502 Bad Gateway</body></html>"), nil},
		{"garbage inside", bytes.Replace(full, []byte(`"web-2": {"return": true`), []byte(`"web-2": {"return": tru`), 1), []string{"web-1"}},
		{"no info", []byte(`{"return": [{}]}`), nil},
		{"empty info", []byte(`{"info": [], "return": [{}]}`), nil},
	}
	for _, c := range cases {
		_, _, order, err := readJobSample(c.body)
		if c.name == "truncated in the return list" {
			// Reading stops after info: the repeated results are not needed.
			if err != nil || !slices.Equal(order, c.back) {
				t.Errorf("%s: back %v, err %v", c.name, order, err)
			}
			continue
		}
		var pe *ProtocolError
		if !errors.As(err, &pe) || !transient(err) || !slices.Equal(order, c.back) {
			t.Errorf("%s: back %v, err %v", c.name, order, err)
		}
	}
}

// TestReadBoundedAnswer: one minion's answer larger than the bound is not
// held, and is replaced by a string that says so.
func TestReadBoundedAnswer(t *testing.T) {
	big := `{"blame.last_failed_states": [` + strings.Repeat(`{"comment": "x"}, `, 200) + `{}], "n": 1.50, "s": "caf\u00e9"}`
	for _, c := range []struct {
		limit int
		same  bool
	}{{1 << 20, true}, {100, false}} {
		dec := jsontext.NewDecoder(strings.NewReader(big + ` "next"`))
		v, err := readBounded(dec, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		switch {
		case c.same && !jsonEqual(v, []byte(big)):
			t.Errorf("limit %d: %.100s", c.limit, v)
		case !c.same && (json.Unmarshal(v, &s) != nil || !strings.HasPrefix(s, fmt.Sprintf("blame answer of %d bytes not read", len(big)))):
			t.Errorf("limit %d: %s", c.limit, v)
		}
		// The decoder is right after the value.
		if next, err := dec.ReadValue(); err != nil || string(next) != `"next"` {
			t.Errorf("limit %d: next %s %v", c.limit, next, err)
		}
	}
}

// TestLocalAsyncRealAnswer reads sample 49 as the client does.
func TestLocalAsyncRealAnswer(t *testing.T) {
	var ans returnAnswer
	if err := json.Unmarshal(fakesalt.Sample("49-local-async-multi-fun-blame.json"), &ans); err != nil {
		t.Fatal(err)
	}
	var job asyncAnswer
	if err := json.Unmarshal(ans.Return[0], &job); err != nil || job.JID != "20261128041950063129" || !slices.Equal(job.Minions, []string{"web-1", "db-1", "web-2"}) {
		t.Errorf("job %+v (%v)", job, err)
	}
}

func TestUnwrapFullReturn(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"ret": true, "retcode": 0, "jid": "20261128035811792060"}`, `true`},
		{`{"ret": "'blame.last_failed_states' is not available.", "out": "nested", "retcode": 1, "jid": "20261128035718186544"}`, `"'blame.last_failed_states' is not available."`},
		{`{"ret": {"test.ping": true}, "retcode": {"test.ping": 0}, "jid": "20261128035714386611"}`, `{"test.ping": true}`},
		{`false`, `false`},
		{`"Minion did not return. [No response]"`, `"Minion did not return. [No response]"`},
		// A blame answer is never mistaken for a wrapping.
		{`{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true}, "blame.last_compile_errors": []}`, `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true}, "blame.last_compile_errors": []}`},
		{`{"ret": 1}`, `{"ret": 1}`},
	}
	for _, c := range cases {
		if got := unwrapFullReturn(json.RawMessage(c.in)); string(got) != c.want {
			t.Errorf("unwrap %s = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestExcerptOfRealPages(t *testing.T) {
	cases := []struct{ page, want string }{
		{fakesalt.PageBadCredentials(), "Could not authenticate using provided credentials"},
		{fakesalt.PageNoToken(), "No permission -- see authorization schemes"},
		{fakesalt.PageExpiredToken(), "Authentication error occurred."},
		{fakesalt.PageClientDisabled("runner"), "Client disabled: 'runner'. Add to 'netapi_enable_clients' master config option to enable."},
		{fakesalt.PageGatewayTimeout(), "The gateway server did not receive a timely response"},
		{fakesalt.PageRunnerRefused("sift"), `Authentication failure of type "token" occurred for user sift.`},
		{"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>", "502 Bad Gateway nginx"},
		{"upstream connect error or disconnect/reset before headers", "upstream connect error or disconnect/reset before headers"},
		{strings.Repeat("x", 500), strings.Repeat("x", maxExcerpt) + "…"},
	}
	for _, c := range cases {
		if got := excerpt([]byte(c.page)); got != c.want {
			t.Errorf("excerpt = %q, want %q", got, c.want)
		}
	}
}

// TestNotPermitted tells Salt's refusal of a user's permission from the
// refusals of a token: only the latter are worth a new login.
func TestNotPermitted(t *testing.T) {
	cases := []struct {
		page string
		want bool
	}{
		{fakesalt.PageRunnerRefused("sift"), true},
		{string(fakesalt.Sample("56-runner-not-permitted.html")), true},
		{fakesalt.PageExpiredToken(), false},
		{fakesalt.PageNoToken(), false},
		// What Salt's runner check answers for a token it no longer knows.
		{`<html><body><p>Authentication failure of type "token" occurred.</p></body></html>`, false},
	}
	for _, c := range cases {
		if got := notPermitted(&HTTPError{Status: 401, Excerpt: excerpt([]byte(c.page))}); got != c.want {
			t.Errorf("notPermitted(%q) = %v", excerpt([]byte(c.page)), got)
		}
	}
}
