package triage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"
)

// maxHeadlineFailures is how many failed datacenters a headline names; the
// report's datacenter table has them all.
const maxHeadlineFailures = 3

// maxReason bounds an error quoted in a headline.
const maxReason = 160

// OutcomeOf returns how far the triage of r got: r.Outcome, or for a report
// made without one (saved by an older Sift, or built by hand), what its
// datacenter results say.
func OutcomeOf(r *Report) Outcome {
	if r.Outcome != "" {
		return r.Outcome
	}
	return outcomeOf(r.Datacenters)
}

// outcomeOf classifies datacenter results: a datacenter that failed after
// some of its minions answered was reached, and leaves the report partial.
func outcomeOf(results []DatacenterResult) Outcome {
	failed, reached := 0, 0
	for _, dc := range results {
		if dc.Error != "" {
			failed++
		}
		if dc.Error == "" || dc.Counts.Answered > 0 {
			reached++
		}
	}
	switch {
	case failed == 0:
		return OutcomeComplete
	case reached == 0:
		return OutcomeFailed
	}
	return OutcomePartial
}

// dcFailure is a datacenter (or, in a minion triage, a master) whose blame
// call failed, as a headline names it.
type dcFailure struct {
	name, master string
	// reason is the error, short: "connection refused", "timed out".
	reason             string
	answered, expected int
}

// Reason shortens a blame call's error for a headline: the kind of failure
// when it is a common one, else the error's first line without the
// salt-api prefix that repeats the master's name.
func Reason(err error, master string) string {
	var dnsErr *net.DNSError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "unknown host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return "timed out"
	}
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	for _, prefix := range []string{"salt-api " + master + ": ", "salt-api " + master + " "} {
		if master != "" && strings.HasPrefix(s, prefix) {
			s = s[len(prefix):]
			break
		}
	}
	return truncate(s, maxReason)
}

// StoppedHeadline says that a triage did not finish, and how to run it
// again (rerun): a report cut short must not read like an all-clear.
func StoppedHeadline(elapsed time.Duration, rerun string) string {
	return fmt.Sprintf("Sift was stopped before this triage finished (after %s); run it again with %s", humanSeconds(elapsed), rerun)
}

// failedHeadline names every datacenter (or master) no master answered for.
func failedHeadline(fails []dcFailure) string {
	parts := make([]string, 0, maxHeadlineFailures+1)
	for _, f := range firstN(fails, maxHeadlineFailures) {
		if f.name == "" || f.name == f.master {
			parts = append(parts, fmt.Sprintf("%s (%s)", f.master, f.reason))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%s: %s)", f.name, f.master, f.reason))
		}
	}
	if n := len(fails) - maxHeadlineFailures; n > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", n))
	}
	return "no master answered: " + strings.Join(parts, ", ")
}

// partialSuffix says, after the headline of what did answer, which
// datacenters (or masters) did not and why.
func partialSuffix(what string, answered, total int, fails []dcFailure) string {
	parts := make([]string, 0, maxHeadlineFailures+1)
	for _, f := range firstN(fails, maxHeadlineFailures) {
		switch {
		case f.name == "" || f.name == f.master:
			parts = append(parts, fmt.Sprintf("%s failed: %s", f.master, f.reason))
		case f.answered > 0:
			parts = append(parts, fmt.Sprintf("%s incomplete (%d of %d minions answered): %s %s", f.name, f.answered, f.expected, f.master, f.reason))
		default:
			parts = append(parts, fmt.Sprintf("%s failed: %s %s", f.name, f.master, f.reason))
		}
	}
	if n := len(fails) - maxHeadlineFailures; n > 0 {
		parts = append(parts, fmt.Sprintf("%d more failed", n))
	}
	return fmt.Sprintf("; partial: %d of %d %s answered; %s", answered, total, what, strings.Join(parts, ", "))
}

// humanSeconds writes a duration as people read it in a sentence: "350 ms",
// "28 s", "2 min 5 s".
func humanSeconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	}
	d = d.Round(time.Second)
	m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
	if s == 0 {
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d min %d s", m, s)
}

// DefaultRerun says how to run the triage of s again from a terminal.
func DefaultRerun(s Scope) string {
	kind := string(s.Kind)
	if s.Kind == ScopeDatacenter {
		kind = "dc"
	}
	return "`sift triage " + kind + " " + s.Name + "`"
}
