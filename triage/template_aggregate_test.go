package triage

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// aggregateCorpus runs answers of the given corpus failures through the
// aggregator: minion i fails on fails[i%len(fails)], with its own values.
func aggregateCorpus(t *testing.T, rng *rand.Rand, minions int, fails ...fleetgen.Failure) []Cause {
	t.Helper()
	agg := NewAggregator("")
	for i := range minions {
		v := minionValues(rng, i)
		m := DecodeMinion(v.Minion, fleetgen.Answer([]fleetgen.Failure{fails[i%len(fails)]}, v, nil))
		if m.Status != StatusFailing {
			t.Fatalf("minion %s: status %s (%s)", v.Minion, m.Status, m.Detail)
		}
		m.Datacenter = "ams01"
		agg.Add(m)
	}
	_, causes, _ := agg.Finish()
	return causes
}

func describe(causes []Cause) string {
	var b strings.Builder
	for _, c := range causes {
		b.WriteString("\n  " + string(c.Kind) + " " + c.Key + ": " + c.Summary)
	}
	return b.String()
}

// TestCorpusOneCausePerFailure: one failure of the corpus on many minions,
// each with its own values, is one cause of all of them.
func TestCorpusOneCausePerFailure(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, f := range corpus(t) {
		t.Run(f.Name, func(t *testing.T) {
			const n = 60
			causes := aggregateCorpus(t, rng, n, f)
			if len(causes) != 1 || causes[0].Minions != n {
				t.Fatalf("%d causes, want 1 of %d minions:%s", len(causes), n, describe(causes))
			}
		})
	}
}

// origins returns the services a failure names: failures naming one
// service are one external-service cause by design.
func origins(f fleetgen.Failure) []string {
	var out []string
	for _, u := range append(URLsIn(f.Text), f.URLs...) {
		if o, ok := ServiceOrigin(u); ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// TestCorpusTwoFailuresTwoCauses: two different failures of the corpus,
// each on half the minions, are two causes. Pairs that name the same
// external service are one cause by design, and a requisite failure folds
// into its root, so those pairs are left out.
func TestCorpusTwoFailuresTwoCauses(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var c []fleetgen.Failure
	for _, f := range corpus(t) {
		if !strings.HasPrefix(f.Text, "One or more requisite failed") {
			c = append(c, f)
		}
	}
	pairs := 0
	for i := range c {
		for _, j := range []int{(i + 1) % len(c), (i + 7) % len(c)} {
			a, b := c[i], c[j]
			oa, ob := origins(a), origins(b)
			if len(oa) > 0 && len(ob) > 0 && slices.Equal(oa, ob) {
				continue
			}
			pairs++
			t.Run(a.Name+"+"+b.Name, func(t *testing.T) {
				causes := aggregateCorpus(t, rng, 40, a, b)
				if len(causes) != 2 || causes[0].Minions != 20 || causes[1].Minions != 20 {
					t.Fatalf("%d causes, want 2 of 20 minions each:%s", len(causes), describe(causes))
				}
			})
		}
	}
	if pairs < len(c) {
		t.Fatalf("only %d pairs tried", pairs)
	}
}
