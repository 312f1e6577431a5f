package bot_test

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/triage"
)

// BenchmarkSlashCommandAck sends 50 slash commands at once and reports
// the acknowledgement latency, from the fake writing each envelope to it
// reading the acknowledgement, while the commands' triages and posts run.
func BenchmarkSlashCommandAck(b *testing.B) {
	const concurrent = 50
	h := start(b, setup{
		inv: &smallInventory,
		triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
			return cannedReport(s), nil
		}).factory(),
		deps: func(d *bot.Deps) { d.Log = jsonLogger(io.Discard) },
	})
	var latencies []time.Duration
	done := 0
	for b.Loop() {
		var wg sync.WaitGroup
		sent := make([]fakeslack.Sent, concurrent)
		for i := range concurrent {
			wg.Go(func() {
				s, err := h.slack.SendSlashCommand(h.ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "ams01", UserID: alice, ChannelID: incident})
				if err != nil {
					b.Error(err)
				}
				sent[i] = s
			})
		}
		wg.Wait()
		for _, s := range sent {
			ack, err := h.slack.WaitAck(h.ctx, s.EnvelopeID)
			if err != nil {
				b.Fatal(err)
			}
			latencies = append(latencies, ack.Latency)
		}
		// Let the commands finish, so that each round starts alike.
		done += concurrent
		h.waitAudit(done)
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "ack-p50-ms")
	b.ReportMetric(pct(0.99), "ack-p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1])/float64(time.Millisecond), "ack-max-ms")
}
