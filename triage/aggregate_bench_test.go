package triage

import (
	"runtime"
	"sync"
	"testing"
)

// decodedRealistic are the realistic fleet's answers decoded once, as the
// decoding workers hand them to the aggregator.
func decodedRealistic(b *testing.B, n int) []Minion {
	answers := realisticAnswers(b, n)
	out := make([]Minion, len(answers))
	for i, a := range answers {
		out[i] = DecodeMinion(a.ID, a.Raw)
		out[i].Datacenter = a.ID[4:8]
	}
	return out
}

// BenchmarkAggregatorAdd counts 100 000 decoded realistic minions: Add
// alone, without decoding, on one goroutine (the work) and on as many as
// there are cores (what the lock lets through). cpu-ns/minion is the
// process's CPU time, the collector's included.
func BenchmarkAggregatorAdd(b *testing.B) {
	minions := decodedRealistic(b, 100_000)
	run := func(b *testing.B, workers int) {
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			agg := NewAggregator("")
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < len(minions); i += workers {
						agg.Add(minions[i])
					}
				})
			}
			wg.Wait()
		}
		per := float64(b.N * len(minions))
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/minion")
		if cpu := processCPU() - cpu; cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/minion")
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, 1) })
	b.Run("parallel", func(b *testing.B) { run(b, runtime.GOMAXPROCS(0)) })
}
