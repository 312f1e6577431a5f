package saltapi

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/fakesalt"
)

// TestParseJobRealAnswers reads the captured GET /jobs/<jid> answers with
// the client's own parser.
func TestParseJobRealAnswers(t *testing.T) {
	cases := []struct {
		sample  string
		minions []string
		back    []string
		check   func(t *testing.T, st jobStatus)
	}{
		{"24-jobs-jid-running.json", []string{"web-1", "web-2"}, nil, nil},
		{"25-jobs-jid-done.json", []string{"web-1", "web-2"}, []string{"web-1", "web-2"}, func(t *testing.T, st jobStatus) {
			if string(st.Returns["web-1"]) != "true" {
				t.Errorf("web-1 = %s", st.Returns["web-1"])
			}
		}},
		{"50-jobs-jid-multi-fun-module-missing.json", []string{"db-1", "web-1", "web-2"}, []string{"web-1", "web-2"}, func(t *testing.T, st jobStatus) {
			// The return is unwrapped from retcode {} and success per function.
			var ans map[string]string
			if err := json.Unmarshal(st.Returns["web-2"], &ans); err != nil || len(ans) != 3 {
				t.Fatalf("web-2 = %.200s (%v)", st.Returns["web-2"], err)
			}
			if !strings.HasSuffix(ans["blame.last_highstate_failure"], "TypeError: 'str' object is not callable\n") {
				t.Errorf("traceback %q", ans["blame.last_highstate_failure"])
			}
		}},
	}
	for _, c := range cases {
		var ans jobAnswer
		if err := json.Unmarshal(fakesalt.Sample(c.sample), &ans); err != nil {
			t.Fatalf("%s: %v", c.sample, err)
		}
		st, err := parseJob(ans)
		if err != nil {
			t.Fatalf("%s: %v", c.sample, err)
		}
		if !slices.Equal(st.Minions, c.minions) || !slices.Equal(sortedKeys(st.Returns), c.back) {
			t.Errorf("%s: minions %v back %v", c.sample, st.Minions, sortedKeys(st.Returns))
		}
		if c.check != nil {
			c.check(t, st)
		}
	}

	var unknown jobAnswer
	_ = json.Unmarshal([]byte(`{"info": [{"jid": "1", "Error": "Cannot contact returner or no job with this jid", "StartTime": "", "Result": {}}], "return": [{}]}`), &unknown)
	if _, err := parseJob(unknown); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("unknown jid: %v", err)
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
