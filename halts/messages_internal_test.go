package halts

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

func TestTitleKeepsTheMarker(t *testing.T) {
	tests := []struct {
		name string
		halt Halt
		want string
	}{
		{"short", Halt{Fingerprint: "0123456789abcdef", Name: "salt-failures", Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}},
			"Pipeline halt: salt-failures — datacenter ams01 · halt 0123456789abcdef"},
		{"long name cut, marker kept", Halt{Fingerprint: "0123456789abcdef", Name: strings.Repeat("n", 200), Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}},
			"Pipeline halt: " + strings.Repeat("n", 110) + "… · halt 0123456789abcdef"},
		{"newlines folded", Halt{Fingerprint: "0123456789abcdef", Name: "a\nb", Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}},
			"Pipeline halt: a b — group europe · halt 0123456789abcdef"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Title(tc.halt)
			if got != tc.want || len([]rune(got)) > maxHeaderText {
				t.Errorf("Title = %q (%d runes), want %q", got, len([]rune(got)), tc.want)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{12 * time.Second, "12s"},
		{42*time.Minute + 20*time.Second, "42m"},
		{3*time.Hour + 5*time.Minute, "3h05m"},
		{50 * time.Hour, "2d2h"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestResolvedSummaryKeepsTheReport(t *testing.T) {
	start := time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC)
	h := Halt{Fingerprint: "0123456789abcdef", Name: "release 2025.10.22", Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"},
		FiredAt: start, ResolvedAt: start.Add(42 * time.Minute)}
	r := &triage.Report{Scope: h.Scope, Headline: "commit e4a91b2 explains 72 of 72 failing minions", StartedAt: start}
	posted := formatters.Slack(r, formatters.SlackOptions{Title: Title(h)}).Summary
	var err error
	if h.Summary, err = jsonMarshal(storedMessage(posted)); err != nil {
		t.Fatal(err)
	}
	m, err := resolvedSummary(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Blocks) != len(posted.Blocks)+1 {
		t.Errorf("%d blocks, want the %d posted ones with a new header and a resolution line", len(m.Blocks), len(posted.Blocks))
	}
	b, _ := jsonMarshal(m.Blocks)
	for _, want := range []string{"Resolved: release 2025.10.22 — datacenter ams01 · halt 0123456789abcdef", "Halt cleared after 42m", "commit e4a91b2"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("resolved message lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "Pipeline halt:") {
		t.Error("the old header is still there")
	}
	if !strings.HasPrefix(m.Text, "Resolved after 42m: ") {
		t.Errorf("fallback text %q", m.Text)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
