package formatters

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// hostile is text a minion, a commit or a state comment could carry: Slack
// control characters, a broadcast, a fake mention and link, code fences,
// a terminal escape, and multi-byte runes.
const hostile = "<!channel> & <@U999> <https://evil.example|click> ``` `x` \x1b[31mred\x1b[0m ünïcødé 🔥 a&b<c>d "

func long(n int) string {
	return strings.Repeat(hostile, n/len(hostile)+1)[:n]
}

// hugeReport has 10 000 causes over 100 000 minions in 500 datacenters,
// with hostile text everywhere. The first twelve causes, those the thread
// can show, carry the long evidence: 5 000-character summaries, comments and
// messages, a thousand paths, every datacenter.
func hugeReport() *triage.Report {
	const causes, minions, dcs = 10000, 100000, 500
	dcNames := make([]string, dcs)
	results := make([]triage.DatacenterResult, dcs)
	for i := range dcNames {
		dcNames[i] = fmt.Sprintf("dc%03d-%s", i, long(60))
		results[i] = triage.DatacenterResult{
			Name: dcNames[i], Master: "master-" + long(80),
			Counts:   triage.Counts{Expected: 200, Answered: 180, Healthy: 100, Failing: 80, Unreachable: 20},
			Duration: time.Duration(i) * time.Second,
		}
		if i%3 == 0 {
			results[i].Error = long(5000)
		}
	}
	ids := make([]string, minions)
	for i := range ids {
		ids[i] = fmt.Sprintf("minion-%06d.%s", i, long(40))
	}
	r := &triage.Report{
		Scope:       triage.Scope{Kind: triage.ScopeGroup, Name: long(300)},
		Headline:    long(5000),
		StartedAt:   started,
		Duration:    5 * time.Minute,
		Counts:      triage.Counts{Expected: minions, Answered: 90000, Failing: 80000, Healthy: 10000, Unreachable: 10000},
		Datacenters: results,
	}
	// The long lists are shared between causes: 10 000 copies would take
	// gigabytes and test nothing more.
	var paths, messages []string
	var failedStates []triage.Signature
	for range 1000 {
		paths = append(paths, long(400))
	}
	for range 100 {
		messages = append(messages, long(5000))
		failedStates = append(failedStates, triage.Signature{Fun: long(50), StateID: long(500), SLS: long(100), Template: long(500)})
	}
	kinds := triage.CauseKinds
	for i := range causes {
		c := triage.Cause{
			Kind:        kinds[i%len(kinds)],
			Key:         long(500),
			Summary:     long(5000),
			Minions:     5,
			MinionIDs:   ids[i*5 : i*5+5],
			Datacenters: dcNames,
			Evidence: triage.Evidence{
				CommitID: long(200), AuthorName: long(1000), AuthorEmail: "dev@example.com",
				CommitDatetime: long(300), CommitURL: "https://git.example.com/c?id=1&x=" + long(50),
				Version: long(300), PreviousVersion: long(300), ServiceURL: long(1000),
				Fun: long(300), StateID: long(300), SLS: long(300), Comment: long(5000), CompileState: long(300),
				LastSuccess: long(300), FirstFailure: long(300),
				Paths: paths, Messages: messages, FailedStates: failedStates,
			},
		}
		if i >= 12 {
			// Past the causes the thread shows, evidence this long would
			// make the attached JSON hundreds of megabytes and test
			// nothing more.
			c.Key, c.Summary, c.Datacenters = long(80), long(200), dcNames[:3]
			c.Evidence = triage.Evidence{CommitID: long(40), AuthorName: long(30), Fun: long(30), Comment: long(300), Messages: []string{long(200)}}
		}
		r.Causes = append(r.Causes, c)
	}
	// The top causes explain most minions, the way a real outage looks.
	r.Causes[0].Minions, r.Causes[0].MinionIDs = 60000, ids[:60000]
	r.Causes[4].Kind, r.Causes[4].Minions, r.Causes[4].MinionIDs = triage.CauseUnreachable, 30000, ids[60000:90000]
	r.Causes[5].Kind, r.Causes[5].Minions, r.Causes[5].MinionIDs = triage.CauseModuleMissing, 10000, ids[90000:]
	return r
}

// hugeSlack is the huge report and its Slack rendering, made once: under
// the race detector the rendering (its JSON file above all) takes seconds,
// and rendering is pure.
var hugeSlack = sync.OnceValues(func() (*triage.Report, SlackReport) {
	r := hugeReport()
	return r, Slack(r, hugeOptions)
})

var hugeOptions = SlackOptions{
	RequestedBy:    "U07SRE0001",
	AuthorMentions: map[string]string{"dev@example.com": "U0DEV0001", "x@example.com": "<!channel>"},
	Title:          long(1000),
	ReportID:       "r0123456",
}

func TestSlackHugeReportStaysInsideLimits(t *testing.T) {
	r, s := hugeSlack()
	checkSlackReport(t, s)

	if s.File == nil {
		t.Fatal("File is nil for a report that cannot fit in the thread")
	}
	if !strings.HasPrefix(s.File.Name, "sift-report-group-") || !strings.HasSuffix(s.File.Name, "-20250314T092653Z.json") {
		t.Errorf("File.Name = %q", s.File.Name)
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(s.File.Content), &decoded); err != nil {
		t.Fatalf("File.Content is not JSON: %v", err)
	}
	if got := len(decoded["causes"].([]any)); got != len(r.Causes) {
		t.Errorf("attached report has %d causes, want %d", got, len(r.Causes))
	}

	all := s.Summary.Text
	for _, m := range s.Thread {
		all += slackJSONString(t, m)
	}
	for _, want := range []string{"9,990 more causes — full report attached", "more datacenters — full report attached", "Unreachable minions* — *30,000* minions", "Blame module missing* — *10,000* minions"} {
		if !strings.Contains(all, want) {
			t.Errorf("thread does not say %q", want)
		}
	}
	if strings.Contains(all, "<!channel>") {
		t.Error("a broadcast from the report reached Slack unescaped")
	}
	if got := len(s.Thread); got > 25 {
		t.Errorf("thread has %d messages; a huge report should not flood the thread", got)
	}
}

func TestSlackProgressAndErrorStayInsideLimits(t *testing.T) {
	scope := triage.Scope{Kind: triage.ScopeGroup, Name: long(1000)}
	running := make([]string, 1000)
	for i := range running {
		running[i] = long(200)
	}
	o := SlackOptions{RequestedBy: long(100), Title: long(1000)}
	checkMessage(t, "progress", SlackProgress(scope, Progress{DatacentersDone: 1, DatacentersTotal: 1001, MinionsAnswered: 5, MinionsExpected: 100000, Elapsed: time.Hour, Running: running}, o))
	checkMessage(t, "error", SlackError(scope, long(100000), o))
}

func slackJSONString(t *testing.T, m SlackMessage) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Text string }
	_ = json.Unmarshal(b, &s)
	// Decode the blocks back so that the texts are compared unquoted.
	var raw any
	_ = json.Unmarshal(b, &raw)
	var out strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			out.WriteString(v + "\n")
		}
	}
	walk(raw)
	return out.String()
}

func TestTextHugeReport(t *testing.T) {
	out := Text(hugeReport())
	if !strings.Contains(out, "... and 9980 more causes; use --format json for all") {
		t.Error("text report does not say how many causes it left out")
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a terminal escape sequence reached the text report")
	}
	if n := strings.Count(out, "\n#"); n != maxTextCauses {
		t.Errorf("text report lists %d causes, want %d", n, maxTextCauses)
	}
}
