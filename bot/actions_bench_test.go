package bot_test

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// BenchmarkTypeAheadAck reports the acknowledgement latency of the
// shortcut's minion type-ahead, whose options travel in the
// acknowledgement, with a 100 000-minion report held and a query that
// matches none of its minions.
func BenchmarkTypeAheadAck(b *testing.B) {
	h := start(b, setup{inv: &smallInventory, triagers: triagerFunc(nil).factory(),
		deps: func(d *bot.Deps) { d.Log = jsonLogger(io.Discard) }})
	r := cannedReport(triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"})
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("web-dc%02d-%06d.prod.example.com", i%40, i)
	}
	r.Causes[0].Minions, r.Causes[0].MinionIDs = len(ids), ids
	if _, err := h.bot.PostReport(h.ctx, incident, "", r, formatters.SlackOptions{}); err != nil {
		b.Fatal(err)
	}
	root := h.slack.Post(incident, bob, "root")
	view := h.shortcut(alice, incident, root)
	var latencies []time.Duration
	for b.Loop() {
		sent, err := h.slack.SendBlockSuggestion(h.ctx, fakeslack.BlockSuggestion{UserID: alice, ViewID: view.ID, BlockID: "sift_minion", ActionID: "minion", Value: "db-nope"})
		if err != nil {
			b.Fatal(err)
		}
		ack, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID)
		if err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, ack.Latency)
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "ack-p50-ms")
	b.ReportMetric(pct(0.99), "ack-p99-ms")
}
