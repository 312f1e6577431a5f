package triage

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/internal/fleetgen"
)

// TestDecodeFastFields: every field of the wire types is one the hand
// decoder reads; a field added to the contract must be added there too.
func TestDecodeFastFields(t *testing.T) {
	for _, v := range []any{wireFailedState{}, wireCompileError{}, wireFailure{}, wireCommit{}, wireJob{}} {
		typ := reflect.TypeOf(v)
		var tags []string
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			tags = append(tags, tag)
		}
		got := slices.Clone(fastFields[typ.Name()])
		slices.Sort(tags)
		slices.Sort(got)
		if !slices.Equal(tags, got) {
			t.Errorf("%s: wire fields %v, hand decoder reads %v", typ.Name(), tags, got)
		}
	}
}

// sameDecoding checks that the hand decoder, where it accepts an answer,
// decodes it as the general decoders do.
func sameDecoding(t *testing.T, raw []byte) bool {
	t.Helper()
	fast, ok := decodeFast(Minion{ID: "web-1"}, bytes.TrimSpace(raw))
	if !ok {
		return false
	}
	slow := decodeMinionSlow("web-1", raw)
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("answer %.200s\nhand:    %+v\ngeneral: %+v", raw, fast, slow)
	}
	return true
}

// decodeMinionSlow decodes without the hand decoder.
func decodeMinionSlow(id string, raw []byte) Minion {
	return decodeWith(id, raw, true, false)
}

func TestDecodeFastMatchesGeneral(t *testing.T) {
	var buf bytes.Buffer
	if err := fleetgen.WriteRealistic(&buf, fleetgen.RealisticOptions{Minions: 3000, Datacenters: 3, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	accepted, failing := 0, 0
	err := ReadAnswers(&buf, func(a MinionAnswer) error {
		if sameDecoding(t, a.Raw) {
			accepted++
			if DecodeMinion(a.ID, a.Raw).Status == StatusFailing {
				failing++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Healthy, failing and no-jobs answers are well formed: the hand
	// decoder takes them all (about 93 % of a realistic fleet).
	if accepted < 2700 || failing < 1300 {
		t.Errorf("hand decoder took %d of 3000 answers (%d failing)", accepted, failing)
	}

	cases := map[string]string{
		"escapes":        `{"blame.last_failed_states": [{"__id__": "a\"b\\c\/d", "__sls__": "s\u00e9", "fun": "cmd.run", "name": "x\ty", "comment": "line1\nline2 \ud83d\ude00 \u0041"}], "blame.last_highstate_failure": {"result": true, "status": "failing", "message": "m", "commits": [], "failed_job": {"jid": "1", "time": "t", "retcode": -2, "commit": "c", "codebase_version": "v"}, "last_success_job": null}, "blame.last_compile_errors": []}`,
		"unknown fields": `{"x": [1, {"y": null}], "blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy", "other": {"a": [true, false, -1.5e3]}}, "blame.last_compile_errors": [{"error_types": ["render"], "state": "s", "message": "m", "urls": [], "traceback": "t"}]}`,
		"utf-8":          `{"blame.last_failed_states": [{"comment": "café 日本"}], "blame.last_highstate_failure": {"result": true, "status": "failing"}, "blame.last_compile_errors": []}`,
		// A function that answered a string in place of its results.
		"module missing": `{"blame.last_failed_states": "'blame.last_failed_states' is not available.", "blame.last_highstate_failure": {}, "blame.last_compile_errors": []}`,
		"traceback":      `{"blame.last_failed_states": [], "blame.last_highstate_failure": "Traceback (most recent call last):\n  File \"blame.py\", line 3\nKeyError: 'x'", "blame.last_compile_errors": "also"}`,
		"second string":  `{"blame.last_compile_errors": "Minion did not return. [No response]", "blame.last_failed_states": "__virtual__ returned False: no git", "blame.last_highstate_failure": {"x": 1}}`,
	}
	for name, raw := range cases {
		if !sameDecoding(t, []byte(raw)) {
			t.Errorf("%s: hand decoder gave up", name)
		}
	}
	// The general decoders decide these, with their diagnoses.
	refused := map[string]string{
		"duplicate field":  `{"blame.last_failed_states": [{"comment": "a", "comment": "b"}], "blame.last_highstate_failure": {"result": true, "status": "failing"}, "blame.last_compile_errors": []}`,
		"null string":      `{"blame.last_failed_states": [{"comment": null}], "blame.last_highstate_failure": {"result": true, "status": "failing"}, "blame.last_compile_errors": []}`,
		"missing function": `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "failing"}}`,
		"bad utf-8":        "{\"blame.last_failed_states\": [{\"comment\": \"a\xffb\"}], \"blame.last_highstate_failure\": {\"result\": true, \"status\": \"failing\"}, \"blame.last_compile_errors\": []}",
		"lone surrogate":   `{"blame.last_failed_states": [{"comment": "\ud83d"}], "blame.last_highstate_failure": {"result": true, "status": "failing"}, "blame.last_compile_errors": []}`,
		"fraction retcode": `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "failing", "failed_job": {"retcode": 1.5}}, "blame.last_compile_errors": []}`,
		"trailing garbage": `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy"}, "blame.last_compile_errors": []} x`,
		"truncated":        `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy"}, "blame.last_compile_errors": [`,
		// The general decoders' fallback matches names without case.
		"a field's name in another case":    `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "Status": "healthy", "x": 1, "x": 2}, "blame.last_compile_errors": []}`,
		"a function's name in another case": `{"Blame.Last_Failed_States": "x", "blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy"}, "blame.last_compile_errors": []}`,
	}
	for name, raw := range refused {
		if _, ok := decodeFast(Minion{ID: "web-1"}, []byte(raw)); ok {
			t.Errorf("%s: hand decoder accepted %s", name, raw)
		}
	}
}

func TestDecodeFastSamples(t *testing.T) {
	for _, raw := range []json.RawMessage{
		fakesalt.FailedState(fakesalt.Failure{}), fakesalt.CompileError(fakesalt.Failure{}), fakesalt.Release("a", "b"),
		fakesalt.Healthy(), fakesalt.NoJobs(), fakesalt.BlameFailed("no git history"),
	} {
		sameDecoding(t, raw)
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, raw := range []json.RawMessage{
		fakesalt.FailedState(fakesalt.Failure{}), fakesalt.CompileError(fakesalt.Failure{}), fakesalt.Healthy(),
		json.RawMessage(`{"blame.last_failed_states": [{"comment": "a\u00e9\n"}], "blame.last_highstate_failure": {"result": true, "status": "failing"}, "blame.last_compile_errors": []}`),
	} {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameDecoding(t, raw)
	})
}

func TestScanString(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 50000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x5f))
			switch rng.IntN(40) {
			case 0:
				b[i] = byte(rng.IntN(0x20))
			case 1:
				b[i] = byte(0x80 + rng.IntN(0x80))
			case 2:
				b[i] = '"'
			case 3:
				b[i] = '\\'
			}
		}
		from := rng.IntN(len(b) + 1)
		want, high := len(b), false
		for i := from; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
				want = i
				break
			}
			high = high || b[i] >= 0x80
		}
		// high may also say so of a byte soon after: UTF-8 is then
		// checked for nothing.
		if got, gh := scanString(b, from); got != want || high && !gh {
			t.Fatalf("scanString(%q, %d) = %d, %v; want %d, %v", b, from, got, gh, want, high)
		}
	}
}

// TestDecodeFastScratch decodes, one after another, an answer the hand
// decoder gives up on after reading a job and one whose job lacks fields:
// nothing of the first is left in the second.
func TestDecodeFastScratch(t *testing.T) {
	given := `{"blame.last_failed_states": [{"__id__": "a", "comment": "x"}], "blame.last_highstate_failure": {"result": true, "status": "failing", "commits": [{"commit_id": "c1"}], "failed_job": {"jid": "1", "commit": "c1", "codebase_version": "v1"}, "last_success_job": {"jid": "0", "commit": "c0"}}, "blame.last_compile_errors": [] x`
	second := `{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "failing", "failed_job": {"jid": "2"}, "last_success_job": {"time": "t"}}, "blame.last_compile_errors": []}`
	for range 20 {
		if _, ok := decodeFast(Minion{ID: "web-1"}, []byte(given)); ok {
			t.Fatal("hand decoder took trailing garbage")
		}
		if !sameDecoding(t, []byte(second)) {
			t.Fatal("hand decoder gave up on a well-formed answer")
		}
	}
	m := DecodeMinion("web-2", []byte(second))
	if m.FailedJob.Commit != "" || m.FailedJob.CodebaseVersion != "" || m.LastSuccessJob.JID != "" || len(m.FailedStates) != 0 || len(m.Commits) != 0 {
		t.Errorf("decoded %+v, job %+v, last success %+v", m, *m.FailedJob, *m.LastSuccessJob)
	}
}

// realisticSample returns answers of a realistic fleet the hand decoder
// takes, one of each kind of minion and one with escapes everywhere.
func realisticSample(t *testing.T) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fleetgen.WriteRealistic(&buf, fleetgen.RealisticOptions{Minions: 400, Datacenters: 2, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out [][]byte
	err := ReadAnswers(&buf, func(a MinionAnswer) error {
		m, ok := decodeFast(Minion{ID: a.ID}, bytes.TrimSpace(a.Raw))
		kind := string(m.Status)
		if len(m.CompileErrors) > 0 {
			kind += " compile"
		}
		if ok && !seen[kind] {
			seen[kind] = true
			out = append(out, bytes.Clone(bytes.TrimSpace(a.Raw)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 4 {
		t.Fatalf("kinds of answers: %v", seen)
	}
	return append(out, []byte(`{"blame.last_failed_states": [{"__id__": "a\"b\\c\/d", "__sls__": "s\u00e9", "fun": "cmd.run", "name": "x\ty", "comment": "line1\nline2 \ud83d\ude00 \u0041 caf\u00e9 \"q\" \\ \/ \b\f\r\t end"}], "blame.last_highstate_failure": {"result": true, "status": "failing", "message": "m", "commits": [{"commit_id": "c\u0031", "change": "added"}], "window": "forward", "failed_job": {"jid": "1", "time": "t", "retcode": -2, "commit": "c", "codebase_version": "v"}, "last_success_job": null}, "blame.last_compile_errors": [{"error_types": ["render", "r\u00e9"], "state": "s", "message": "Traceback:\n  File \"x\"\n", "urls": [], "traceback": "T\n\"\\\u0041"}]}`))
}

// TestDecodePrefix: an answer where it lies in its input, the rest of the
// input after it, decodes as the answer alone; cut anywhere inside, it is
// given up on, without reading past the cut.
func TestDecodePrefix(t *testing.T) {
	rest := []byte(",\n    \"web-2\": {\"blame.last_failed_states\": []}}")
	for _, raw := range realisticSample(t) {
		want, ok := decodeFast(Minion{ID: "web-1"}, raw)
		if !ok {
			t.Fatalf("hand decoder gave up on %.200s", raw)
		}
		in := append(bytes.Clone(raw), rest...)
		got, n, ok := decodePrefix(Minion{ID: "web-1"}, in)
		if !ok || n != len(raw) || !reflect.DeepEqual(got, want) {
			t.Errorf("in its input: ok %v, took %d of %d bytes\ngot  %+v\nwant %+v", ok, n, len(raw), got, want)
		}
		for cut := range len(raw) {
			// A copy of exactly the bytes before the cut: reading past
			// them panics.
			if _, _, ok := decodePrefix(Minion{ID: "web-1"}, bytes.Clone(raw[:cut])); ok {
				t.Fatalf("cut at %d of %d: decoded %.200s", cut, len(raw), raw[:cut])
			}
		}
	}
}

// TestDecodePrefixKeepsNoInput: what a decoding returns holds nothing of
// its input nor of the decoder's scratch, which are reused.
func TestDecodePrefixKeepsNoInput(t *testing.T) {
	sample := realisticSample(t)
	var kept []Minion
	var inputs [][]byte
	for range 3 {
		for _, raw := range sample {
			in := bytes.Clone(raw)
			m, _, ok := decodePrefix(Minion{ID: "web-1"}, in)
			if !ok {
				t.Fatalf("hand decoder gave up on %.200s", raw)
			}
			kept = append(kept, m)
			inputs = append(inputs, in)
		}
	}
	for _, in := range inputs {
		for i := range in {
			in[i] = 'x'
		}
	}
	for i, m := range kept {
		want := decodeMinionSlow("web-1", sample[i%len(sample)])
		if !reflect.DeepEqual(m, want) {
			t.Errorf("after its input was overwritten:\ngot  %+v\nwant %+v", m, want)
		}
	}
}

// TestDecodeFastDeepValue: a deeply nested value in a field that is not
// kept is left to the general decoder, whose diagnosis stands.
func TestDecodeFastDeepValue(t *testing.T) {
	deep := `{"x": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `, "blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy"}, "blame.last_compile_errors": []}`
	if _, ok := decodeFast(Minion{ID: "web-1"}, []byte(deep)); ok {
		t.Error("hand decoder read 100 000 nested lists")
	}
	if m := DecodeMinion("web-1", []byte(deep)); m.Status != StatusBlameError {
		t.Errorf("status %s (%s)", m.Status, m.Detail)
	}
	shallow := `{"x": ` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `, "blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "healthy"}, "blame.last_compile_errors": []}`
	if !sameDecoding(t, []byte(shallow)) {
		t.Error("hand decoder gave up on 60 nested lists")
	}
}

// TestDecodeSameAnswer: an answer the decoder remembers, given again for
// another minion, decodes as the general decoder decodes it; a failing
// answer between them changes nothing.
func TestDecodeSameAnswer(t *testing.T) {
	sample := realisticSample(t)
	it := new(interner)
	for round := range 3 {
		for _, raw := range sample {
			// The minion's own id, where its answer names it, masks to
			// another template than a stranger's.
			own := string(regexp.MustCompile(`web-dc[0-9]+-[0-9]+`).Find(raw))
			for _, id := range []string{"web-1", own, "db-2"} {
				in := append(bytes.Clone(raw), " {}"...)
				m, n, ok := it.decode(Minion{ID: id}, in)
				if !ok || n != len(raw) {
					t.Fatalf("round %d: ok %v, took %d of %d bytes", round, ok, n, len(raw))
				}
				if want := decodeMinionSlow(id, raw); !reflect.DeepEqual(m, want) {
					t.Errorf("round %d, %s:\ngot  %+v\nwant %+v", round, id, m, want)
				}
			}
		}
	}
	if len(it.same[0].raw) == 0 {
		t.Error("no answer remembered")
	}
}

// TestRememberKnowsMinion: remember keeps a status and a detail only, and
// checks that a minion holds nothing else: a field added to Minion must be
// checked there too.
func TestRememberKnowsMinion(t *testing.T) {
	var got []string
	typ := reflect.TypeOf(Minion{})
	for i := range typ.NumField() {
		got = append(got, typ.Field(i).Name)
	}
	want := []string{"ID", "Datacenter", "Status", "Detail", "FailedStates", "Commits", "FailedJob", "LastSuccessJob", "CompileErrors", "Window"}
	if !slices.Equal(got, want) {
		t.Errorf("Minion's fields are %v; interner.remember knows %v", got, want)
	}
}

// TestDecodeRepeatedValues: failing minions that report the same commits,
// the same last success or the same comments, as written, among others
// that do not, decode as the general decoder decodes them.
func TestDecodeRepeatedValues(t *testing.T) {
	var buf bytes.Buffer
	if err := fleetgen.WriteRealistic(&buf, fleetgen.RealisticOptions{Minions: 300, Datacenters: 2, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	answers := map[string][]byte{}
	err := ReadAnswers(&buf, func(a MinionAnswer) error {
		answers[a.ID] = bytes.Clone(bytes.TrimSpace(a.Raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	answers["web-1"], answers["web-2"], answers["web-3"] = commitAnswer("web-1"), commitAnswer("web-2"), releaseAnswer()
	it := new(interner)
	hits, shared := 0, 0
	var commits []Commit
	var success *Job
	for id, raw := range answers {
		// Whether the answer holds what the decoder remembers.
		again := len(it.commits) > 2 && bytes.Contains(raw, it.commits) || len(it.success) > 0 && bytes.Contains(raw, it.success) ||
			len(it.comments[0].raw) > 0 && bytes.Contains(raw, it.comments[0].raw)
		m, _, ok := it.decode(Minion{ID: id}, raw)
		if !ok {
			continue
		}
		hits += boolInt(again)
		if want := decodeMinionSlow(id, raw); !reflect.DeepEqual(m, want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", id, m, want)
		}
		// A list or a job made for an earlier minion is shared, not
		// copied: the same array, the same job.
		if len(m.Commits) > 0 && len(commits) > 0 && &m.Commits[0] == &commits[0] ||
			m.LastSuccessJob != nil && m.LastSuccessJob == success {
			shared++
		}
		if m.Status == StatusFailing {
			commits, success = m.Commits, m.LastSuccessJob
		}
	}
	if hits == 0 {
		t.Error("no commits nor last success read again")
	}
	if shared == 0 {
		t.Error("no commits nor last success shared with the minion before")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSkipBlanks checks the skipping of blanks against the plain loop,
// for runs of every length that end at every place.
func TestSkipBlanks(t *testing.T) {
	plain := func(b []byte, i int) int {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i
	}
	for _, run := range []string{" ", "\n", "\n    ", "\r\n\t  \t", "\n                ", " \n \n  \n   "} {
		for n := range 40 {
			b := []byte(strings.Repeat(run, n%4) + strings.Repeat(" ", n) + `"x": 1` + strings.Repeat(" ", n%9))
			for i := range len(b) + 1 {
				if got, want := skipBlanks(b, i), plain(b, i); got != want {
					t.Fatalf("skipBlanks(%q, %d) = %d, want %d", b, i, got, want)
				}
			}
		}
	}
}
