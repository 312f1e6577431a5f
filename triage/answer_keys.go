package triage

import (
	"bytes"
	"encoding/binary"
)

// A keySet is the keys the hand decoder knows in objects of one wire
// type: the fields it keeps, numbered in order, then keys it skips that
// every answer has (timings, changes), so that their end need not be
// looked for. A key is matched against the input as it is written,
// closing quote and colon included, by comparing words: input that
// matches holds that key with no escape. Each reader guesses which key comes next from
// the key that followed the one before last time (the blame module
// writes its keys in one order, salt-api in another), and tries that one
// first.
type keySet struct {
	id   int
	n    int
	keys [maxKeys]wireKey
}

// A wireKey is a key, its closing quote and a colon as little-endian
// words, zero past the end, and the masks of its bytes in them.
type wireKey struct {
	w, m  [maxKeyWords]uint64
	long  bool // more than two words
	field int
	name  string
}

const (
	maxKeyWords = 4  // keys of up to 30 bytes
	maxKeys     = 15 // per set, with room for the start of an object in follow
	skipField   = -1 // a key whose value is not kept, or one not known
	endFields   = -2 // the end of the object, or a surprise
)

// The key sets, numbered for follow.
var (
	answerKeys      = newKeySet(0, []string{FunFailedStates, FunHighstateFailure, FunCompileErrors}, nil)
	failedStateKeys = newKeySet(1, []string{"__id__", "__sls__", "fun", "name", "comment"},
		[]string{"__run_num__", "changes", "duration", "result", "start_time", "start_time_stamp", "finish_time_stamp"})
	compileErrorKeys = newKeySet(2, []string{"error_types", "state", "message", "urls"}, []string{"job_timestamp", "traceback"})
	failureKeys      = newKeySet(3, []string{"result", "status", "message", "window", "commits", "failed_job", "last_success_job"}, nil)
	commitKeys       = newKeySet(4, []string{"commit_id", "author_name", "author_email", "commit_datetime", "path", "change"}, nil)
	jobKeys          = newKeySet(5, []string{"jid", "time", "retcode", "commit", "codebase_version"}, nil)
)

const keySets = 6

func newKeySet(id int, kept, skipped []string) *keySet {
	ks := &keySet{id: id}
	add := func(name string, field int) {
		k := wireKey{name: name, field: field}
		quoted := name + `":`
		if len(quoted) > 8*maxKeyWords || ks.n == maxKeys {
			panic("triage: key set too large: " + name)
		}
		k.long = len(quoted) > 16
		for i := 0; i < len(quoted); i++ {
			k.w[i/8] |= uint64(quoted[i]) << (8 * (i % 8))
			k.m[i/8] |= 0xff << (8 * (i % 8))
		}
		ks.keys[ks.n] = k
		ks.n++
	}
	for i, name := range kept {
		add(name, i)
	}
	for _, name := range skipped {
		add(name, skipField)
	}
	return ks
}

// keyGuesses is what a reader learnt of the order of keys: by key set,
// for the key before (0 at the start of an object), the key after.
type keyGuesses [keySets][maxKeys + 1]uint8

// field moves past the next key of an object that the reader keeps, to
// its value, and returns the key's field in ks, or endFields past the
// object's end (or on a surprise). The values of other keys it reads
// through. prev is the index in ks of the key before, -1 at the first;
// field updates it. first is true right after the object's brace.
func (r *wireReader) field(ks *keySet, prev *int, first bool) int {
	b, i := r.b, r.i
	for ; !r.bad; b, i, first = r.b, r.i, false {
		if i < len(b) && b[i] <= ' ' {
			i = skipBlanks(b, i)
		}
		if i >= len(b) {
			r.bad = true
			return endFields
		}
		if b[i] == '}' {
			r.i = i + 1
			return endFields
		}
		if !first {
			if b[i] != ',' {
				r.bad = true
				return endFields
			}
			if i++; i < len(b) && b[i] <= ' ' {
				i = skipBlanks(b, i)
			}
		}
		if i >= len(b) || b[i] != '"' {
			r.bad = true
			return endFields
		}
		start, k := i+1, -1
		if start+8*maxKeyWords <= len(b) {
			w := b[start : start+8*maxKeyWords]
			x0, x1 := binary.LittleEndian.Uint64(w), binary.LittleEndian.Uint64(w[8:])
			guess := &r.it.guess[ks.id][*prev+1]
			k = int(*guess)
			if kk := &ks.keys[k]; (x0&kk.m[0]^kk.w[0])|(x1&kk.m[1]^kk.w[1]) != 0 || kk.long && !kk.matchTail(w) {
				k = -1
				for j := range ks.keys[:ks.n] {
					kk := &ks.keys[j]
					if (x0&kk.m[0]^kk.w[0])|(x1&kk.m[1]^kk.w[1]) == 0 && (!kk.long || kk.matchTail(w)) {
						k = j
						*guess = uint8(j)
						break
					}
				}
			}
			if k >= 0 {
				// The reader is left at the value, past its blanks.
				if i = start + len(ks.keys[k].name) + 2; i < len(b) && b[i] <= ' ' {
					i = skipBlanks(b, i)
				}
				r.i = i
			}
		}
		if k < 0 {
			// Near the end of the input, a key not known, or blanks
			// before the colon: find the key's end.
			end, _ := scanString(b, start)
			if end >= len(b) || b[end] != '"' {
				r.bad = true // an escape, a control character or the end
				return endFields
			}
			for j := range ks.keys[:ks.n] {
				if string(b[start:end]) == ks.keys[j].name {
					k = j
					break
				}
			}
			if i = skipBlanks(b, end+1); i >= len(b) || b[i] != ':' {
				r.bad = true
				return endFields
			}
			r.i = skipBlanks(b, i+1)
			if k < 0 {
				if ks.foldsTo(b[start:end]) {
					// The general decoder may take it for the field
					// (its fallback matches names without case): it
					// decides.
					r.bad = true
					return endFields
				}
				r.skip(0)
				continue
			}
		}
		*prev = k
		if f := ks.keys[k].field; f != skipField {
			return f
		}
		r.skip(0)
	}
	return endFields
}

// matchTail reports whether the third and fourth words of w hold the
// rest of a long key.
func (k *wireKey) matchTail(w []byte) bool {
	x2, x3 := binary.LittleEndian.Uint64(w[16:]), binary.LittleEndian.Uint64(w[24:])
	return (x2&k.m[2]^k.w[2])|(x3&k.m[3]^k.w[3]) == 0
}

// foldsTo reports whether key is, but for case, the key of a field kept.
func (ks *keySet) foldsTo(key []byte) bool {
	for _, k := range ks.keys[:ks.n] {
		if k.field != skipField && bytes.EqualFold(key, []byte(k.name)) {
			return true
		}
	}
	return false
}

// kept returns the keys of the fields kept, in their order.
func (ks *keySet) kept() []string {
	var names []string
	for _, k := range ks.keys[:ks.n] {
		if k.field != skipField {
			names = append(names, k.name)
		}
	}
	return names
}
