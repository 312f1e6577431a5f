package triage

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestSortedIDs: sortedIDs sorts as slices.Sort and keeps each id once,
// for ids that share a prefix, that end inside or before the 8 bytes
// compared as a key, that hold zero bytes and bytes over 0x7f.
func TestSortedIDs(t *testing.T) {
	tests := [][]string{
		nil,
		{"a"},
		{"web-dc01-000002", "web-dc00-000001", "web-dc01-000002", "web-dc00-000010"},
		{"web", "web-1", "we", "web-0", "web"},
		{"ab\x00", "ab", "ab\x00\x00", "ab\x00\x01", "ab"},
		{"x-\xffa", "x-\x7fa", "x-é", "x-e", "x-"},
		{"node-0000000001a", "node-0000000001", "node-0000000001b", "node-0000000002"},
		{"", "a", ""},
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		var ids []string
		prefix := "web-dc0"[:rnd.IntN(8)]
		for range rnd.IntN(300) {
			b := []byte(prefix)
			for range rnd.IntN(14) {
				b = append(b, "0\x001-a\xff9"[rnd.IntN(7)])
			}
			ids = append(ids, string(b))
		}
		ids = append(ids, ids[:len(ids)/4]...) // some twice
		tests = append(tests, ids)
	}
	for i, ids := range tests {
		want := slices.Compact(slices.Sorted(slices.Values(ids)))
		if len(want) == 0 {
			want = nil
		}
		in := slices.Clone(ids)
		got := sortedIDs(ids)
		if !slices.Equal(got, want) {
			t.Fatalf("case %d: sortedIDs(%q) = %q, want %q", i, ids, got, want)
		}
		if !slices.Equal(ids, in) {
			t.Fatalf("case %d: sortedIDs changed its input", i)
		}
	}
}

// TestSortCauseIDs: each cause's list is sorted into its own place, long
// lists (sorted apart) and short ones alike.
func TestSortCauseIDs(t *testing.T) {
	var causes []*causeAcc
	for _, n := range []int{3, 2000, 0, 700, 1, 5000, 40} {
		c := &causeAcc{}
		for i := range n {
			c.ids = append(c.ids, fmt.Sprintf("m-%d-%06d", n, (i*7919)%n))
		}
		causes = append(causes, c)
	}
	got := sortCauseIDs(causes)
	for i, c := range causes {
		want := slices.Compact(slices.Sorted(slices.Values(c.ids)))
		if len(want) == 0 {
			want = nil
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("cause %d (%d ids): got %d ids, first %q", i, len(c.ids), len(got[i]), got[i][:min(3, len(got[i]))])
		}
	}
}

// BenchmarkAggregatorFinish builds the report of 100 000 realistic
// minions: Finish alone, the minions counted beforehand and collected after. finish-ms is
// its wall time, finish-cpu-ms the process's CPU time while it runs, the
// collector's included.
func BenchmarkAggregatorFinish(b *testing.B) {
	minions := decodeRealistic(realisticAnswers(b, 100_000))
	prepared := make([]Prepared, len(minions))
	var wall, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		agg := NewAggregator("")
		for i, m := range minions {
			prepared[i] = agg.Prepare(m)
		}
		for _, p := range prepared {
			agg.AddPrepared(p)
		}
		runtime.GC() // the collection the setup left running is not Finish's
		b.StartTimer()
		start, startCPU := time.Now(), processCPU()
		agg.Finish()
		wall += time.Since(start)
		cpu += processCPU() - startCPU
	}
	b.ReportMetric(float64(wall.Microseconds())/1e3/float64(b.N), "finish-ms")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "finish-cpu-ms")
	}
}
