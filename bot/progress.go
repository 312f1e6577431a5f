package bot

import (
	"sync"
	"time"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// progressView is what the summary of a running triage shows: the last
// progress event, aged to the time of each update, so that the elapsed
// time and each datacenter's wait move even when no event comes.
type progressView struct {
	scope triage.Scope
	o     formatters.SlackOptions
	start time.Time

	mu sync.Mutex
	p  triage.Progress
	// at is when p came, on the bot's clock; zero before the first event.
	at time.Time
}

func (v *progressView) set(p triage.Progress, now time.Time) {
	v.mu.Lock()
	v.p, v.at = p, now
	v.mu.Unlock()
}

// render is the summary as it reads at now.
func (v *progressView) render(now time.Time) formatters.SlackMessage {
	v.mu.Lock()
	p, at := v.p, v.at
	v.mu.Unlock()
	elapsed := now.Sub(v.start)
	var pending []triage.PendingDatacenter
	if !at.IsZero() {
		since := max(0, now.Sub(at))
		elapsed = p.Elapsed + since
		pending = make([]triage.PendingDatacenter, len(p.Pending))
		for i, d := range p.Pending {
			d.Waiting += since
			pending[i] = d
		}
	}
	return formatters.SlackProgress(v.scope, formatters.Progress{
		DatacentersDone: p.DatacentersDone, DatacentersTotal: p.DatacentersTotal,
		MinionsAnswered: p.MinionsAnswered, MinionsExpected: p.MinionsExpected,
		Elapsed: elapsed, Running: p.Running, Pending: pending,
	}, v.o)
}
