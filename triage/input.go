package triage

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
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

// The hand-over from the reader to the decoding workers: batches of answers,
// and a bound on the bytes of answers read but not yet decoded, so that a
// reader faster than the workers does not fill the memory.
const (
	inputBatch      = 256       // answers
	inputBatchBytes = 256 << 10 // or bytes, whichever comes first
	inputInFlight   = 8 << 20   // over inputBatchBytes + MaxAnswerBytes: any batch fits
)

// InputMemoryLimit is the soft memory limit for a process that triages
// saved evidence (the Go runtime's, see runtime/debug.SetMemoryLimit): the
// reading holds MaxAnswerBytes and inputInFlight at most, and the report
// of 100 000 minions some 30 MB, so the collector has room to work.
const InputMemoryLimit = 64 << 20

// InputGCPercent is the collector's target (runtime/debug.SetGCPercent)
// under InputMemoryLimit: the report of 100 000 minions is some 25 MB
// live, and collecting at three times that, up to the limit, halves the
// collections of the default without passing the limit.
const InputGCPercent = 200

type inputBatchOf struct {
	answers []inputAnswer
	bytes   int64
	// blocks hold the answers' bytes, lent by the reader's pool: given
	// back once the batch is counted.
	blocks []*[]byte
}

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

	batches := make(chan inputBatchOf, 4)
	blocks := newBlockPool()
	sc := newScanner(in)
	sc.blocks = blocks
	if s.Kind == ScopeMinion {
		sc.unwanted = func(id string) bool { return id != s.Name }
	}
	budget := semaphore.NewWeighted(inputInFlight)
	g, gctx := errgroup.WithContext(ctx)
	// Decoding, templates included, is the work: it runs on every core,
	// and only the counting happens under the aggregator's lock.
	for range max(1, runtime.GOMAXPROCS(0)) {
		g.Go(func() error {
			for batch := range batches {
				for _, a := range batch.answers {
					var m Minion
					if a.TooLarge() {
						m = blameError(Minion{ID: a.ID}, tooLarge(a.Size))
					} else {
						m = DecodeMinion(a.ID, a.Raw)
					}
					m.Datacenter = dcOf(a.ID)
					r.agg.Add(m)
				}
				// Decoded minions hold copies: the raw answers are done with.
				blocks.put(batch.blocks)
				budget.Release(batch.bytes)
				r.emit(ProgressAnswers, "", nil)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		var batch inputBatchOf
		send := func() error {
			if len(batch.answers) == 0 {
				return nil
			}
			batch.blocks = sc.cut()
			if err := budget.Acquire(gctx, batch.bytes); err != nil {
				return err
			}
			select {
			case batches <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
			batch = inputBatchOf{answers: make([]inputAnswer, 0, inputBatch)}
			return nil
		}
		err := sc.read(func(a inputAnswer) error {
			batch.answers = append(batch.answers, a)
			batch.bytes += int64(len(a.Raw))
			if len(batch.answers) == inputBatch || batch.bytes >= inputBatchBytes {
				return send()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return send()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return r.report(nil), nil
}
