package triage

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// decodeRealistic decodes answers as the decoding workers do before they
// hand each minion to the aggregator.
func decodeRealistic(answers []MinionAnswer) []Minion {
	out := make([]Minion, len(answers))
	for i, a := range answers {
		out[i] = DecodeMinion(a.ID, a.Raw)
		out[i].Datacenter = a.ID[4:8]
	}
	return out
}

// BenchmarkAggregatorAdd counts 100 000 realistic minions: Add alone,
// without decoding. "serial" and "parallel" add minions decoded
// beforehand, on one goroutine (the work) and on as many as there are
// cores (what the lock lets through); cpu-ns/minion is the process's CPU
// time, the collector's included. Those minions' bytes are long out of the
// caches, which --input's are not: a worker adds a minion it has just
// decoded. "warm" reads a few minions' bytes back into the caches before it
// adds them, and times only the Add (add-ns/minion). "prepared" times
// AddPrepared alone.
func BenchmarkAggregatorAdd(b *testing.B) {
	answers := realisticAnswers(b, 100_000)
	minions := decodeRealistic(answers)
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
	// "prepared" is what --input's checked part does: the minions are
	// prepared beforehand (Prepare, in the decoding workers), and only
	// AddPrepared is timed, on one goroutine.
	b.Run("prepared", func(b *testing.B) {
		prepared := make([]Prepared, len(minions))
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			agg := NewAggregator("")
			for i, m := range minions {
				prepared[i] = agg.Prepare(m)
			}
			runtime.GC() // the collection the preparing left running is not counting's
			b.StartTimer()
			start := processCPU()
			for _, p := range prepared {
				agg.AddPrepared(p)
			}
			cpu += processCPU() - start
		}
		if cpu > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(minions)), "cpu-ns/minion")
		}
	})
	b.Run("warm", func(b *testing.B) {
		const batch = 64 // a few hundred KB: in the caches
		var add time.Duration
		for b.Loop() {
			agg := NewAggregator("")
			for i := 0; i < len(minions); i += batch {
				part := minions[i:min(i+batch, len(minions))]
				for _, m := range part {
					touchMinion(m)
				}
				start := time.Now()
				for _, m := range part {
					agg.Add(m)
				}
				add += time.Since(start)
			}
		}
		b.ReportMetric(float64(add.Nanoseconds())/float64(b.N*len(minions)), "add-ns/minion")
	})
}

// touched keeps touchMinion's reads from being left out.
var touched byte

// touchMinion reads a byte of every cache line of m's strings, as decoding
// it would have written them.
func touchMinion(m Minion) {
	var x byte
	touch := func(s string) {
		for i := 0; i < len(s); i += 64 {
			x ^= s[i]
		}
	}
	touch(m.ID)
	for _, s := range m.FailedStates {
		touch(s.ID)
		touch(s.SLS)
		touch(s.Fun)
		touch(s.Comment)
		touch(s.Template)
	}
	for _, e := range m.CompileErrors {
		touch(e.State)
		touch(e.Message)
		touch(e.Template)
		for _, u := range e.URLs {
			touch(u)
		}
	}
	for _, c := range m.Commits {
		touch(c.ID)
		touch(c.Path)
	}
	for _, j := range []*Job{m.FailedJob, m.LastSuccessJob} {
		if j != nil {
			touch(j.Time)
			touch(j.Commit)
			touch(j.CodebaseVersion)
		}
	}
	touched ^= x
}
