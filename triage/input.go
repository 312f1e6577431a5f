package triage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/errgroup"
)

// ReadAnswers streams minion answers out of saved blame output, one minion
// at a time, so that a file of any size is read in bounded memory. It reads
// what `salt … --out json` prints (one object per minion, or one object for
// all with --static) and salt-api documents (`{"return": [{…}]}`, also as
// GET /jobs/<jid> answers them).
func ReadAnswers(r io.Reader, emit func(MinionAnswer) error) error {
	dec := jsontext.NewDecoder(bufio.NewReaderSize(r, 1<<20),
		// A saved file is evidence to read, not input to police: duplicate
		// ids count once (the aggregator drops them) and bad UTF-8 in a
		// comment must not hide the rest.
		jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	docs := 0
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			if docs == 0 {
				return errors.New("input: empty (want the JSON that salt --out json or salt-api prints)")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		if tok.Kind() != '{' {
			return fmt.Errorf("input: document %d starts with %s, want an object of minion answers", docs+1, tok.Kind())
		}
		docs++
		if err := readMinions(dec, emit, true); err != nil {
			return err
		}
	}
}

// readMinions reads the members of an object whose opening brace has been
// read: minion id → answer. At the top level, "return" (salt-api's wrapper)
// and "info" (/jobs metadata) are recognised.
func readMinions(dec *jsontext.Decoder, emit func(MinionAnswer) error, top bool) error {
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		key := tok.String()
		if top && (key == "return" || key == "info") {
			if err := readWrapped(dec, emit, key == "return"); err != nil {
				return err
			}
			continue
		}
		raw, err := dec.ReadValue()
		if err != nil {
			return fmt.Errorf("input: minion %q: %w", truncate(key, 80), err)
		}
		// The decoder reuses its buffer: the answer outlives this call.
		if err := emit(MinionAnswer{ID: key, Raw: bytes.Clone(raw)}); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil { // closing brace
		return fmt.Errorf("input: %w", err)
	}
	return nil
}

// readWrapped reads salt-api's `"return": [{minion: answer, …}]`, or skips
// the value of a key that holds no answers.
func readWrapped(dec *jsontext.Decoder, emit func(MinionAnswer) error, answers bool) error {
	if !answers {
		return dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if tok.Kind() != '[' {
		return errors.New(`input: "return" is not a list (want salt-api's {"return": [{…}]})`)
	}
	for dec.PeekKind() != ']' {
		tok, err := dec.ReadToken()
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		if tok.Kind() != '{' {
			return errors.New(`input: an entry of "return" is not an object of minion answers`)
		}
		if err := readMinions(dec, emit, false); err != nil {
			return err
		}
	}
	_, err = dec.ReadToken() // closing bracket
	return err
}

// inputBatch is how many answers a decoding worker takes at once: enough to
// make the hand-over cheap next to the decoding.
const inputBatch = 256

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

	batches := make(chan []MinionAnswer, 4)
	g, gctx := errgroup.WithContext(ctx)
	for range max(1, runtime.GOMAXPROCS(0)) {
		g.Go(func() error {
			for batch := range batches {
				for _, a := range batch {
					m := DecodeMinion(a.ID, a.Raw)
					m.Datacenter = dcOf(a.ID)
					r.agg.Add(m)
				}
				r.emit(ProgressAnswers, "", nil)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		batch := make([]MinionAnswer, 0, inputBatch)
		err := ReadAnswers(in, func(a MinionAnswer) error {
			if s.Kind == ScopeMinion && a.ID != s.Name {
				return nil
			}
			batch = append(batch, a)
			if len(batch) == inputBatch {
				select {
				case batches <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
				batch = make([]MinionAnswer, 0, inputBatch)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			select {
			case batches <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return r.report(nil), nil
}
