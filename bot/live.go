package bot

import (
	"context"
	"sync"
	"time"

	"github.com/sift-chatops/sift/formatters"
)

// liveMessage keeps one message showing the newest of a stream of
// versions, with at most one chat.update per ProgressInterval: Slack
// allows about one update a second per message, and a 100-datacenter
// group reports progress far more often than that.
type liveMessage struct {
	b           *Bot
	channel, ts string

	mu   sync.Mutex
	next *formatters.SlackMessage
	last time.Time // when the message was last posted or updated
	// broken stops the progress updates after one failed: the message
	// may be gone, and the final update says what there is to say.
	broken bool

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// startLive starts keeping the message of channel at ts, just posted, up
// to date. ctx bounds the updates; finish must be called.
func (b *Bot) startLive(ctx context.Context, channel, ts string) *liveMessage {
	runCtx, stop := context.WithCancel(ctx)
	l := &liveMessage{
		b: b, channel: channel, ts: ts, last: b.clock.Now(),
		wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{}),
	}
	go l.run(ctx, runCtx)
	return l
}

// set makes m the next version of the message. It never blocks: it is
// called from the triage's progress callback.
func (l *liveMessage) set(m formatters.SlackMessage) {
	l.mu.Lock()
	l.next = &m
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run sends the pending version in its turn until finish. The update
// itself runs under ctx, so that finish does not cut a call in flight.
func (l *liveMessage) run(ctx, runCtx context.Context) {
	defer close(l.done)
	for {
		select {
		case <-runCtx.Done():
			return
		case <-l.wake:
		}
		if l.waitTurn(runCtx) != nil {
			return
		}
		l.mu.Lock()
		m, broken := l.next, l.broken
		l.next = nil
		l.mu.Unlock()
		if m == nil || broken {
			continue
		}
		err := l.b.Update(ctx, l.channel, l.ts, *m)
		l.mu.Lock()
		l.last = l.b.clock.Now()
		l.broken = err != nil
		l.mu.Unlock()
	}
}

// waitTurn waits until an update is allowed.
func (l *liveMessage) waitTurn(ctx context.Context) error {
	l.mu.Lock()
	wait := l.b.cfg.ProgressInterval - l.b.clock.Now().Sub(l.last)
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	return l.b.clock.Sleep(ctx, wait)
}

// finish stops the progress updates and, in its turn, replaces the
// message with final.
func (l *liveMessage) finish(ctx context.Context, final formatters.SlackMessage) error {
	l.stop()
	<-l.done
	if err := l.waitTurn(ctx); err != nil {
		return err
	}
	return l.b.Update(ctx, l.channel, l.ts, final)
}
