package metrics

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sift-chatops/sift/triage"
)

// DefaultTrackedOffenders bounds the states tallied in memory: far more
// than are exported, so that a state climbing into the top is already
// counted when it gets there.
const DefaultTrackedOffenders = 1000

// maxStateLabel caps a state's label value: the function and state id (or
// the sls of a compile error), never the comment, which varies per minion.
const maxStateLabel = 120

var offenderDesc = prometheus.NewDesc("sift_repeat_offender_triages",
	"Triages whose causes name a failed state, for the states named most often (the top N only).",
	[]string{"state"}, nil)

// Offenders tallies, per failed state, the triages that named it, and
// exports the top N as sift_repeat_offender_triages. Memory is bounded:
// when the tally is full, a new state replaces one of the least counted.
type Offenders struct {
	top, tracked int

	mu     sync.Mutex
	counts map[string]int
}

// NewOffenders returns a tally that exports the top states among at most
// tracked ones; zeros mean the defaults.
func NewOffenders(top, tracked int) *Offenders {
	if top <= 0 {
		top = DefaultTopOffenders
	}
	if tracked <= 0 {
		tracked = DefaultTrackedOffenders
	}
	return &Offenders{top: top, tracked: max(tracked, top), counts: map[string]int{}}
}

// Add counts one triage that named states.
func (o *Offenders) Add(states []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range states {
		o.addLocked(s, 1)
	}
}

// Seed adds counts kept from earlier runs, e.g. the stored triages, so the
// ranking survives a restart.
func (o *Offenders) Seed(counts map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		if counts[s] > 0 {
			o.addLocked(s, counts[s])
		}
	}
}

func (o *Offenders) addLocked(s string, n int) {
	if _, ok := o.counts[s]; !ok && len(o.counts) >= o.tracked {
		victim, least := "", 0
		for k, c := range o.counts {
			if victim == "" || c < least || c == least && k < victim {
				victim, least = k, c
			}
		}
		delete(o.counts, victim)
	}
	o.counts[s] += n
}

// Top returns the n most named states and their counts, most named first.
func (o *Offenders) Top(n int) []StateCount {
	o.mu.Lock()
	out := make([]StateCount, 0, len(o.counts))
	for s, c := range o.counts {
		out = append(out, StateCount{State: s, Triages: c})
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(a, b StateCount) int {
		if c := cmp.Compare(b.Triages, a.Triages); c != 0 {
			return c
		}
		return strings.Compare(a.State, b.State)
	})
	return out[:min(n, len(out))]
}

// StateCount is a failed state and how many triages named it.
type StateCount struct {
	State   string
	Triages int
}

// Describe implements prometheus.Collector.
func (o *Offenders) Describe(ch chan<- *prometheus.Desc) { ch <- offenderDesc }

// Collect implements prometheus.Collector: only the top states are
// exported, which bounds the series whatever the fleet's failures.
func (o *Offenders) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range o.Top(o.top) {
		ch <- prometheus.MustNewConstMetric(offenderDesc, prometheus.GaugeValue, float64(sc.Triages), sc.State)
	}
}

// FailedStates returns the distinct failed states a report's causes name:
// the failed-state causes themselves and the states most common among the
// minions of each commit, rollback, release or service cause. Each is
// labelled by function and state id ("file.managed /etc/nginx/nginx.conf"),
// or "compile_error <sls>".
func FailedStates(r *triage.Report) []string {
	var out []string
	add := func(sig triage.Signature) {
		if l := StateLabel(sig); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	for _, c := range r.Causes {
		if !c.Kind.Explains() {
			continue
		}
		ev := c.Evidence
		if c.Kind == triage.CauseFailedState {
			if ev.Fun == "" {
				add(triage.Signature{SLS: ev.CompileState})
			} else {
				add(triage.Signature{Fun: ev.Fun, StateID: ev.StateID, SLS: ev.SLS})
			}
		}
		for _, sig := range ev.FailedStates {
			add(sig)
		}
	}
	slices.Sort(out)
	return out
}

// StateLabel turns a failed-state signature into its label value: the
// function and state id, or "compile_error" and the sls, never the
// message, which varies per minion.
func StateLabel(sig triage.Signature) string {
	var label string
	switch {
	case sig.Fun != "":
		label = strings.TrimSpace(sig.Fun + " " + sig.StateID)
	case sig.SLS != "":
		label = "compile_error " + sig.SLS
	default:
		return ""
	}
	if r := []rune(label); len(r) > maxStateLabel {
		label = string(r[:maxStateLabel-1]) + "…"
	}
	return label
}
