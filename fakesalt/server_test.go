package fakesalt_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/triage"
)

func lab() *fakesalt.Master {
	return &fakesalt.Master{
		Name: "salt-lab", Username: "sift", Password: "lab-secret", Eauth: "sharedsecret",
		Minions: []*fakesalt.Minion{
			{ID: "web-1", Grains: map[string]string{"datacenter": "ams01", "role": "web"}, Answer: fakesalt.FailedState(fakesalt.Failure{})},
			{ID: "web-2", Grains: map[string]string{"datacenter": "ams01", "role": "web"}, Answer: fakesalt.Healthy(), Delay: 150 * time.Millisecond},
			{ID: "db-1", Grains: map[string]string{"datacenter": "ams01", "role": "db"}, Unreachable: true},
			{ID: "web-3", Grains: map[string]string{"datacenter": "fra02", "role": "web"}, Answer: fakesalt.ModuleMissing()},
			{ID: "ghost-1", Grains: map[string]string{"datacenter": "ams01"}, NotAccepted: true},
		},
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func login(t *testing.T, srv *fakesalt.Server) string {
	t.Helper()
	a := do(t, "POST", srv.URL()+"/login", "", map[string]string{"username": "sift", "password": "lab-secret", "eauth": "sharedsecret"})
	if a.status != 200 {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	var v struct {
		Return []struct{ Token string } `json:"return"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || len(v.Return) != 1 {
		t.Fatalf("login answer %s: %v", a.body, err)
	}
	return v.Return[0].Token
}

func blameCall(client string, tgt any, tgtType string) []map[string]any {
	return []map[string]any{{
		"client": client, "tgt": tgt, "tgt_type": tgtType,
		"fun": triage.BlameFunctions, "arg": [][]any{{}, {}, {}},
		"timeout": 5, "gather_job_timeout": 3,
	}}
}

// returnOf decodes {"return": [X]} and returns X.
func returnOf(t *testing.T, a answer) map[string]json.RawMessage {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var v struct {
		Return []map[string]json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || len(v.Return) != 1 {
		t.Fatalf("answer %s: %v", a.body, err)
	}
	return v.Return[0]
}

func TestLoginAnswersLikeSaltAPI(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	a := do(t, "POST", srv.URL()+"/login", "", map[string]string{"username": "sift", "password": "lab-secret", "eauth": "sharedsecret"})
	// Same shape and separators as sample 02.
	re := regexp.MustCompile(`^\{"return": \[\{"token": "([0-9a-f]{40})", "expire": [0-9.]+, "start": [0-9.]+, "user": "sift", "eauth": "sharedsecret", "perms": \[".\*", "@jobs", "@runner"\]\}\]\}$`)
	m := re.FindSubmatch(a.body)
	if a.status != 200 || m == nil {
		t.Fatalf("login answer %d %s", a.status, a.body)
	}
	if got := a.header.Get("X-Auth-Token"); got != string(m[1]) {
		t.Errorf("X-Auth-Token header %q, body token %q", got, m[1])
	}

	bad := do(t, "POST", srv.URL()+"/login", "", map[string]string{"username": "sift", "password": "wrong", "eauth": "sharedsecret"})
	if bad.status != 401 || !bytes.Equal(bad.body, fakesalt.Sample("03-login-bad-password.html")) {
		t.Errorf("bad password: %d %s", bad.status, bad.body)
	}
	if ct := bad.header.Get("Content-Type"); ct != "text/html;charset=utf-8" {
		t.Errorf("bad password content type %q", ct)
	}
	if srv.Logins() != 2 {
		t.Errorf("Logins() = %d, want 2", srv.Logins())
	}
}

func TestTokens(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	body := blameCall("local", []string{"web-1"}, "list")
	if a := do(t, "POST", srv.URL()+"/", "", body); a.status != 401 || !bytes.Equal(a.body, fakesalt.Sample("04-no-token.html")) {
		t.Errorf("no token: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", srv.URL()+"/", "0123456789abcdef0123456789abcdef01234567", body); a.status != 401 || !bytes.Equal(a.body, fakesalt.Sample("04-no-token.html")) {
		t.Errorf("unknown token: %d %s", a.status, a.body)
	}
	token := login(t, srv)
	if a := do(t, "POST", srv.URL()+"/", token, body); a.status != 200 {
		t.Errorf("valid token: %d %s", a.status, a.body)
	}
	srv.ExpireTokens()
	if a := do(t, "POST", srv.URL()+"/", token, body); a.status != 401 || !bytes.Equal(a.body, fakesalt.Sample("07-expired-token.html")) {
		t.Errorf("expired token: %d %s", a.status, a.body)
	}

	short := lab()
	short.TokenTTL = 50 * time.Millisecond
	srv2 := fakesalt.NewServer(short)
	defer srv2.Close()
	clock := fakesalt.NewClock(time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
	srv2.UseClock(clock.Now)
	token = login(t, srv2)
	clock.Advance(80 * time.Millisecond)
	if a := do(t, "GET", srv2.URL()+"/jobs/20261128041950063129", token, nil); a.status != 401 || !strings.Contains(string(a.body), "Authentication error occurred.") {
		t.Errorf("token past its TTL: %d %s", a.status, a.body)
	}
}

func TestClientDisabled(t *testing.T) {
	m := lab()
	m.DisabledClients = []string{"local_async"}
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	token := login(t, srv)
	for _, client := range []string{"local_async", "wheel", "ssh"} {
		a := do(t, "POST", srv.URL()+"/", token, blameCall(client, "*", "glob"))
		want := strings.Replace(string(fakesalt.Sample("19-client-wheel-disabled.html")), "'wheel'", "'"+client+"'", 1)
		if a.status != 400 || string(a.body) != want {
			t.Errorf("%s: %d %s", client, a.status, a.body)
		}
	}
	if a := do(t, "POST", srv.URL()+"/", token, blameCall("local", "web-1", "list")); a.status != 200 {
		t.Errorf("local still enabled: %d", a.status)
	}
	if srv.Calls("local_async") != 1 || srv.Calls("local") != 1 {
		t.Errorf("Calls: local_async %d, local %d", srv.Calls("local_async"), srv.Calls("local"))
	}
}

func TestLocalList(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local", []string{"web-1", "db-1", "ghost-1", "nosuch-9"}, "list")))

	var failure map[string]json.RawMessage
	if err := json.Unmarshal(ret["web-1"], &failure); err != nil || len(failure) != 3 {
		t.Errorf("web-1 answer %s: %v", ret["web-1"], err)
	}
	if string(ret["db-1"]) != "false" {
		t.Errorf("unreachable db-1 = %s, want false", ret["db-1"])
	}
	for _, id := range []string{"ghost-1", "nosuch-9"} {
		var s string
		if err := json.Unmarshal(ret[id], &s); err != nil || !regexp.MustCompile(`(?s)^Minion did not return\. \[No response\]\n.*salt-run jobs.lookup_jid \d{20}$`).MatchString(s) {
			t.Errorf("%s = %s", id, ret[id])
		}
	}
	if len(ret) != 4 {
		t.Errorf("answer has %d minions: %v", len(ret), ret)
	}

	// A comma-separated string is a list too.
	ret = returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local", "web-1,web-3", "list")))
	if len(ret) != 2 || !strings.Contains(string(ret["web-3"]), "TypeError: 'str' object is not callable") {
		t.Errorf("comma list: %v", ret)
	}

	// Only ids without a key: Salt sends no job.
	if a := do(t, "POST", srv.URL()+"/", token, blameCall("local", []string{"nosuch-9"}, "list")); string(a.body) != `{"return": [{}]}` {
		t.Errorf("no key at all: %s", a.body)
	}
}

func TestLocalFullReturnAndTimeScale(t *testing.T) {
	m := lab()
	m.TimeScale = 0.01 // 5 s + 3 s → 80 ms
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	token := login(t, srv)
	call := blameCall("local", []string{"web-1", "db-1"}, "list")
	call[0]["full_return"] = true
	start := time.Now()
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, call))
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("a call with a silent minion took %v, want the scaled 80 ms", took)
	}
	var wrapped struct {
		Ret     json.RawMessage `json:"ret"`
		Retcode map[string]int  `json:"retcode"`
		JID     string          `json:"jid"`
	}
	if err := json.Unmarshal(ret["web-1"], &wrapped); err != nil || len(wrapped.JID) != 20 || len(wrapped.Retcode) != 3 {
		t.Errorf("full_return web-1 = %s (%v)", ret["web-1"], err)
	}
	if string(ret["db-1"]) != "false" {
		t.Errorf("db-1 = %s", ret["db-1"])
	}
}

func TestTargets(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	cases := []struct {
		tgt, tgtType string
		want         []string
	}{
		{"G@datacenter:ams01", "compound", []string{"web-1", "web-2", "db-1"}},
		{"G@datacenter:ams01 and G@role:web", "compound", []string{"web-1", "web-2"}},
		{"G@datacenter:ams01 and not L@web-1,db-1", "compound", []string{"web-2"}},
		{"L@web-1,web-3 or G@role:db", "compound", []string{"web-1", "db-1", "web-3"}},
		{"( G@role:web and G@datacenter:fra02 ) or web-1", "compound", []string{"web-1", "web-3"}},
		{"G@datacenter:am*", "compound", []string{"web-1", "web-2", "db-1"}},
		{"web-*", "glob", []string{"web-1", "web-2", "web-3"}},
		{"datacenter:fra02", "grain", []string{"web-3"}},
		{"G@datacenter:par01", "compound", nil},
		{"G@datacenter:ams01 and", "compound", nil},
		{"J@nope", "compound", nil},
		{"web-1", "nodegroup", nil},
	}
	for _, c := range cases {
		a := do(t, "POST", srv.URL()+"/", token, blameCall("local_async", c.tgt, c.tgtType))
		ret := returnOf(t, a)
		var minions []string
		if raw, ok := ret["minions"]; ok {
			_ = json.Unmarshal(raw, &minions)
		}
		if c.want == nil {
			if string(a.body) != `{"return": [{}]}` {
				t.Errorf("%s %q: %s, want no job", c.tgtType, c.tgt, a.body)
			}
			continue
		}
		if !reflect.DeepEqual(minions, c.want) {
			t.Errorf("%s %q: minions %v, want %v", c.tgtType, c.tgt, minions, c.want)
		}
		var jid string
		if err := json.Unmarshal(ret["jid"], &jid); err != nil || !regexp.MustCompile(`^\d{20}$`).MatchString(jid) {
			t.Errorf("%q: jid %s", c.tgt, ret["jid"])
		}
	}
}

type jobsAnswer struct {
	Info []struct {
		JID      string                     `json:"jid"`
		Function []string                   `json:"Function"`
		Minions  []string                   `json:"Minions"`
		Error    string                     `json:"Error"`
		Result   map[string]json.RawMessage `json:"Result"`
	} `json:"info"`
	Return []map[string]json.RawMessage `json:"return"`
}

func TestAsyncJobCompletesOverPolls(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	clock := fakesalt.NewClock(time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
	srv.UseClock(clock.Now)
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local_async", "G@datacenter:ams01", "compound")))
	var jid string
	_ = json.Unmarshal(ret["jid"], &jid)

	poll := func() jobsAnswer {
		a := do(t, "GET", srv.URL()+"/jobs/"+jid, token, nil)
		var j jobsAnswer
		if err := json.Unmarshal(a.body, &j); err != nil || len(j.Info) != 1 || len(j.Return) != 1 {
			t.Fatalf("jobs answer %s: %v", a.body, err)
		}
		return j
	}
	first := poll()
	if _, ok := first.Info[0].Result["web-1"]; !ok || len(first.Info[0].Result) != 1 {
		t.Errorf("first poll: Result %v, want web-1 only (web-2 is slow, db-1 silent)", first.Info[0].Result)
	}
	if !reflect.DeepEqual(first.Info[0].Minions, []string{"db-1", "web-1", "web-2"}) {
		t.Errorf("Minions %v", first.Info[0].Minions)
	}
	clock.Advance(200 * time.Millisecond)
	second := poll()
	if len(second.Info[0].Result) != 2 || len(second.Return[0]) != 2 {
		t.Fatalf("second poll: Result %v", second.Info[0].Result)
	}
	var entry struct {
		Return  json.RawMessage `json:"return"`
		Retcode map[string]any  `json:"retcode"`
		Success map[string]bool `json:"success"`
	}
	if err := json.Unmarshal(second.Info[0].Result["web-2"], &entry); err != nil {
		t.Fatal(err)
	}
	if entry.Retcode == nil || len(entry.Retcode) != 0 || len(entry.Success) != 3 || !entry.Success[fakesalt.FunHighstateFailure] {
		t.Errorf("multi-function Result entry %s", second.Info[0].Result["web-2"])
	}
	if !jsonEqual(entry.Return, fakesalt.Healthy()) || !jsonEqual(second.Return[0]["web-2"], fakesalt.Healthy()) {
		t.Errorf("web-2 return %s", entry.Return)
	}
	if srv.Polls() != 2 {
		t.Errorf("Polls() = %d", srv.Polls())
	}
}

func TestJobShapeMatchesSample50(t *testing.T) {
	m := lab()
	m.Minions = []*fakesalt.Minion{
		{ID: "web-1", Grains: map[string]string{"datacenter": "ams01"}, Answer: fakesalt.ModuleMissing()},
		{ID: "web-2", Grains: map[string]string{"datacenter": "ams01"}, Answer: fakesalt.ModuleMissing()},
		{ID: "db-1", Grains: map[string]string{"datacenter": "ams01"}, Unreachable: true},
	}
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local_async", "G@datacenter:ams01", "compound")))
	var jid string
	_ = json.Unmarshal(ret["jid"], &jid)
	got := do(t, "GET", srv.URL()+"/jobs/"+jid, token, nil).body

	// The real answer with the fake's jid and start time is the fake's answer.
	real := string(fakesalt.Sample("50-jobs-jid-multi-fun-module-missing.json"))
	real = strings.ReplaceAll(real, "20261128041950063129", jid)
	start := regexp.MustCompile(`"StartTime": "[^"]*"`)
	real = start.ReplaceAllString(real, string(start.Find(got)))
	if !jsonEqual([]byte(real), got) {
		t.Errorf("GET /jobs differs from sample 50:\n got %.600s\nwant %.600s", got, real)
	}
	if !bytes.HasPrefix(got, []byte(`{"info": [{"jid": "`+jid+`", "Function": ["blame.last_failed_states", `)) {
		t.Errorf("key order or separators differ from Salt's: %.120s", got)
	}
}

func TestUnknownJob(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	a := do(t, "GET", srv.URL()+"/jobs/20261128041950063129", token, nil)
	want := `{"info": [{"jid": "20261128041950063129", "Error": "Cannot contact returner or no job with this jid", "StartTime": "2026, Nov 28 04:19:50.063129", "Result": {}}], "return": [{}]}`
	if a.status != 200 || string(a.body) != want {
		t.Errorf("unknown jid: %d %s", a.status, a.body)
	}
}

func TestFaultsDownAndMalformed(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	body := blameCall("local", []string{"web-1"}, "list")

	srv.FailNext(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	if a := do(t, "POST", srv.URL()+"/", token, body); a.status != 502 || a.header.Get("Content-Type") != "text/html;charset=utf-8" {
		t.Errorf("FailNext: %d %s", a.status, a.header.Get("Content-Type"))
	}
	if a := do(t, "POST", srv.URL()+"/", token, body); a.status != 200 {
		t.Errorf("after the fault: %d", a.status)
	}
	srv.Inject(fakesalt.Fault{Path: "/jobs/", Status: 500, Body: fakesalt.PageInternalError()})
	if a := do(t, "POST", srv.URL()+"/", token, body); a.status != 200 {
		t.Errorf("a fault on /jobs/ hit POST /: %d", a.status)
	}
	if a := do(t, "GET", srv.URL()+"/jobs/1", token, nil); a.status != 500 {
		t.Errorf("fault on /jobs/: %d", a.status)
	}

	srv.Update(func(m *fakesalt.Master) { m.Malformed = true })
	a := do(t, "POST", srv.URL()+"/", token, body)
	if a.status != 200 || json.Valid(a.body) {
		t.Errorf("malformed: %d %s", a.status, a.body)
	}
	srv.Update(func(m *fakesalt.Master) { m.Malformed = false; m.Down = true })
	a = do(t, "POST", srv.URL()+"/login", "", nil)
	if a.status != 500 || !strings.Contains(string(a.body), "<h2>500 Internal Server Error</h2>") {
		t.Errorf("down: %d %s", a.status, a.body)
	}
}

func TestRunner(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": "cache.grains", "tgt": "G@datacenter:ams01", "tgt_type": "compound"}}))
	if len(ret) != 3 || !strings.Contains(string(ret["db-1"]), `"datacenter": "ams01"`) {
		t.Errorf("cache.grains: %v", ret)
	}
	ret = returnOf(t, do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": "manage.status"}}))
	if string(ret["down"]) != `["db-1"]` {
		t.Errorf("manage.status down = %s", ret["down"])
	}
}

func TestFunctionNamesMatchTheDomain(t *testing.T) {
	if got := []string{fakesalt.FunFailedStates, fakesalt.FunHighstateFailure, fakesalt.FunCompileErrors}; !slices.Equal(got, triage.BlameFunctions) {
		t.Errorf("fakesalt functions %v, triage %v", got, triage.BlameFunctions)
	}
}

// TestServesFixturesVerbatim serves the blame module's own output fixtures
// (one minion's three-function answer per file) and checks that a client
// reads back the same JSON value.
func TestServesFixturesVerbatim(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "blame-answers", "*.json"))
	if len(files) == 0 {
		t.Skip("no blame module fixtures in testdata/blame-answers yet")
	}
	m := lab()
	m.Minions = nil
	want := map[string][]byte{}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("fixture-%02d", i)
		want[id] = b
		m.Minions = append(m.Minions, &fakesalt.Minion{ID: id, Grains: map[string]string{"datacenter": "fix"}, Answer: b})
	}
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local", "G@datacenter:fix", "compound")))
	for id, b := range want {
		if !jsonEqual(ret[id], b) {
			t.Errorf("%s served %.200s, want %.200s", id, ret[id], b)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestPresenceRunners(t *testing.T) {
	m := lab()
	m.Minions = append(m.Minions, &fakesalt.Minion{ID: "app-1", Disconnected: true})
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	token := login(t, srv)
	runner := func(fun string) answer {
		return do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": fun}})
	}
	// Shaped like samples 51 and 52: one sorted list of ids. A hung minion
	// (db-1) is connected; ghost-1 has no key and is in neither list.
	for _, c := range []struct{ fun, want, sample string }{
		{"manage.present", `{"return": [["db-1", "web-1", "web-2", "web-3"]]}`, "51-runner-manage-present.json"},
		{"manage.not_present", `{"return": [["app-1"]]}`, "52-runner-manage-not-present.json"},
	} {
		a := runner(c.fun)
		if a.status != 200 || string(a.body) != c.want {
			t.Errorf("%s: %d %s, want %s", c.fun, a.status, a.body, c.want)
		}
		var shape, real struct{ Return [][]string }
		if json.Unmarshal(a.body, &shape) != nil || json.Unmarshal(fakesalt.Sample(c.sample), &real) != nil || len(real.Return) != 1 || len(shape.Return) != 1 {
			t.Errorf("%s: not shaped like %s", c.fun, c.sample)
		}
	}
	srv.Update(func(m *fakesalt.Master) { m.NoMinionDataCache = true })
	if a := runner("manage.present"); string(a.body) != `{"return": [[]]}` {
		t.Errorf("manage.present without a data cache: %s", a.body)
	}
}

// TestRunnerRefused is the user of samples 55 to 57: no @runner, but @jobs.
func TestRunnerRefused(t *testing.T) {
	m := lab()
	m.RunnerRefused = true
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	a := do(t, "POST", srv.URL()+"/login", "", map[string]string{"username": "sift", "password": "lab-secret", "eauth": "sharedsecret"})
	if !strings.Contains(string(a.body), `"perms": [".*", "@jobs"]`) {
		t.Errorf("login: %s", a.body)
	}
	token := login(t, srv)
	a = do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": "manage.not_present"}})
	want := strings.Replace(string(fakesalt.Sample("56-runner-not-permitted.html")), "sift-norunner", "sift", 1)
	if a.status != 401 || string(a.body) != want || a.header.Get("Content-Type") != "text/html;charset=utf-8" {
		t.Errorf("runner: %d %s", a.status, a.body)
	}
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local_async", "G@datacenter:ams01", "compound")))
	var jid string
	_ = json.Unmarshal(ret["jid"], &jid)
	if a := do(t, "GET", srv.URL()+"/jobs/"+jid, token, nil); a.status != 200 {
		t.Errorf("GET /jobs with the same token: %d", a.status)
	}
}

func TestBrokenAnswers(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local_async", "G@datacenter:ams01", "compound")))
	var jid string
	_ = json.Unmarshal(ret["jid"], &jid)
	get := func() (*http.Response, []byte, error) {
		req, _ := http.NewRequest("GET", srv.URL()+"/jobs/"+jid, nil)
		req.Header.Set("X-Auth-Token", token)
		// A fresh connection each time: a reused one hides a reset behind a retry.
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	_, whole, err := get()
	if err != nil {
		t.Fatal(err)
	}

	srv.Inject(fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultTruncate})
	resp, b, err := get()
	if err == nil || resp.ContentLength != int64(len(whole)) || len(b) != len(whole)/2 || !bytes.HasPrefix(whole, b) {
		t.Errorf("truncated: %v, %d of %d bytes", err, len(b), len(whole))
	}
	srv.Inject(fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultReset})
	if _, _, err := get(); err == nil {
		t.Error("reset: an answer came")
	}
	srv.Inject(fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultStall})
	req, _ := http.NewRequest("GET", srv.URL()+"/jobs/"+jid, nil)
	req.Header.Set("X-Auth-Token", token)
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := c.Do(req); err == nil {
		t.Error("stall: an answer came")
	}
	// Runner faults spare the local calls.
	srv.Inject(fakesalt.Fault{Path: "/", Client: "runner", Status: 504, Body: fakesalt.PageGatewayTimeout()})
	if a := do(t, "POST", srv.URL()+"/", token, blameCall("local", []string{"web-1"}, "list")); a.status != 200 {
		t.Errorf("local call hit by a runner fault: %d", a.status)
	}
	if a := do(t, "POST", srv.URL()+"/", token, []map[string]any{{"client": "runner", "fun": "manage.present"}}); a.status != 504 {
		t.Errorf("runner fault: %d", a.status)
	}
}

// TestVirtualClock: minions answer a job when the clock the master reads
// says so, not the wall clock.
func TestVirtualClock(t *testing.T) {
	srv := fakesalt.NewServer(lab())
	defer srv.Close()
	clock := fakesalt.NewClock(time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
	srv.UseClock(clock.Now)
	token := login(t, srv)
	ret := returnOf(t, do(t, "POST", srv.URL()+"/", token, blameCall("local_async", "G@datacenter:ams01", "compound")))
	var jid string
	_ = json.Unmarshal(ret["jid"], &jid)
	if jid != "20261201130000000000" {
		t.Errorf("jid %s, want the virtual time", jid)
	}
	back := func() int {
		var j jobsAnswer
		_ = json.Unmarshal(do(t, "GET", srv.URL()+"/jobs/"+jid, token, nil).body, &j)
		return len(j.Info[0].Result)
	}
	if n := back(); n != 1 {
		t.Errorf("at start: %d back, want web-1", n)
	}
	<-clock.After(149 * time.Millisecond)
	if n := back(); n != 1 {
		t.Errorf("after 149 ms: %d back", n)
	}
	<-clock.After(time.Millisecond)
	if n := back(); n != 2 {
		t.Errorf("after 150 ms: %d back, want web-2 too", n)
	}
}
