package halts

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// TriageColumns are the columns ScanTriage reads, in its order; both SQL
// stores keep triages in one table of this shape.
const TriageColumns = `id, at, origin, scope_kind, scope_name, outcome, duration_ns, headline,
		top_kind, top_key, top_summary, top_minions, counts, states, halt, error`

// ScanTriage decodes one row of TriageColumns through scan (sql.Rows.Scan
// or pgx.Rows.Scan).
func ScanTriage(scan func(dest ...any) error) (TriageRecord, error) {
	var r TriageRecord
	var at, dur int64
	var kind, topKind, counts, states string
	if err := scan(&r.ID, &at, &r.Origin, &kind, &r.Scope.Name, &r.Outcome, &dur, &r.Headline,
		&topKind, &r.TopKey, &r.TopSummary, &r.TopMinions, &counts, &states, &r.Halt, &r.Error); err != nil {
		return r, err
	}
	r.At, r.Duration = FromNanos(at), time.Duration(dur)
	r.Scope.Kind, r.TopKind = triage.ScopeKind(kind), triage.CauseKind(topKind)
	if err := json.Unmarshal([]byte(counts), &r.Counts); err != nil {
		return r, fmt.Errorf("triage %d counts: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(states), &r.States); err != nil {
		return r, fmt.Errorf("triage %d states: %w", r.ID, err)
	}
	return r, nil
}

// Nanos is how the SQL stores keep a time: Unix nanoseconds, 0 for none.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos reads a time kept by Nanos, in UTC.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
