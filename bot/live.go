package bot

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// liveMessage keeps one message showing the state of a running triage,
// with at most one chat.update per ProgressInterval: Slack allows about
// one update a second per message, and a 100-datacenter group reports
// progress far more often than that. When nothing new comes it still
// refreshes the message every ProgressInterval, so that the elapsed time
// and the waits it shows move: a hung master must not look like a dead
// bot.
type liveMessage struct {
	b           *Bot
	channel, ts string
	// render returns the message as it should read at now.
	render func(now time.Time) formatters.SlackMessage

	mu    sync.Mutex
	dirty bool      // something new since the last update
	last  time.Time // when the message was last posted or updated
	// broken stops the progress updates after one failed: the message
	// may be gone, and the final update says what there is to say.
	broken bool
	// panicked is a panic of the updating goroutine, for finish to raise
	// again in the command's goroutine, where it is recovered and logged.
	panicked *triage.PanicError

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// startLive starts keeping the message of channel at ts, just posted, up
// to date with render. ctx bounds the updates; finish must be called.
func (b *Bot) startLive(ctx context.Context, channel, ts string, render func(time.Time) formatters.SlackMessage) *liveMessage {
	runCtx, stop := context.WithCancel(ctx)
	l := &liveMessage{
		b: b, channel: channel, ts: ts, render: render, last: b.clock.Now(),
		wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{}),
	}
	go l.run(ctx, runCtx)
	return l
}

// changed says that the message has something new to show. It never
// blocks: it is called from the triage's progress callback.
func (l *liveMessage) changed() {
	l.mu.Lock()
	l.dirty = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run sends the message in its turn until finish: when something new came,
// and at each tick. The update itself runs under ctx, so that finish does
// not cut a call in flight.
func (l *liveMessage) run(ctx, runCtx context.Context) {
	defer close(l.done)
	defer func() {
		if v := recover(); v != nil {
			l.mu.Lock()
			l.panicked = &triage.PanicError{Value: v, Stack: debug.Stack()}
			l.mu.Unlock()
		}
	}()
	ticker := l.b.clock.NewTicker(l.b.cfg.ProgressInterval)
	defer ticker.Stop()
	for {
		select {
		case <-runCtx.Done():
			return
		case <-l.wake:
		case <-ticker.C():
			l.mu.Lock()
			l.dirty = true
			l.mu.Unlock()
		}
		if l.waitTurn(runCtx) != nil {
			return
		}
		l.mu.Lock()
		dirty, broken := l.dirty, l.broken
		l.dirty = false
		l.mu.Unlock()
		if !dirty || broken {
			continue
		}
		err := l.b.Update(ctx, l.channel, l.ts, l.render(l.b.clock.Now()))
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
// message with final. A panic of the updates is raised again here.
func (l *liveMessage) finish(ctx context.Context, final formatters.SlackMessage) error {
	if p := l.end(); p != nil {
		panic(p)
	}
	return l.replace(ctx, final)
}

// abort is finish for a command that already failed: a panic of the
// updates is dropped, the command's own is being handled.
func (l *liveMessage) abort(ctx context.Context, final formatters.SlackMessage) error {
	l.end()
	return l.replace(ctx, final)
}

// end stops the updates and returns their panic, once.
func (l *liveMessage) end() *triage.PanicError {
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.panicked
	l.panicked = nil
	return p
}

func (l *liveMessage) replace(ctx context.Context, final formatters.SlackMessage) error {
	if err := l.waitTurn(ctx); err != nil {
		return err
	}
	return l.b.Update(ctx, l.channel, l.ts, final)
}
