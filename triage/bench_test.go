package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// syntheticAnswers builds n minion answers across 10 datacenters: most
// healthy, a bad commit, a Vault outage, a repeated failed state, a few
// unreachable and without the module, like a large incident.
func syntheticAnswers(n int) []MinionAnswer {
	out := make([]MinionAnswer, n)
	healthy, vault, missing := healthyAnswer(), vaultAnswer(), moduleMissingAnswer()
	for i := range out {
		id := fmt.Sprintf("web-dc%02d-%06d", i%10, i)
		var raw json.RawMessage
		switch r := i % 100; {
		case r < 60:
			raw = healthy
		case r < 85:
			raw = commitAnswer(id)
		case r < 92:
			raw = vault
		case r < 97:
			raw = stateAnswer(id)
		case r < 99:
			raw = json.RawMessage(`false`)
		default:
			raw = missing
		}
		out[i] = MinionAnswer{ID: id, Raw: raw}
	}
	return out
}

// peakHeap samples the live heap while f runs.
func peakHeap(f func()) uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		// runtime/metrics reads without stopping the world, unlike ReadMemStats.
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak.Load()
}

// BenchmarkAggregate decodes, classifies and aggregates 100 000 minion
// answers into a ranked report, on as many workers as there are cores:
// synthetic answers (a few kinds, the same text on every minion), and
// realistic ones (the corpus's failures with values that differ per minion,
// tracebacks of 1.6 to 1.8 KB, garbage).
func BenchmarkAggregate(b *testing.B) {
	const n = 100_000
	b.Run("synthetic", func(b *testing.B) { benchmarkAggregate(b, syntheticAnswers(n)) })
	b.Run("realistic", func(b *testing.B) { benchmarkAggregate(b, realisticAnswers(b, n)) })
}

// realisticAnswers are n answers of fleetgen's realistic fleet.
func realisticAnswers(b *testing.B, n int) []MinionAnswer {
	var buf bytes.Buffer
	if err := fleetgen.WriteRealistic(&buf, fleetgen.RealisticOptions{Minions: n, Datacenters: 10, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	out := make([]MinionAnswer, 0, n)
	if err := ReadAnswers(&buf, func(a MinionAnswer) error { out = append(out, a); return nil }); err != nil {
		b.Fatal(err)
	}
	return out
}

func benchmarkAggregate(b *testing.B, answers []MinionAnswer) {
	n := len(answers)
	var bytesIn int
	for _, a := range answers {
		bytesIn += len(a.Raw)
	}
	workers := runtime.GOMAXPROCS(0)
	b.SetBytes(int64(bytesIn))
	b.ReportAllocs()
	b.ResetTimer()
	var peak uint64
	var causes int
	for b.Loop() {
		runtime.GC()
		p := peakHeap(func() {
			agg := NewAggregator("")
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += workers {
						m := DecodeMinion(answers[i].ID, answers[i].Raw)
						m.Datacenter = answers[i].ID[4:8]
						agg.Add(m)
					}
				}()
			}
			wg.Wait()
			counts, cs, _ := agg.Finish()
			if counts.Answered+counts.Unreachable != n || len(cs) == 0 {
				b.Fatalf("counts %+v", counts)
			}
			causes = len(cs)
			Headline(counts, cs)
		})
		peak = max(peak, p)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(causes), "causes")
}

// BenchmarkFanout triages a group of 100 datacenters whose blame calls take
// a fixed 200 to 500 ms, and reports the wall time over the slowest call.
func BenchmarkFanout(b *testing.B) {
	const dcs = 100
	inv := Inventory{Groups: map[string][]string{}}
	masters := map[string]Blamer{}
	slowest := time.Duration(0)
	for i := range dcs {
		name := fmt.Sprintf("dc%03d", i)
		master := fmt.Sprintf("master%03d", i)
		inv.Datacenters = append(inv.Datacenters, Datacenter{Name: name, Master: master, Target: "G@datacenter:" + name})
		inv.Groups["all"] = append(inv.Groups["all"], name)
		latency := 200*time.Millisecond + time.Duration(i)*3*time.Millisecond
		slowest = max(slowest, latency)
		masters[master] = &fakeBlamer{latency: latency, byDC: map[string]map[string]json.RawMessage{name: fleet(name, 20, commitAnswer)}}
	}
	tr := New(inv, masters, Options{MaxParallel: dcs})
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		rep, err := tr.Triage(context.Background(), Scope{ScopeGroup, "all"})
		total += time.Since(start)
		if err != nil || rep.Counts.Failing != dcs*20 {
			b.Fatalf("err %v counts %+v", err, rep.Counts)
		}
	}
	mean := total / time.Duration(b.N)
	b.ReportMetric(float64(mean-slowest)/float64(slowest), "overhead-ratio")
	b.ReportMetric(float64(slowest.Milliseconds()), "slowest-dc-ms")
}

// BenchmarkTriageInput triages 100 000 minions of saved evidence written
// by fleetgen, read from a file as sift triage --input reads it: the
// synthetic fleet (about 245 MB) and the realistic one (about 170 MB).
func BenchmarkTriageInput(b *testing.B) {
	const n = 100_000
	b.Run("synthetic", func(b *testing.B) {
		benchmarkTriageInput(b, n, func(w io.Writer) error { return fleetgen.Write(w, n, 10) })
	})
	b.Run("realistic", func(b *testing.B) {
		benchmarkTriageInput(b, n, func(w io.Writer) error {
			return fleetgen.WriteRealistic(w, fleetgen.RealisticOptions{Minions: n, Datacenters: 10, Seed: 1})
		})
	})
}

func benchmarkTriageInput(b *testing.B, n int, write func(io.Writer) error) {
	path := filepath.Join(b.TempDir(), "fleet.json")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := write(f); err != nil {
		b.Fatal(err)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	f.Close()
	tr := New(Inventory{Datacenters: []Datacenter{{Name: "ams01"}}}, nil, Options{})
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		peak = max(peak, peakHeap(func() {
			in, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			rep, err := tr.TriageInput(context.Background(), Scope{ScopeDatacenter, "ams01"}, in)
			if err != nil || rep.Counts.Expected != n {
				b.Fatalf("err %v counts %+v", err, rep.Counts)
			}
		}))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
