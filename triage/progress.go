package triage

import (
	"fmt"
	"runtime/debug"
	"slices"
	"time"
)

// ProgressKind says what a progress event reports.
type ProgressKind string

// The progress events of a triage.
const (
	ProgressStarted            ProgressKind = "started"
	ProgressDatacenterStarted  ProgressKind = "datacenter_started"
	ProgressAnswers            ProgressKind = "answers"
	ProgressDatacenterFinished ProgressKind = "datacenter_finished"
)

// Progress is a snapshot of a running triage, for live updates.
type Progress struct {
	Kind  ProgressKind
	Scope Scope
	// Datacenter is the datacenter the event is about, if any (the master,
	// in a minion triage, which asks every master).
	Datacenter string
	// Master serves Datacenter.
	Master string
	// Err is why a datacenter finished early, on ProgressDatacenterFinished.
	Err error
	// DatacenterAnswered and DatacenterExpected count the minions of
	// Datacenter alone; MinionsAnswered and MinionsExpected those of the
	// whole triage.
	DatacenterAnswered int
	DatacenterExpected int
	DatacentersDone    int
	DatacentersTotal   int
	MinionsAnswered    int
	MinionsExpected    int
	// Running names the datacenters still running.
	Running []string
	// Pending are the datacenters still running, in the order they
	// started, with how long each has been waited for.
	Pending []PendingDatacenter
	Elapsed time.Duration
}

// PendingDatacenter is a datacenter whose blame call is still running.
type PendingDatacenter struct {
	Name   string
	Master string
	// Answered and Expected count its minions so far.
	Answered, Expected int
	// Waiting is how long its blame call has run.
	Waiting time.Duration
}

// PanicError is a panic in one of a triage's goroutines (a Blamer, the
// decoding, a progress callback), raised again in the goroutine that called
// Triage so that the caller's recovery sees it. Stack is where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic in triage: %v", p.Value) }

// Unwrap returns the panic's value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

func newPanicError(v any) *PanicError {
	if p, ok := v.(*PanicError); ok {
		return p
	}
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// running is a datacenter whose blame call runs.
type running struct {
	name, master string
	start        time.Time
}

// emit queues a progress event; answer events are throttled. The event is
// built under r.mu, so that events come out in the order their counts
// changed, but handed to Options.Progress by deliver, outside any lock: a
// slow consumer holds up its own events, never the collection of answers.
func (r *run) emit(kind ProgressKind, dc string, err error) {
	r.emitFrom(kind, dc, "", err)
}

func (r *run) emitFrom(kind ProgressKind, dc, master string, err error) {
	if r.t.opts.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken {
		return
	}
	now := r.t.opts.Now()
	switch kind {
	case ProgressAnswers:
		if now.Sub(r.lastEvent) < r.t.opts.ProgressInterval {
			return
		}
	case ProgressDatacenterStarted:
		r.running = append(r.running, running{name: dc, master: master, start: now})
	case ProgressDatacenterFinished:
		r.done++
		if i := slices.IndexFunc(r.running, func(x running) bool { return x.name == dc }); i >= 0 {
			r.running = slices.Delete(r.running, i, i+1)
		}
	}
	r.lastEvent = now
	p := Progress{
		Kind: kind, Scope: r.scope, Datacenter: dc, Master: master, Err: err,
		DatacentersDone: r.done, DatacentersTotal: r.total,
		Elapsed: now.Sub(r.start),
	}
	if dc != "" {
		p.DatacenterAnswered, p.DatacenterExpected = r.countsLocked(dc)
	}
	p.MinionsAnswered, p.MinionsExpected = r.totalsLocked()
	p.Running = make([]string, 0, len(r.running))
	p.Pending = make([]PendingDatacenter, 0, len(r.running))
	for _, x := range r.running {
		a, e := r.countsLocked(x.name)
		p.Running = append(p.Running, x.name)
		p.Pending = append(p.Pending, PendingDatacenter{Name: x.name, Master: x.master, Answered: a, Expected: e, Waiting: now.Sub(x.start)})
	}
	r.pushLocked(p)
}

// countsLocked returns how many minions of datacenter dc answered so far
// and how many are expected; minions its master said are absent are
// expected but did not answer.
func (r *run) countsLocked(dc string) (answered, expected int) {
	if r.scope.Kind == ScopeMinion {
		if r.minionAnswered[dc] {
			return 1, 1
		}
		return 0, 1
	}
	answered, expected = r.agg.Answered(dc)
	return answered - r.absent[dc], expected
}

func (r *run) totalsLocked() (answered, expected int) {
	if r.scope.Kind == ScopeMinion {
		for _, ok := range r.minionAnswered {
			if ok {
				return 1, 1
			}
		}
		return 0, 1
	}
	for _, dc := range r.dcs {
		a, e := r.countsLocked(dc)
		answered += a
		expected += e
	}
	return answered, expected
}

// pushLocked queues p and makes sure a deliverer runs. An answers event
// still waiting is replaced by a newer one: it only carries counts.
func (r *run) pushLocked(p Progress) {
	if n := len(r.queue); n > 0 && p.Kind == ProgressAnswers && r.queue[n-1].Kind == ProgressAnswers {
		r.queue[n-1] = p
	} else {
		r.queue = append(r.queue, p)
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
		go r.deliver(r.idle)
	}
}

// deliver hands the queued events to Options.Progress, in order, until the
// queue is empty; then it closes idle and ends. One deliverer runs at a
// time. A panic in the callback stops the delivery and is kept for the
// goroutine that called Triage.
func (r *run) deliver(idle chan struct{}) {
	defer close(idle)
	defer func() {
		if v := recover(); v != nil {
			// The panic is kept with idle cleared, at once: flush may
			// return as soon as idle is nil, and report then looks for it.
			p := newPanicError(v)
			r.mu.Lock()
			r.broken, r.queue, r.idle = true, nil, nil
			r.keepPanicLocked(p)
			r.mu.Unlock()
			r.stop()
		}
	}()
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		if len(batch) == 0 {
			r.idle = nil
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, p := range batch {
			r.t.opts.Progress(p)
		}
	}
}

// flush waits until every queued event has been delivered.
func (r *run) flush() {
	for {
		r.mu.Lock()
		idle := r.idle
		r.mu.Unlock()
		if idle == nil {
			return
		}
		<-idle
	}
}

// fail records the first panic of the run's goroutines and stops the
// run's work: the triage ends by raising it again.
func (r *run) fail(p *PanicError) {
	r.mu.Lock()
	r.keepPanicLocked(p)
	r.mu.Unlock()
	r.stop()
}

func (r *run) keepPanicLocked(p *PanicError) {
	if r.panicked == nil {
		r.panicked = p
	}
}

// stop stops the run's work.
func (r *run) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// recoverInto is deferred by the run's goroutines.
func (r *run) recoverInto() {
	if v := recover(); v != nil {
		r.fail(newPanicError(v))
	}
}
