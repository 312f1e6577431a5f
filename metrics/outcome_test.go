package metrics_test

import (
	"testing"

	"github.com/sift-chatops/sift/metrics"
	"github.com/sift-chatops/sift/triage"
)

// TestOutcomeFollowsTheReport checks the label against what the report
// says of itself, not only its datacenter errors.
func TestOutcomeFollowsTheReport(t *testing.T) {
	halfway := []triage.DatacenterResult{{Name: "ams01", Error: "timed out", Counts: triage.Counts{Answered: 82, Expected: 108}}}
	tests := []struct {
		name string
		r    *triage.Report
		want string
	}{
		{"stopped, no error returned", &triage.Report{Outcome: triage.OutcomeStopped}, metrics.OutcomeCancelled},
		{"minion triage no master answered", &triage.Report{Outcome: triage.OutcomeFailed, Scope: triage.Scope{Kind: triage.ScopeMinion, Name: "web-1"}}, metrics.OutcomeUnreachable},
		{"a datacenter that failed after answers was reached", &triage.Report{Datacenters: halfway}, metrics.OutcomePartial},
		{"complete", &triage.Report{Outcome: triage.OutcomeComplete}, metrics.OutcomeOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := metrics.Outcome(tc.r, nil); got != tc.want {
				t.Errorf("Outcome = %q, want %q", got, tc.want)
			}
		})
	}
}
