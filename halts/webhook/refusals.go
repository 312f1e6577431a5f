package webhook

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
)

// Observer counts refused deliveries and the log lines not written about
// them; *metrics.Metrics is one.
type Observer interface {
	WebhookRejected(hook, reason string)
	RefusalLogsDropped(n int)
}

// Rate of the log lines about refused requests: enough to see what goes
// on, too few for a flood of bad requests to fill a disk.
const (
	refusalLogsPerSecond = 1
	refusalLogBurst      = 10
)

// Refusals answers refused requests, counts each one, and logs them at a
// bounded rate; a line that is dropped is counted, and the next line
// written says how many were.
type Refusals struct {
	log logrus.FieldLogger
	obs Observer
	now func() time.Time

	mu      sync.Mutex
	lim     *rate.Limiter
	dropped int
}

// NewRefusals returns the refusal log of the hooks. obs may be nil; now
// is the clock the rate is measured on.
func NewRefusals(log logrus.FieldLogger, obs Observer, now func() time.Time) *Refusals {
	return &Refusals{log: log, obs: obs, now: now, lim: rate.NewLimiter(refusalLogsPerSecond, refusalLogBurst)}
}

// logger is where the hooks log; a nil Refusals logs nothing.
func (f *Refusals) logger() logrus.FieldLogger {
	if f == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		return l
	}
	return f.log
}

// refuse answers status with msg and accounts for the refusal; a nil
// Refusals only answers.
func (f *Refusals) refuse(w http.ResponseWriter, hook string, status int, reason, msg string) {
	if f == nil {
		answer(w, status, map[string]string{"error": msg})
		return
	}
	if f.obs != nil {
		f.obs.WebhookRejected(hook, reason)
	}
	f.mu.Lock()
	ok := f.lim.AllowN(f.now(), 1)
	dropped := f.dropped
	if ok {
		f.dropped = 0
	} else {
		f.dropped++
	}
	f.mu.Unlock()
	if ok {
		l := f.log.WithFields(logrus.Fields{"hook": hook, "reason": reason, "status": status})
		if dropped > 0 {
			l = l.WithField("dropped_before", dropped)
		}
		l.Warn("webhook delivery refused")
	} else if f.obs != nil {
		f.obs.RefusalLogsDropped(1)
	}
	answer(w, status, map[string]string{"error": msg})
}
