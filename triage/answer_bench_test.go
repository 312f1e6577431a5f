package triage

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// answerBlock is realistic answers laid out as an input lays them out: one
// buffer, each answer followed by the rest of the input, as the reader
// hands them to decodePrefix.
type answerBlock struct {
	buf    []byte
	starts []int // where each answer the hand decoder takes starts
	ids    []string
}

var (
	decodeBenchOnce  sync.Once
	decodeBenchBlock answerBlock
)

// decodeBenchAnswers are the answers of 20 000 minions of the realistic
// fleet that the hand decoder takes (about 93 %: strings and other garbage
// are the general decoders').
func decodeBenchAnswers(b *testing.B) *answerBlock {
	decodeBenchOnce.Do(func() {
		var in bytes.Buffer
		if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 20_000, Datacenters: 10, Seed: 1}); err != nil {
			b.Fatal(err)
		}
		blk := &decodeBenchBlock
		err := ReadAnswers(&in, func(a MinionAnswer) error {
			raw := bytes.TrimSpace(a.Raw)
			if _, _, ok := decodePrefix(Minion{ID: a.ID}, raw); ok {
				blk.starts = append(blk.starts, len(blk.buf))
				blk.ids = append(blk.ids, a.ID)
			}
			blk.buf = append(blk.buf, raw...)
			blk.buf = append(blk.buf, ",\n    \"web-dc00-000000\": "...)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
	return &decodeBenchBlock
}

// BenchmarkDecodeAnswer decodes realistic answers where they lie in their
// input: "wire" reads them and copies what a minion keeps, "classify" also
// classifies them, templates of every message included, and "templates"
// makes those templates alone. What the hand decoder costs is classify's
// figure less templates'.
func BenchmarkDecodeAnswer(b *testing.B) {
	blk := decodeBenchAnswers(b)
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(int64(len(blk.buf)))
		b.ReportAllocs()
		cpu := processCPU()
		it := new(interner)
		for b.Loop() {
			for _, s := range blk.starts {
				if _, ok := it.scan(blk.buf[s:]); !ok {
					b.Fatalf("answer at %d not read", s)
				}
				if it.a.f.Status == "failing" {
					it.own()
				}
				it.done()
			}
		}
		reportPerAnswer(b, cpu, len(blk.starts))
	})
	b.Run("classify", func(b *testing.B) {
		b.SetBytes(int64(len(blk.buf)))
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			for k, s := range blk.starts {
				if _, _, ok := decodePrefix(Minion{ID: blk.ids[k]}, blk.buf[s:]); !ok {
					b.Fatalf("answer at %d not decoded", s)
				}
			}
		}
		reportPerAnswer(b, cpu, len(blk.starts))
	})
	b.Run("templates", func(b *testing.B) {
		type message struct{ text, minion string }
		var msgs []message
		for k, s := range blk.starts {
			m, _, _ := decodePrefix(Minion{ID: blk.ids[k]}, blk.buf[s:])
			for _, f := range m.FailedStates {
				msgs = append(msgs, message{f.Comment, m.ID})
			}
			for _, e := range m.CompileErrors {
				msgs = append(msgs, message{e.Message, m.ID})
			}
		}
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			for _, m := range msgs {
				TemplateOf(m.text, m.minion)
			}
		}
		reportPerAnswer(b, cpu, len(blk.starts))
	})
}

// reportPerAnswer reports the time per answer of the b.N rounds of n
// answers, on the clock and, less swayed by what else runs on the
// machine, in the process's CPU time since cpu (the collector's
// included).
func reportPerAnswer(b *testing.B, cpu time.Duration, n int) {
	per := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/answer")
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/answer")
	}
}
