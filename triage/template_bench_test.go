package triage

import (
	"bytes"
	"testing"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// templateInput is a message as TemplateOf gets it, with its minion.
type templateInput struct{ msg, minion string }

// realisticMessages returns the failed-state comments and compile-error
// messages of n minions of fleetgen's realistic fleet: what the decoding
// workers give TemplateOf in a run.
func realisticMessages(tb testing.TB, n int) []templateInput {
	var buf bytes.Buffer
	if err := fleetgen.WriteRealistic(&buf, fleetgen.RealisticOptions{Minions: n, Datacenters: 10, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	var out []templateInput
	err := ReadAnswers(&buf, func(a MinionAnswer) error {
		m := DecodeMinion(a.ID, a.Raw)
		for _, s := range m.FailedStates {
			if s.Comment != "" {
				out = append(out, templateInput{s.Comment, m.ID})
			}
		}
		for _, e := range m.CompileErrors {
			if e.Message != "" {
				out = append(out, templateInput{e.Message, m.ID})
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkTemplateOf makes the templates of the messages of a realistic
// fleet of 100 000 minions (about 102 000 messages: comments of 170 to
// 240 bytes with per-minion values, tracebacks of 1.6 to 1.8 KB), on one
// goroutine, starting each run with an empty cache as a process does.
// cpu-ns/message is the process's CPU time (GC included), less swayed
// than ns/message by what else runs on the machine; run it with -cpu 1.
func BenchmarkTemplateOf(b *testing.B) {
	msgs := realisticMessages(b, 100_000)
	var bytesIn int
	for _, m := range msgs {
		bytesIn += len(m.msg)
	}
	b.SetBytes(int64(bytesIn))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		resetTemplateCache()
		for _, m := range msgs {
			TemplateOf(m.msg, m.minion)
		}
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/message")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(msgs)), "cpu-ns/message")
	}
	b.ReportMetric(float64(len(msgs)), "messages")
}
