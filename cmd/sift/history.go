package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/triage"
)

const historySynopsis = `sift history --config FILE [-n N] [--format text|json]

Prints the last N triages Sift ran, for pipeline halts and in Slack, newest
first, from the store at halts.store: when, what triggered it, the scope,
the outcome, the failing minions and the top cause.`

// maxHistory bounds -n: the store keeps every triage, a terminal does not
// need them all.
const maxHistory = 10000

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("history", historySynopsis, stderr)
	cfgPath := flags.String("config", "", "configuration file (default $SIFT_CONFIG)")
	n := flags.Int("n", 20, "how many triages to print, newest first")
	format := flags.String("format", "text", "output format: text or json")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("history takes no arguments, got %q", rest)
	}
	if *n < 1 || *n > maxHistory {
		return usageErr("-n %d: use 1 to %d", *n, maxHistory)
	}
	if *format != "text" && *format != "json" {
		return usageErr("--format %q: use text or json", *format)
	}
	c, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if c.Halts == nil {
		return usageErr("history: the configuration has no halts section (the store is halts.store)")
	}
	// Read-only: history works for a user who may read the store and not
	// write it, and never creates nor migrates one. Only the store's
	// password is read, when it has one.
	secrets, _, err := secretsOf(c, newLogger("warning", "text", stderr))
	if err != nil {
		return err
	}
	store, err := openStore(ctx, c, secrets, true)
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("history: %w", err)}
	}
	defer store.Close()
	recs, err := store.Triages(ctx, *n)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeHistoryJSON(stdout, recs)
	}
	return writeHistoryText(stdout, recs)
}

// historyEntry is a triage record in sift history's JSON output.
type historyEntry struct {
	ID              int64         `json:"id"`
	At              time.Time     `json:"at"`
	Origin          string        `json:"origin"`
	Scope           triage.Scope  `json:"scope"`
	Outcome         string        `json:"outcome"`
	DurationSeconds float64       `json:"duration_seconds"`
	Headline        string        `json:"headline"`
	TopCause        *historyCause `json:"top_cause"`
	Counts          triage.Counts `json:"counts"`
	FailedStates    []string      `json:"failed_states"`
	Halt            string        `json:"halt,omitempty"`
	Error           string        `json:"error,omitempty"`
}

type historyCause struct {
	Kind    triage.CauseKind `json:"kind"`
	Key     string           `json:"key"`
	Summary string           `json:"summary"`
	Minions int              `json:"minions"`
}

func writeHistoryJSON(w io.Writer, recs []halts.TriageRecord) error {
	out := make([]historyEntry, 0, len(recs))
	for _, r := range recs {
		e := historyEntry{
			ID: r.ID, At: r.At, Origin: r.Origin, Scope: r.Scope, Outcome: r.Outcome,
			DurationSeconds: r.Duration.Seconds(), Headline: r.Headline, Counts: r.Counts,
			FailedStates: r.States, Halt: r.Halt, Error: r.Error,
		}
		if e.FailedStates == nil {
			e.FailedStates = []string{}
		}
		if r.TopKind != "" {
			e.TopCause = &historyCause{Kind: r.TopKind, Key: r.TopKey, Summary: r.TopSummary, Minions: r.TopMinions}
		}
		out = append(out, e)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeHistoryText(w io.Writer, recs []halts.TriageRecord) error {
	if len(recs) == 0 {
		_, err := fmt.Fprintln(w, "no triage yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tORIGIN\tSCOPE\tOUTCOME\tFAILING\tTOOK\tTOP CAUSE")
	for _, r := range recs {
		top := "-"
		switch {
		case r.TopKind != "":
			top = fmt.Sprintf("%s (%d minions)", r.TopSummary, r.TopMinions)
		case r.Error != "":
			top = "error: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n",
			r.At.UTC().Format("2006-01-02 15:04:05"), r.Origin, oneLine(r.Scope.String(), 60), r.Outcome,
			r.Counts.Failing, r.Counts.Expected, r.Duration.Round(100*time.Millisecond), oneLine(top, 120))
	}
	return tw.Flush()
}

// oneLine keeps a table cell on one line and at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
