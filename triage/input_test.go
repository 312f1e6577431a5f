package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

func staticDoc(answers map[string]json.RawMessage) []byte {
	b, _ := json.Marshal(answers)
	return b
}

func TestTriageInputFormats(t *testing.T) {
	answers := merge(fleet("ams01", 6, commitAnswer), fleet("ams01h", 2, func(string) json.RawMessage { return healthyAnswer() }),
		map[string]json.RawMessage{"web-down": json.RawMessage(`false`)})
	static := staticDoc(answers)
	var perMinion bytes.Buffer
	for id, raw := range answers {
		fmt.Fprintf(&perMinion, "{\n    %q: %s\n}\n", id, raw)
	}
	saltapi := []byte(`{"return": [` + string(static) + `]}`)
	jobs := []byte(`{"info": [{"jid": "1", "Result": {}}], "return": [` + string(static) + `]}`)

	tr := New(testInventory(), nil, Options{})
	for name, in := range map[string][]byte{"static": static, "per minion": perMinion.Bytes(), "salt-api": saltapi, "jobs": jobs} {
		t.Run(name, func(t *testing.T) {
			rep, err := tr.TriageInput(context.Background(), Scope{ScopeDatacenter, "ams01"}, bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			want := Counts{Expected: 9, Answered: 8, Healthy: 2, Failing: 6, Unreachable: 1}
			if rep.Counts != want {
				t.Errorf("counts = %+v, want %+v", rep.Counts, want)
			}
			if rep.Causes[0].Kind != CauseCommit || rep.Causes[0].Datacenters[0] != "ams01" {
				t.Errorf("top cause = %+v", rep.Causes[0])
			}
		})
	}
}

func TestTriageInputMinionScope(t *testing.T) {
	in := staticDoc(merge(fleet("ams01", 3, commitAnswer)))
	tr := New(testInventory(), nil, Options{})
	rep, err := tr.TriageInput(context.Background(), Scope{ScopeMinion, "web-ams01-001"}, bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Expected != 1 || rep.Counts.Failing != 1 {
		t.Errorf("counts = %+v", rep.Counts)
	}
	rep, err = tr.TriageInput(context.Background(), Scope{ScopeMinion, "web-other"}, bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Unreachable != 1 {
		t.Errorf("a minion absent from the input should count unreachable: %+v", rep.Counts)
	}
}

func TestReadAnswersErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "input: empty"},
		{"[1,2]", "want an object of minion answers"},
		{`{"web-1": {"a": `, "input: minion \"web-1\""},
		{`{"return": {"web-1": true}}`, `"return" is not a list`},
		{`{"web-1": true} garbage`, "invalid character 'g'"},
	}
	for _, tc := range tests {
		err := ReadAnswers(strings.NewReader(tc.in), func(MinionAnswer) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadAnswers(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// hugeReader generates an input of any size without holding it: head,
// then n bytes of fill, then tail.
type hugeReader struct {
	head, tail string
	fill       byte
	n          int64
	at         int64
	block      []byte
}

func (r *hugeReader) Read(p []byte) (int, error) {
	total := int64(len(r.head)) + r.n + int64(len(r.tail))
	if r.at >= total {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.at < total {
		switch {
		case r.at < int64(len(r.head)):
			c := copy(p[k:], r.head[r.at:])
			k, r.at = k+c, r.at+int64(c)
		case r.at < int64(len(r.head))+r.n:
			if len(r.block) == 0 {
				r.block = bytes.Repeat([]byte{r.fill}, 64<<10)
			}
			c := int(min(int64(len(p)-k), int64(len(r.head))+r.n-r.at, int64(len(r.block))))
			copy(p[k:k+c], r.block)
			k, r.at = k+c, r.at+int64(c)
		default:
			c := copy(p[k:], r.tail[r.at-int64(len(r.head))-r.n:])
			k, r.at = k+c, r.at+int64(c)
		}
	}
	return k, nil
}

// TestTriageInputBoundedMemory feeds inputs 32 times the bound on one
// answer: each is read through in flat memory, and what cannot be kept is
// refused with an error or a blame error that names the limit.
func TestTriageInputBoundedMemory(t *testing.T) {
	const n = 128 << 20
	healthy := string(healthyAnswer())
	tests := []struct {
		name    string
		in      *hugeReader
		err     string // the whole input is refused
		counts  Counts
		message string // or one minion is a blame error saying this
	}{
		{name: "whitespace", in: &hugeReader{head: `{"web-1": ` + healthy + `}`, fill: ' ', n: n, tail: "\n"},
			counts: Counts{Expected: 1, Answered: 1, Healthy: 1}},
		{name: "whitespace only", in: &hugeReader{fill: '\n', n: n}, err: "input: empty"},
		{name: "one huge string answer", in: &hugeReader{head: `{"web-1": ` + healthy + `, "web-2": "`, fill: 'A', n: n, tail: `"}`},
			counts:  Counts{Expected: 2, Answered: 2, Healthy: 1, BlameError: 1},
			message: "answer of 128.0 MiB is over the 4.0 MiB limit of one answer; not read"},
		{name: "one huge answer", in: &hugeReader{head: `{"web-2": {"blame.last_failed_states": [` + strings.Repeat(`{"comment": "x"}, `, 10), fill: ' ', n: n, tail: `{}]}, "web-1": ` + healthy + `}`},
			counts:  Counts{Expected: 2, Answered: 2, Healthy: 1, BlameError: 1},
			message: "over the 4.0 MiB limit of one answer"},
		{name: "huge info", in: &hugeReader{head: `{"info": [{"Result": "`, fill: 'x', n: n, tail: `"}], "return": [{"web-1": ` + healthy + `}]}`},
			counts: Counts{Expected: 1, Answered: 1, Healthy: 1}},
		{name: "huge minion id", in: &hugeReader{head: `{"`, fill: 'w', n: n, tail: `": false}`},
			err: "over the 1024-byte limit of a minion id"},
		{name: "unterminated string", in: &hugeReader{head: `{"web-1": "`, fill: 'x', n: n},
			err: `input: minion "web-1": unexpected end of input at byte 134217739`},
	}
	tr := New(Inventory{Datacenters: []Datacenter{{Name: "ams01"}}}, nil, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var base [1]metrics.Sample
			base[0].Name = "/memory/classes/heap/objects:bytes"
			metrics.Read(base[:])
			var rep *Report
			var err error
			peak := peakHeap(func() {
				rep, err = tr.TriageInput(context.Background(), Scope{ScopeDatacenter, "ams01"}, tc.in)
			})
			grown := int64(peak) - int64(base[0].Value.Uint64())
			t.Logf("heap grew by %.1f MiB", float64(grown)/(1<<20))
			if grown > 40<<20 {
				t.Errorf("heap grew by %d MiB reading %d MiB", grown>>20, n>>20)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Counts != tc.counts {
				t.Errorf("counts = %+v, want %+v", rep.Counts, tc.counts)
			}
			if tc.message == "" {
				return
			}
			for _, c := range rep.Causes {
				if c.Kind == CauseBlameError {
					if len(c.Evidence.Messages) == 0 || !strings.Contains(c.Evidence.Messages[0], tc.message) {
						t.Errorf("blame error says %q, want %q", c.Evidence.Messages, tc.message)
					}
					return
				}
			}
			t.Errorf("no blame error cause among %+v", rep.Causes)
		})
	}
}

func TestReadAnswersStreams(t *testing.T) {
	// Answers are handed out as they are read, and stay valid: each one
	// is checked after the next ones were read.
	var in bytes.Buffer
	in.WriteString(`{"return": [{`)
	for i := range 5000 {
		if i > 0 {
			in.WriteString(", ")
		}
		fmt.Fprintf(&in, `"web-%d": {"n": %d, "s": "a \"quoted\" \\ value %d"}`, i, i, i)
	}
	in.WriteString(`}]}` + "\n" + `{"web-x": false}`)
	var got []MinionAnswer
	err := ReadAnswers(&in, func(a MinionAnswer) error { got = append(got, a); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5001 {
		t.Fatalf("%d answers, want 5001", len(got))
	}
	for i, a := range got[:5000] {
		want := fmt.Sprintf(`{"n": %d, "s": "a \"quoted\" \\ value %d"}`, i, i)
		if a.ID != fmt.Sprintf("web-%d", i) || string(a.Raw) != want {
			t.Fatalf("answer %d = %s %s, want %s", i, a.ID, a.Raw, want)
		}
	}
	if string(got[5000].Raw) != "false" {
		t.Errorf("last answer = %s", got[5000].Raw)
	}
}

// TestTriageInputSameAsDecoded checks the reading of saved evidence in
// parallel parts, whose blocks are reused once read, against decoding each
// answer on its own: the same counts and the same causes, evidence
// included. The fleet is larger than the blocks in flight, so blocks are
// reused many times over.
func TestTriageInputSameAsDecoded(t *testing.T) {
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 12000, Datacenters: 4, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if in.Len() < 2*partWindow*partBlock {
		t.Fatalf("fleet of %d bytes is too small to reuse buffers", in.Len())
	}
	// And a document of failures whose requisites are not among them:
	// the names counted are parts of the comments.
	orphans := map[string]json.RawMessage{}
	for i := range 300 {
		id := fmt.Sprintf("web-orphan-%03d", i)
		orphans[id] = answerSpec{
			status: "failing",
			states: []map[string]any{{
				"__id__": "nginx-reload", "__sls__": "webserver", "fun": "cmd.run", "name": "nginx -s reload " + id, "result": false,
				"comment": fmt.Sprintf("One or more requisite failed: webserver.root-%d", i%7),
			}},
			failedVersion: "v1", successVer: "v1",
		}.raw()
	}
	doc, err := json.Marshal(orphans)
	if err != nil {
		t.Fatal(err)
	}
	in.Write(doc)
	// What the parts decode is counted and let go of, its text made
	// garbage: the report must hold copies.
	poisonArenas(t)
	agg := NewAggregator("")
	err = ReadAnswers(bytes.NewReader(in.Bytes()), func(a MinionAnswer) error {
		m := DecodeMinion(a.ID, a.Raw)
		m.Datacenter = "ams01"
		agg.Add(m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, causes, _ := agg.Finish()

	tr := New(Inventory{Datacenters: []Datacenter{{Name: "ams01"}}}, nil, Options{})
	rep, err := tr.TriageInput(context.Background(), Scope{ScopeDatacenter, "ams01"}, &in)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts != counts {
		t.Errorf("counts = %+v, want %+v", rep.Counts, counts)
	}
	if !reflect.DeepEqual(rep.Causes, causes) {
		t.Errorf("causes differ from decoding each answer on its own:\n got %d causes, first %+v\nwant %d causes, first %+v",
			len(rep.Causes), rep.Causes[0], len(causes), causes[0])
	}
}

// TestReadAnswersEscapes reads answers whose strings are full of escapes
// (quotes, backslashes, newlines) a byte at a time and all at once: each
// answer comes out as it was written, whatever falls at a read's end.
func TestReadAnswersEscapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	pieces := []string{`\"`, `\\`, `\n`, `\u00e9`, `a`, `bc`, ` `, `\\\"`, `\/`, `"`, `{`, `}`, `[`, `,`}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	var doc bytes.Buffer
	var want []MinionAnswer
	doc.WriteString("{")
	for i := range 300 {
		raw, err := json.Marshal(map[string]any{"comment": str(), "list": []string{str(), str()}, "n": i})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("web-%03d", i)
		if i > 0 {
			doc.WriteString(",")
		}
		fmt.Fprintf(&doc, "\n  %q: %s", id, raw)
		want = append(want, MinionAnswer{ID: id, Raw: raw})
	}
	doc.WriteString("\n}\n")
	for name, r := range map[string]func() io.Reader{
		"whole": func() io.Reader { return bytes.NewReader(doc.Bytes()) },
		"byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(doc.Bytes())) },
		"half":  func() io.Reader { return iotest.HalfReader(bytes.NewReader(doc.Bytes())) },
	} {
		var got []MinionAnswer
		if err := ReadAnswers(r(), func(a MinionAnswer) error { got = append(got, a); return nil }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d answers, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || !bytes.Equal(got[i].Raw, want[i].Raw) {
				t.Fatalf("%s: answer %d = %s %s, want %s %s", name, i, got[i].ID, got[i].Raw, want[i].ID, want[i].Raw)
			}
		}
	}
}
