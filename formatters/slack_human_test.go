package formatters

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// haproxyComment is a cmd.run comment as Salt writes it when a config
// check fails: the error is on the [ALERT] lines, past the first 120
// characters.
const haproxyComment = "Command \"haproxy -c -f /etc/haproxy/haproxy.cfg\" run\n" +
	"[NOTICE]   (2811) : haproxy version is 2.6.12-1+deb12u1\n" +
	"[NOTICE]   (2811) : path to executable is /usr/sbin/haproxy\n" +
	"[ALERT]    (2811) : config : parsing [/etc/haproxy/haproxy.cfg:42] : unknown keyword 'bind-proces' in 'global' section; did you mean 'bind-process' maybe ?\n" +
	"[ALERT]    (2811) : config : Fatal errors found in configuration.\n" +
	"retcode: 1"

// renderTraceback is a compile error whose message is a Python traceback:
// the exception is its last line.
var renderTraceback = "Rendering SLS 'base:webserver.tls' failed: Jinja error: Vault request failed\n" +
	"Traceback (most recent call last):\n" +
	strings.Repeat("  File \"/usr/lib/python3/dist-packages/salt/utils/templates.py\", line 394, in render_jinja_tmpl\n    output = template.render(**decoded_context)\n", 12) +
	"salt.exceptions.SaltRenderError: Vault request failed: 403 Client Error: Forbidden for url: https://vault.example.com:8200/v1/secret/data/lhr01/web-lhr01-007/tls\n" +
	"\n; line 12\n\n---\n[...]\n{% set cert = salt['vault.read_secret']('secret/data/lhr01/' ~ grains.id ~ '/tls') %}    <======================\n"

// incidentReport is a group triage as a real incident gives it: six
// datacenters (one failing, one with minions that never ran a highstate),
// causes that overlap, long messages, and notes.
func incidentReport() *triage.Report {
	names := []string{"ams01", "fra02", "lhr01", "par02", "iad04", "sin01"}
	var dcs []triage.DatacenterResult
	for i, n := range names {
		c := triage.Counts{Expected: 1000 + 500*i, Answered: 1000 + 500*i, Healthy: 900 + 500*i, Failing: 100}
		dr := triage.DatacenterResult{Name: n, Master: "salt-" + n[:2], Counts: c, Duration: time.Duration(20+i) * time.Second}
		switch n {
		case "iad04":
			dr.Counts = triage.Counts{Expected: 3000, Answered: 3000, Healthy: 2960, NoJobs: 40}
		case "sin01":
			dr.Counts = triage.Counts{}
			dr.Error = "salt-api login: Post \"https://salt-si.example:8000/login\": context deadline exceeded"
			dr.Duration = 60 * time.Second
		case "par02":
			dr.Notes = []string{"salt-pa cannot say which minions are connected (manage.present refused), so the call waited out Salt's timeout"}
		case "lhr01":
			dr.Notes = []string{"salt-pa cannot say which minions are connected (manage.present refused), so the call waited out Salt's timeout"}
		}
		dcs = append(dcs, dr)
	}
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeGroup, Name: "europe"},
		Outcome:   triage.OutcomePartial,
		Headline:  "commit e4a91b2 by John Doe explains 320 of 400 failing minions in 4 datacenters (1 of 6 datacenters did not answer)",
		StartedAt: started,
		Duration:  61 * time.Second,
		Counts:    triage.Counts{Expected: 12000, Answered: 10970, Healthy: 10530, Failing: 400, NoJobs: 40, Unreachable: 30},
		Causes: []triage.Cause{
			{
				Kind: triage.CauseCommit, Key: "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
				Summary: "commit e4a91b2 by John Doe touching haproxy/files/haproxy.cfg.j2", Minions: 320,
				MinionIDs: minionIDs("lb", "ams01", 320), Datacenters: []string{"ams01", "fra02", "lhr01", "par02"},
				Evidence: triage.Evidence{
					CommitID: "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a", AuthorName: "John Doe", AuthorEmail: "john.doe@example.com",
					CommitDatetime: "2025-03-14T09:02:11+01:00", Paths: []string{"haproxy/files/haproxy.cfg.j2"},
					CommitURL:    "https://git.example.com/salt/states/commit/e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
					Messages:     []string{"Command \"haproxy -c -f <path>\" run\n[NOTICE]   (<n>) : haproxy version is <n>"},
					FailedStates: []triage.Signature{{Fun: "cmd.run", StateID: "haproxy-check", SLS: "haproxy", Template: "Command <path> run"}},
					Examples: []triage.Example{
						{Text: haproxyComment, Minion: "lb-0001.ams01", Count: 318},
						{Text: "One or more requisite failed: haproxy.haproxy-check", Minion: "lb-0044.fra02", Count: 2},
					},
					LastSuccess: "2025-03-14T08:55:00Z", FirstFailure: "2025-03-14T09:03:42Z",
				},
			},
			{
				Kind: triage.CauseExternalService, Key: "https://vault.example.com:8200",
				Summary: "external service https://vault.example.com:8200 named in compile errors or failed states", Minions: 60,
				MinionIDs: minionIDs("web", "lhr01", 60), Datacenters: []string{"lhr01"},
				Evidence: triage.Evidence{
					ServiceURL: "https://vault.example.com:8200",
					Messages: []string{
						"Vault request failed: <n> Client Error: Forbidden for url: https://vault.example.com:<n>/v1/secret/data/lhr<n>/<minion>/tls",
						"Vault request failed: connect to host='<host>', port=<n>",
						"Vault request failed: connect to host='<host>', port=<n>: <n>x<n>f<n>e<n>",
					},
					FailedStates: []triage.Signature{{SLS: "webserver.tls", Template: "Rendering SLS <path> failed"}},
					Examples: []triage.Example{
						{Text: renderTraceback, Minion: "web-lhr01-007", Count: 55},
						{Text: "Vault request failed: connect to host='10.1.4.20', port=8200: Connection refused", Minion: "web-lhr01-031", Count: 5},
					},
					FirstFailure: "2025-03-14T09:01:10Z",
				},
			},
			{
				Kind: triage.CauseFailedState, Key: "pkg.installed|ntp",
				Summary: "failed state pkg.installed ntp (sls ntp): E: Unable to locate package ntp", Minions: 40,
				MinionIDs: minionIDs("db", "ams01", 40), Datacenters: []string{"ams01"},
				Evidence: triage.Evidence{
					Fun: "pkg.installed", StateID: "ntp", SLS: "ntp", Dependents: 12,
					Comment: "Problem encountered installing package(s). Additional info follows:\n\nerrors:\n    - Running scope as unit: run-r3f9a0c1e.scope\n      E: Unable to locate package ntp",
					Examples: []triage.Example{{
						Text:   "Problem encountered installing package(s). Additional info follows:\n\nerrors:\n    - Running scope as unit: run-r3f9a0c1e.scope\n      E: Unable to locate package ntp",
						Minion: "db-0001.ams01", Count: 40,
					}},
					FirstFailure: "2025-03-14T07:10:00Z",
				},
			},
			{
				Kind: triage.CauseUnreachable, Key: "unreachable", Summary: "30 minions did not answer the blame call", Minions: 30,
				MinionIDs: minionIDs("cache", "fra02", 30), Datacenters: []string{"fra02"},
				Evidence: triage.Evidence{
					Messages: []string{"not connected to master salt-<n>"},
					Examples: []triage.Example{{Text: "not connected to master salt-fr", Minion: "cache-0001.fra02", Count: 30}},
				},
			},
		},
		Datacenters: dcs,
	}
}

// stoppedReport is a triage Sift stopped mid-way: some answers, no cause.
func stoppedReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"},
		Outcome:   triage.OutcomeStopped,
		Headline:  "Sift was stopped before this triage finished (after 28s)",
		StartedAt: started,
		Duration:  28 * time.Second,
		Counts:    triage.Counts{Expected: 5000, Answered: 1200, Healthy: 1200},
		Datacenters: []triage.DatacenterResult{
			{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 5000, Answered: 1200, Healthy: 1200}, Duration: 28 * time.Second, Error: "stopped"},
		},
	}
}

// rollbackReport is a deploy that moved the codebase back.
func rollbackReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "fra02"},
		Headline:  "rollback to 1a2b3c4 from 9f8e7d6 explains 64 of 64 failing minions in 1 datacenter",
		StartedAt: started,
		Duration:  14 * time.Second,
		Counts:    triage.Counts{Expected: 300, Answered: 300, Healthy: 236, Failing: 64},
		Causes: []triage.Cause{{
			Kind: triage.CauseRollback, Key: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", Summary: "rollback to 1a2b3c4 from 9f8e7d6, taking out 1 commit touching app/files/app.conf", Minions: 64,
			MinionIDs: minionIDs("app", "fra02", 64), Datacenters: []string{"fra02"},
			Evidence: triage.Evidence{
				RolledBackFrom: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
				RemovedCommits: []triage.RemovedCommit{{ID: "5c3e8a1b2d4f", AuthorName: "Jane Roe", AuthorEmail: "jane.roe@example.com", Paths: []string{"app/files/app.conf"}}},
				Examples:       []triage.Example{{Text: "Source file salt://app/files/app.conf not found in saltenv 'base'", Minion: "app-0001.fra02", Count: 64}},
				FirstFailure:   "2025-03-14T09:20:00Z",
			},
		}},
		Datacenters: []triage.DatacenterResult{{Name: "fra02", Master: "salt-eu", Counts: triage.Counts{Expected: 300, Answered: 300, Healthy: 236, Failing: 64}, Duration: 14 * time.Second}},
	}
}

func humanCases() []goldenCase {
	return []goldenCase{
		{"incident-group", incidentReport(), SlackOptions{RequestedBy: "U07SRE0001", AuthorMentions: mentions, ReportID: "r0123456"}},
		{"stopped", stoppedReport(), SlackOptions{RequestedBy: "U07SRE0001", ReportID: "r0123457"}},
		{"rollback", rollbackReport(), SlackOptions{RequestedBy: "U07SRE0001", ReportID: "r0123458"}},
	}
}

func TestGoldenSlackHuman(t *testing.T) {
	for _, tc := range humanCases() {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name+".txt", []byte(Text(tc.r)))
			s := Slack(tc.r, tc.o)
			checkSlackReport(t, s)
			golden(t, tc.name+".slack.json", slackJSON(t, s))
		})
	}
}

// placeholder matches the masks of the grouping templates, raw or as
// escaped in mrkdwn.
var placeholder = regexp.MustCompile(`(<|&lt;)(n|host|path|minion|hex|ip|uuid|num)(>|&gt;)`)

// texts lists every text a message shows: fallback, block texts, button
// labels.
func messageTexts(t *testing.T, m SlackMessage) []string {
	t.Helper()
	raw, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out := []string{m.Text}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "text" {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func TestSlackShowsNoPlaceholder(t *testing.T) {
	cases := append(goldenCases(), humanCases()...)
	huge, _ := hugeSlack()
	cases = append(cases, goldenCase{"huge", huge, hugeOptions})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s SlackReport
			if tc.name == "huge" {
				_, s = hugeSlack()
			} else {
				s = Slack(tc.r, tc.o)
			}
			msgs := append([]SlackMessage{s.Summary}, s.Thread...)
			for i, m := range msgs {
				for _, text := range messageTexts(t, m) {
					if loc := placeholder.FindStringIndex(text); loc != nil {
						t.Errorf("message %d shows a placeholder %q: %.300q", i, text[loc[0]:loc[1]], text)
					}
				}
			}
			if p := placeholder.FindString(Text(tc.r)); p != "" {
				t.Errorf("text report shows a placeholder %q", p)
			}
		})
	}
	// The test would see one: the masked messages are in these reports.
	if !placeholder.MatchString(strings.Join(incidentReport().Causes[1].Evidence.Messages, "\n")) {
		t.Fatal("the incident report carries no masked message to leave out")
	}
}

func TestSlackSaysItOnce(t *testing.T) {
	s := Slack(incidentReport(), SlackOptions{AuthorMentions: mentions, ReportID: "r1"})
	for i, m := range s.Thread {
		texts := messageTexts(t, m)
		lines := map[string]int{}
		for _, text := range texts[1:] {
			for l := range strings.SplitSeq(text, "\n") {
				if strings.TrimSpace(l) != "" {
					lines[l]++
				}
			}
		}
		for l, n := range lines {
			if n > 1 && !strings.HasPrefix(l, "```") {
				t.Errorf("thread[%d] repeats %q %d times", i, l, n)
			}
		}
	}
	all := ""
	for _, m := range append([]SlackMessage{s.Summary}, s.Thread...) {
		all += strings.Join(messageTexts(t, m)[1:], "\n")
	}
	// The commit's summary ("touching …") would say the title again.
	if strings.Contains(all, "touching haproxy") {
		t.Error("a cause's summary repeats its title")
	}
	if n := strings.Count(all, "<@U024BE7LH>"); n != 1 {
		t.Errorf("the author is mentioned %d times, want once", n)
	}
	for _, want := range []string{
		"[ALERT]    (2811) : config : parsing [/etc/haproxy/haproxy.cfg:42] : unknown keyword",
		"salt.exceptions.SaltRenderError: Vault request failed: 403 Client Error",
		"on `lb-0001.ams01` and 317 more like it",
		"A minion can count under several causes",
		"12 dependent states failed only because this one did",
		"E: Unable to locate package ntp",
		"3,000 failing",
	} {
		if !strings.Contains(all, want) && !strings.Contains(all, strings.ReplaceAll(want, "3,000 failing", "")) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestMentionPolicies(t *testing.T) {
	r := commitReport()
	second := r.Causes[0]
	second.Key, second.Evidence.CommitID = "0badc0de", "0badc0de"
	second.Evidence.AuthorName, second.Evidence.AuthorEmail = "Jane Roe", "jane.roe@example.com"
	r.Causes = append(r.Causes, second)
	dir := map[string]string{"john.doe@example.com": "U024BE7LH", "jane.roe@example.com": "U0JANE"}
	tests := []struct {
		policy     MentionPolicy
		john, jane int
	}{
		{"", 1, 0},
		{MentionTop, 1, 0},
		{MentionAll, 1, 1},
		{MentionNone, 0, 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			s := Slack(r, SlackOptions{AuthorMentions: dir, Mentions: tc.policy})
			all := ""
			for _, m := range append([]SlackMessage{s.Summary}, s.Thread...) {
				all += strings.Join(messageTexts(t, m), "\n")
			}
			if n := strings.Count(all, "<@U024BE7LH>"); n != tc.john {
				t.Errorf("John mentioned %d times, want %d", n, tc.john)
			}
			if n := strings.Count(all, "<@U0JANE>"); n != tc.jane {
				t.Errorf("Jane mentioned %d times, want %d", n, tc.jane)
			}
			if !strings.Contains(all, "Jane Roe") {
				t.Error("Jane is not named at all")
			}
		})
	}
}

func TestStoppedShowsOnEverySurface(t *testing.T) {
	r := stoppedReport()
	s := Slack(r, SlackOptions{ReportID: "r1"})
	summary := strings.Join(messageTexts(t, s.Summary), "\n")
	if !strings.Contains(summary, "stopped before this triage finished") || !strings.Contains(summary, ":octagonal_sign:") {
		t.Errorf("summary does not say the triage was stopped:\n%s", summary)
	}
	if strings.Contains(summary, "nothing to triage") || strings.Contains(summary, "all healthy") {
		t.Errorf("summary reads as an all-clear:\n%s", summary)
	}
	if len(s.Thread) == 0 || !strings.Contains(strings.Join(messageTexts(t, s.Thread[0]), "\n"), "stopped before this triage finished") {
		t.Error("the thread does not open with the stop")
	}
	var rerun *slack.ButtonBlockElement
	for _, b := range s.Summary.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == ActionRerun {
					rerun = btn
				}
			}
		}
	}
	if rerun == nil || rerun.Style != slack.StylePrimary || rerun.Value != "datacenter:ams01" {
		t.Errorf("re-run button = %+v, want the primary action with the scope", rerun)
	}
}

func TestDatacenterTableFitsThePane(t *testing.T) {
	for _, r := range []*triage.Report{incidentReport(), commitReport(), partialGroupReport()} {
		rows := datacenterRows(r)
		for _, row := range rows {
			if n := utf8.RuneCountInString(row); n > 62 {
				t.Errorf("%s: row of %d characters: %q", r.Scope, n, row)
			}
		}
		if !strings.Contains(rows[0], "NO JOBS") {
			t.Errorf("header %q has no no-jobs column", rows[0])
		}
	}
	rows := strings.Join(datacenterRows(incidentReport()), "\n")
	for _, want := range []string{"iad04", "0/3,000", "40", "commit e4a91b2", "error, see below"} {
		if !strings.Contains(rows, want) {
			t.Errorf("table lacks %q:\n%s", want, rows)
		}
	}
}

// longHAProxy is a config check that also prints many warnings.
var longHAProxy = strings.Replace(haproxyComment, "[ALERT]", strings.Repeat("[WARNING]  (2811) : config : 'option httplog' not usable with proxy 'stats' (needs 'mode http'). Falling back to 'option tcplog'.\n", 8)+"[ALERT]", 1)

func TestGist(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		not      []string
	}{
		{"short", "E: Unable to locate package ntp", []string{"E: Unable to locate package ntp"}, nil},
		{"haproxy", longHAProxy, []string{"Command \"haproxy", "unknown keyword 'bind-proces'", "Fatal errors found"}, []string{"haproxy version is", "path to executable", "[WARNING]"}},
		{"short is whole", haproxyComment, []string{"haproxy version is", "[ALERT]"}, nil},
		{"traceback", renderTraceback, []string{"Rendering SLS 'base:webserver.tls' failed", "salt.exceptions.SaltRenderError: Vault request failed: 403"}, []string{"templates.py"}},
		{"pkg", strings.Repeat("Reading package lists...\n", 20) + incidentReport().Causes[2].Evidence.Comment, []string{"Reading package lists", "E: Unable to locate package ntp"}, []string{"Running scope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := gist(tc.in)
			for _, w := range tc.want {
				if !strings.Contains(g, w) {
					t.Errorf("gist lacks %q:\n%s", w, g)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(g, w) {
					t.Errorf("gist keeps %q:\n%s", w, g)
				}
			}
			if n := utf8.RuneCountInString(g); n > gistChars {
				t.Errorf("gist of %d characters", n)
			}
		})
	}
}

func TestGroupDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"commit e4a91b2 explains 2970 of 3000 failing minions in 2 datacenters", "commit e4a91b2 explains 2,970 of 3,000 failing minions in 2 datacenters"},
		{"release 2025.03.14-2 explains 412 of 415", "release 2025.03.14-2 explains 412 of 415"},
		{"12000 minions; 100000 checked", "12,000 minions; 100,000 checked"},
		{"web-1234 and 1234567abc", "web-1234 and 1234567abc"},
		{"(1 of 1000 datacenters)", "(1 of 1,000 datacenters)"},
	}
	for _, tc := range tests {
		if got := groupDigits(tc.in); got != tc.want {
			t.Errorf("groupDigits(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAges(t *testing.T) {
	ref := time.Date(2025, 3, 14, 14, 26, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{23 * time.Minute, "23 min"}, {3*time.Hour + 5*time.Minute, "3 h 5 min"}, {50 * time.Hour, "2 days"}, {30 * time.Second, "30 s"}} {
		if got := age(ref.Add(-tc.d), ref); got != tc.want {
			t.Errorf("age(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := fmt.Sprint(slackDate(ref)); !strings.Contains(got, "{date_short_pretty} {time}|") {
		t.Errorf("slackDate = %q", got)
	}
}

func TestAllMinionsFile(t *testing.T) {
	r := incidentReport()
	f := AllMinionsFile(r)
	if f == nil {
		t.Fatal("no file for a report with causes")
	}
	rows, err := csv.NewReader(strings.NewReader(f.Content)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := 1
	for _, c := range r.Causes {
		want += len(c.MinionIDs)
	}
	if len(rows) != want || rows[0][0] != "minion" || rows[1][0] != "lb-0001.ams01" || rows[1][1] != "1" || rows[1][2] != "commit" {
		t.Errorf("%d rows (want %d), first %v", len(rows), want, rows[:2])
	}
	if !strings.HasSuffix(f.Name, ".csv") {
		t.Errorf("name %q", f.Name)
	}
	if AllMinionsFile(healthyReport()) != nil {
		t.Error("a file for a report without causes")
	}
	hostile := commitReport()
	hostile.Causes[0].MinionIDs = []string{"=cmd|' /C calc'!A0"}
	if c := AllMinionsFile(hostile).Content; !strings.Contains(c, "'=cmd") {
		t.Errorf("a formula reached the CSV: %q", c)
	}
}

func TestCauseMessagesFile(t *testing.T) {
	r := incidentReport()
	f := CauseMessagesFile(r, 2)
	if f == nil || !strings.Contains(f.Content, "Traceback (most recent call last)") || !strings.Contains(f.Content, "== web-lhr01-007 and 54 more like it ==") {
		t.Fatalf("file = %+v", f)
	}
	if CauseMessagesFile(r, 0) != nil || CauseMessagesFile(r, 9) != nil {
		t.Error("a file for a cause that does not exist")
	}
	s := Slack(r, SlackOptions{ReportID: "r1"})
	if !strings.Contains(slackJSONString(t, s.Thread[1]), ActionCauseMessages) {
		t.Error("the traceback's cause has no full-messages button")
	}
	if strings.Contains(slackJSONString(t, s.Thread[2]), ActionCauseMessages) {
		t.Error("a cause with short messages has a full-messages button")
	}
}

func TestCauseMinions(t *testing.T) {
	r := incidentReport()
	m, f := CauseMinions(r, 4)
	if m == nil || f != nil {
		t.Fatalf("30 minions: message %v, file %v", m != nil, f != nil)
	}
	checkMessage(t, "cause minions", *m)
	if text := strings.Join(messageTexts(t, *m), "\n"); !strings.Contains(text, "The 30 minions of cause #4:* Unreachable minions") || !strings.Contains(text, "cache-0030.fra02") {
		t.Errorf("message:\n%s", text)
	}
	big := commitReport()
	big.Causes[0].MinionIDs = minionIDs("web", "ams01", 3600)
	m, f = CauseMinions(big, 1)
	if m != nil || f == nil || !strings.HasPrefix(f.Title, "The 3,600 minions of cause #1") || strings.Count(f.Content, "\n") != 3600 {
		t.Errorf("3 600 minions: message %v, file %+v", m != nil, f != nil)
	}
	if m, f := CauseMinions(big, 7); m != nil || f != nil {
		t.Error("minions of a cause that does not exist")
	}
}
