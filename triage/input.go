package triage

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

// ReadAnswers streams minion answers out of saved blame output, one minion
// at a time, so that a file of any size is read in bounded memory. It reads
// what `salt … --out json` prints (one object per minion, or one object for
// all with --static) and salt-api documents (`{"return": [{…}]}`, also as
// GET /jobs/<jid> answers them). Duplicate ids are passed on (the aggregator
// counts them once); an answer over MaxAnswerBytes is an error. The answer
// given to emit stays valid after emit returns.
func ReadAnswers(r io.Reader, emit func(MinionAnswer) error) error {
	return readInput(r, func(a inputAnswer) error {
		if a.TooLarge() {
			return fmt.Errorf("input: minion %q: %s", truncate(a.ID, 80), tooLarge(a.Size))
		}
		return emit(a.MinionAnswer)
	})
}

// tooLarge says why an answer was not read.
func tooLarge(size int64) string {
	return fmt.Sprintf("answer of %s is over the %s limit of one answer; not read", byteSize(size), byteSize(MaxAnswerBytes))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// inputBatch is how many decoded answers a part hands to the aggregator
// at a time, between progress events.
const inputBatch = 256

// InputMemoryLimit is the soft memory limit for a process that triages
// saved evidence (the Go runtime's, see runtime/debug.SetMemoryLimit): the
// reading holds partWindow blocks, what their parts decoded and
// MaxAnswerBytes at most, and the report of 100 000 minions some 30 MB, so
// the collector has room to work.
const InputMemoryLimit = 64 << 20

// InputGCPercent is the collector's target (runtime/debug.SetGCPercent)
// under InputMemoryLimit: off, so that the collector runs only as the heap
// nears the limit. The parts keep their minions in arenas reused from
// batch to batch, so a triage of 100 000 minions allocates some 45 MB and
// its report is some 20 MB live: it collects once or not at all, where
// each collection walked the report and faulted in pages it only read.
// A fleet whose report nears the limit collects as often as it would
// under any target.
const InputGCPercent = -1

// TriageInput triages saved evidence instead of calling salt-api. Every
// minion in the input counts toward the scope: for a datacenter, as that
// datacenter's; for a group, by the inventory's lists (or none); for a
// minion, only that minion's answer is read.
func (t *Triager) TriageInput(ctx context.Context, s Scope, in io.Reader) (*Report, error) {
	dcs, err := t.inv.Resolve(s)
	if err != nil {
		return nil, err
	}
	r := t.newRun(s, 1)
	dcOf := func(id string) string {
		if s.Kind == ScopeDatacenter {
			return s.Name
		}
		if dc, ok := t.inv.DatacenterOf(id); ok {
			return dc.Name
		}
		return ""
	}
	for _, dc := range dcs {
		r.agg.Expect(dc.Name, dc.Minions)
	}
	if s.Kind == ScopeMinion {
		r.agg.Expect(dcOf(s.Name), []string{s.Name})
	}

	opt := readOptions{workers: max(1, runtime.GOMAXPROCS(0))}
	if s.Kind == ScopeMinion {
		opt.unwanted = func(id string) bool { return id != s.Name }
	}
	// Decoding, templates included, is the work: the input is read in
	// parts decoded on every core, and only the counting happens under
	// the aggregator's lock.
	// What counting a minion goes by is worked out in the parts, in
	// parallel; the ordered hand-over only counts.
	prep := func(m Minion, arena *batchArena) Prepared {
		m.Datacenter = dcOf(m.ID)
		return prepareIn(m, arena)
	}
	err = readParallel(ctx, in, opt, prep, func(ps []Prepared) {
		for i := range ps {
			r.agg.AddPrepared(ps[i])
		}
		r.emit(ProgressAnswers, "", nil)
	})
	if err != nil {
		return nil, err
	}
	return r.report(nil), nil
}
