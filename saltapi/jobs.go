package saltapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// maxAnswer bounds the memory one minion's answer may take while a poll is
// read: a blame answer is a few kilobytes, a long failure some hundreds.
const maxAnswer = 8 << 20

// jobReader is what reading one GET /jobs/<jid> answer reports.
type jobReader struct {
	// known tells the minions whose answer was already delivered: their
	// results are skipped, not decoded.
	known func(id string) bool
	// minions receives info[0].Minions, the minions the master expects.
	minions func(ids []string)
	// answer receives the return of each minion not known yet, as soon as
	// it is read.
	answer func(id string, raw json.RawMessage)
}

// read streams a GET /jobs/<jid> answer. Job results read back from the
// master's cache carry extra keys (retcode a dict for multi-function jobs,
// success per function): only the return is kept. Reading stops after
// info: the "return" that follows repeats the results.
//
// Answers read before a broken or truncated part of the body have been
// handed over when read fails: each was read whole.
func (jr jobReader) read(r io.Reader) error {
	dec := jsontext.NewDecoder(r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if err := expectKind(dec, '{'); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := readName(dec)
		if err != nil {
			return err
		}
		if name != "info" {
			if err := dec.SkipValue(); err != nil {
				return bodyError(dec, err)
			}
			continue
		}
		return jr.readInfo(dec)
	}
	return &ProtocolError{Endpoint: "jobs", Reason: "no info in the answer", Excerpt: `{"return": …}`}
}

// readInfo reads the info list: the job's first entry is the job.
func (jr jobReader) readInfo(dec *jsontext.Decoder) error {
	if err := expectKind(dec, '['); err != nil {
		return err
	}
	if dec.PeekKind() != '{' {
		return &ProtocolError{Endpoint: "jobs", Reason: "no info in the answer", Excerpt: `{"info": []}`}
	}
	if _, err := dec.ReadToken(); err != nil {
		return bodyError(dec, err)
	}
	for dec.PeekKind() != '}' {
		name, err := readName(dec)
		if err != nil {
			return err
		}
		switch name {
		case "Minions":
			v, err := dec.ReadValue()
			if err != nil {
				return bodyError(dec, err)
			}
			var ids []string
			if json.Unmarshal(v, &ids) == nil {
				jr.minions(ids)
			}
		case "Result":
			if err := jr.readResult(dec); err != nil {
				return err
			}
		case "Error":
			v, err := dec.ReadValue()
			if err != nil {
				return bodyError(dec, err)
			}
			if v.Kind() != 'n' {
				var msg string
				if json.Unmarshal(v, &msg) != nil {
					msg = string(v)
				}
				return fmt.Errorf("%w: %s", ErrUnknownJob, shorten(msg, maxExcerpt))
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return bodyError(dec, err)
			}
		}
	}
	return nil
}

// readResult reads info[0].Result: minion id → {"return": …, …}.
func (jr jobReader) readResult(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		return bodyError(dec, dec.SkipValue())
	}
	if _, err := dec.ReadToken(); err != nil {
		return bodyError(dec, err)
	}
	for dec.PeekKind() != '}' {
		id, err := readName(dec)
		if err != nil {
			return err
		}
		if jr.known(id) || dec.PeekKind() != '{' {
			// A result that is not an object is no answer yet.
			if err := dec.SkipValue(); err != nil {
				return bodyError(dec, err)
			}
			continue
		}
		if _, err := dec.ReadToken(); err != nil {
			return bodyError(dec, err)
		}
		var ret json.RawMessage
		for dec.PeekKind() != '}' {
			name, err := readName(dec)
			if err != nil {
				return err
			}
			if name != "return" {
				if err := dec.SkipValue(); err != nil {
					return bodyError(dec, err)
				}
				continue
			}
			if ret, err = readBounded(dec, maxAnswer); err != nil {
				return bodyError(dec, err)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return bodyError(dec, err)
		}
		if ret != nil {
			// The job cache keeps what the minion returned: full_return
			// wrapping is only ever added to synchronous answers.
			jr.answer(id, ret)
		}
	}
	_, err := dec.ReadToken()
	return bodyError(dec, err)
}

// readBounded reads the next value whole, or, past limit bytes, skips the
// rest of it and returns a string that says so: the minion is then
// reported with that text rather than held in memory.
func readBounded(dec *jsontext.Decoder, limit int) (json.RawMessage, error) {
	switch dec.PeekKind() {
	case '{', '[':
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if len(v) > limit {
			return tooLarge(len(v), limit), nil
		}
		return bytes.Clone(v), nil
	}
	start := dec.InputOffset()
	depth := dec.StackDepth()
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	over := false
	for {
		switch dec.PeekKind() {
		case '{', '[', '}', ']':
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			if !over {
				if err := enc.WriteToken(tok); err != nil {
					return nil, err
				}
			}
		default:
			// Names and scalars are copied as they were written.
			v, err := dec.ReadValue()
			if err != nil {
				return nil, err
			}
			if !over {
				if err := enc.WriteValue(v); err != nil {
					return nil, err
				}
			}
		}
		if !over && buf.Len() > limit {
			over = true
			buf = bytes.Buffer{}
		}
		if dec.StackDepth() == depth {
			break
		}
	}
	if over {
		return tooLarge(int(dec.InputOffset()-start), limit), nil
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// tooLarge is the answer delivered for a minion whose answer was not kept.
func tooLarge(size, limit int) json.RawMessage {
	b, _ := json.Marshal(fmt.Sprintf("blame answer of %d bytes not read: Sift reads at most %d bytes of one minion's answer", size, limit))
	return b
}

func readName(dec *jsontext.Decoder) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", bodyError(dec, err)
	}
	if tok.Kind() != '"' {
		return "", bodyError(dec, fmt.Errorf("%s where a name was expected", tok.Kind()))
	}
	return tok.String(), nil
}

func expectKind(dec *jsontext.Decoder, k jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return bodyError(dec, err)
	}
	if tok.Kind() != k {
		return &ProtocolError{Endpoint: "jobs", Reason: fmt.Sprintf("%s where %s was expected, at byte %d", tok.Kind(), k, dec.InputOffset())}
	}
	return nil
}

// bodyError describes a body that broke off or is not JSON: the poll is
// worth making again.
func bodyError(dec *jsontext.Decoder, err error) error {
	if err == nil {
		return nil
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return err
	}
	var se *jsontext.SyntacticError
	reason := "answer broke off"
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		reason = "answer cut short"
	case errors.As(err, &se):
		reason = "not JSON"
	}
	return &ProtocolError{Endpoint: "jobs", Reason: fmt.Sprintf("%s at byte %d: %v", reason, dec.InputOffset(), err)}
}
