package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// sequentialRead is what the parallel reading must give: the input read
// from its start, one answer after the other, each decoded on its own.
func sequentialRead(in []byte, unwanted func(string) bool) ([]Minion, error) {
	var out []Minion
	s := newScanner(bytes.NewReader(in))
	s.unwanted = unwanted
	err := s.read(func(a inputAnswer) error {
		if a.TooLarge() {
			out = append(out, blameError(Minion{ID: a.ID}, tooLarge(a.Size)))
		} else {
			out = append(out, DecodeMinion(a.ID, a.Raw))
		}
		return nil
	})
	return out, err
}

// keep hands on a decoded minion as it is.
func keep(m Minion, _ *batchArena) Minion { return m }

// ownMinion copies what a minion of a parallel reading holds only until
// it is counted: its strings.
func ownMinion(m Minion) Minion {
	c := strings.Clone
	m.ID, m.Datacenter, m.Detail, m.Window = c(m.ID), c(m.Datacenter), c(m.Detail), c(m.Window)
	if m.FailedStates != nil {
		m.FailedStates = slices.Clone(m.FailedStates)
		for i := range m.FailedStates {
			s := &m.FailedStates[i]
			s.ID, s.SLS, s.Fun, s.Name, s.Comment, s.Template = c(s.ID), c(s.SLS), c(s.Fun), c(s.Name), c(s.Comment), c(s.Template)
		}
	}
	if m.Commits != nil {
		m.Commits = slices.Clone(m.Commits)
		for i := range m.Commits {
			k := &m.Commits[i]
			k.ID, k.AuthorName, k.AuthorEmail, k.Datetime, k.Path, k.Change = c(k.ID), c(k.AuthorName), c(k.AuthorEmail), c(k.Datetime), c(k.Path), c(k.Change)
		}
	}
	job := func(j *Job) *Job {
		if j == nil {
			return nil
		}
		o := *j
		o.JID, o.Time, o.Commit, o.CodebaseVersion = c(o.JID), c(o.Time), c(o.Commit), c(o.CodebaseVersion)
		return &o
	}
	m.FailedJob, m.LastSuccessJob = job(m.FailedJob), job(m.LastSuccessJob)
	if m.CompileErrors != nil {
		m.CompileErrors = slices.Clone(m.CompileErrors)
		for i := range m.CompileErrors {
			e := &m.CompileErrors[i]
			e.State, e.Message, e.Template = c(e.State), c(e.Message), c(e.Template)
			e.ErrorTypes, e.URLs = cloneStrings(e.ErrorTypes), cloneStrings(e.URLs)
		}
	}
	return m
}

func cloneStrings(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strings.Clone(s)
	}
	return out
}

// poisonArenas makes the text of minions counted unreadable for the rest
// of the test: what keeps it past its batch reads garbage.
func poisonArenas(t testing.TB) {
	arenaPoison.Store(true)
	t.Cleanup(func() { arenaPoison.Store(false) })
}

func parallelRead(in io.Reader, opt readOptions) ([]Minion, error) {
	var (
		mu   sync.Mutex
		out  []Minion
		busy bool
		over error
	)
	err := readParallel(context.Background(), in, opt, keep, func(ms []Minion) {
		mu.Lock()
		if busy {
			over = errors.New("add called while another add ran")
		}
		busy = true
		mu.Unlock()
		for _, m := range ms {
			out = append(out, ownMinion(m))
		}
		mu.Lock()
		busy = false
		mu.Unlock()
	})
	if over != nil {
		return nil, over
	}
	return out, err
}

// sameReading checks the parallel reading of in, with blocks of each
// size, against the sequential one: the same minions in the same order,
// or the same error.
func sameReading(t *testing.T, name string, in []byte, unwanted func(string) bool, blocks ...int) {
	t.Helper()
	want, wantErr := sequentialRead(in, unwanted)
	for _, block := range blocks {
		// One, two or three parts decoding at once, and windows of two
		// to four blocks, by the block size.
		workers := 1 + block%3
		{
			got, err := parallelRead(bytes.NewReader(in), readOptions{unwanted: unwanted, block: block, window: 2 + block/3%3, workers: workers})
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("%s, blocks of %d, %d workers: error %v, want %v", name, block, workers, err, wantErr)
			}
			if wantErr != nil {
				continue
			}
			if len(got) != len(want) {
				t.Fatalf("%s, blocks of %d, %d workers: %d minions, want %d", name, block, workers, len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("%s, blocks of %d, %d workers: minion %d =\n%+v\nwant\n%+v", name, block, workers, i, got[i], want[i])
				}
			}
		}
	}
}

// trickyAnswers are answers that look, here and there, like where a
// minion begins: keys after commas inside answers, objects of answers as
// values, commas and braces in strings, escaped quotes.
func trickyAnswers() map[string]json.RawMessage {
	nested, _ := json.Marshal(map[string]json.RawMessage{"web-fake": commitAnswer("web-fake")})
	return map[string]json.RawMessage{
		"web-a": commitAnswer("web-a"),
		"web-b": healthyAnswer(),
		"web-c": json.RawMessage(`false`),
		"web-d": json.RawMessage(`"'blame.last_failed_states' is not available."`),
		"web-e": json.RawMessage(`{"blame.last_failed_states": [], "extra": ` + string(nested) + `}`),
		"web-f": json.RawMessage(`{"comment": "a, \"web-x\": {\"blame.last_failed_states\": []}, {\"b\": 1}"}`),
		"web-g": stateAnswer("web-g"),
		"web-h": json.RawMessage(`{"x": [1, 2.5e3, -0, true, null, {"k": ",\"k\": {"}]}`),
		"web-i": vaultAnswer(),
		"web-j": json.RawMessage(`null`),
		"web-k": moduleMissingAnswer(),
	}
}

// formats writes answers in each form saved evidence comes in.
func formats(answers map[string]json.RawMessage) map[string][]byte {
	ids := make([]string, 0, len(answers))
	for id := range answers {
		ids = append(ids, id)
	}
	// Map order is random; a fixed order keeps failures reproducible.
	slices.Sort(ids)
	var static, pretty, perMinion bytes.Buffer
	static.WriteString("{")
	pretty.WriteString("{")
	for i, id := range ids {
		if i > 0 {
			static.WriteString(", ")
			pretty.WriteString(",")
		}
		fmt.Fprintf(&static, "%q: %s", id, answers[id])
		var indented bytes.Buffer
		if err := json.Indent(&indented, answers[id], "    ", "    "); err != nil {
			panic(err)
		}
		fmt.Fprintf(&pretty, "\n    %q: %s", id, indented.Bytes())
		fmt.Fprintf(&perMinion, "{\n    %q: %s\n}\n", id, answers[id])
	}
	static.WriteString("}")
	pretty.WriteString("\n}\n")
	return map[string][]byte{
		"static":     static.Bytes(),
		"pretty":     pretty.Bytes(),
		"per minion": perMinion.Bytes(),
		"salt-api":   []byte(`{"return": [` + static.String() + `, {"web-z": false}]}`),
		"jobs":       []byte(`{"info": [{"jid": "1", "Result": {"web-a": {"return": {"x": 1}}}}], "return": [` + static.String() + `], "extra": {"a": "b"}}`),
		"two docs":   []byte(static.String() + "\n" + strings.ReplaceAll(static.String(), `"web-`, `"web2-`)),
	}
}

func TestReadParallelSameAsSequential(t *testing.T) {
	poisonArenas(t)
	for name, in := range formats(trickyAnswers()) {
		t.Run(name, func(t *testing.T) {
			sameReading(t, name, in, nil, 6, 7, 16, 62, 256, 4096, 1<<20)
			if name == "pretty" {
				sameReading(t, name, in, nil, 1, 2) // a part for each byte
			}
			sameReading(t, name+", one minion", in, func(id string) bool { return id != "web-g" }, 5, 64, 1<<20)
		})
	}
}

// TestReadParallelErrors cuts inputs at every byte, and breaks them: the
// parallel reading fails as the sequential one does, with its message.
func TestReadParallelErrors(t *testing.T) {
	answers := map[string]json.RawMessage{"web-a": commitAnswer("web-a"), "web-b": json.RawMessage(`false`), "web-c": healthyAnswer()}
	for name, in := range formats(answers) {
		// Every byte of the start and the end, and bytes all along.
		for n := 0; n < len(in); n++ {
			if n < 16 || len(in)-n < 16 || n%53 == 0 {
				sameReading(t, fmt.Sprintf("%s cut at %d", name, n), in[:n], nil, 13+n%3, 64+n%3)
			}
		}
		sameReading(t, name+" and garbage", append(append([]byte{}, in...), " x"...), nil, 3, 17, 100)
	}
	for _, in := range []string{"", "   ", "[1,2]", `{"return": {"web-1": true}}`, `{"web-1": true} garbage`,
		`{"web-1": {}}{"web-2": {}} ]`, `{"web-1": {"a": }}`, `{"web-1": tru}`, `{"` + strings.Repeat("w", 2000) + `": false}`,
		`{"web-1": false, "web-1": {}}`, "{\"web-\xff\": false}", `{"return": [{"web-1": false}, 3]}`} {
		sameReading(t, fmt.Sprintf("%q", in), []byte(in), nil, 1, 4, 64)
	}
}

// TestReadParallelRealistic reads a realistic fleet in small blocks, so
// that many parts guess, and checks it against the sequential reading.
func TestReadParallelRealistic(t *testing.T) {
	poisonArenas(t)
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 400, Datacenters: 3, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	sameReading(t, "realistic", in.Bytes(), nil, 997, 4096, 65536)
	compact, err := compactJSON(in.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameReading(t, "realistic salt-api", []byte(`{"return": [`+string(compact)+`]}`), nil, 997, 4096)
}

func compactJSON(b []byte) ([]byte, error) {
	var out bytes.Buffer
	err := json.Compact(&out, b)
	return out.Bytes(), err
}

// TestReadParallelRandomReads reads through readers that return a few
// bytes at a time: blocks are filled whatever the reads give.
func TestReadParallelRandomReads(t *testing.T) {
	poisonArenas(t)
	in := formats(trickyAnswers())["pretty"]
	want, err := sequentialRead(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"byte": iotest.OneByteReader(bytes.NewReader(in)),
		"half": iotest.HalfReader(bytes.NewReader(in)),
	} {
		got, err := parallelRead(r, readOptions{block: 64, window: 3, workers: 2})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d minions, err %v; want %d", name, len(got), err, len(want))
		}
	}
	failing := iotest.TimeoutReader(bytes.NewReader(in))
	_, err = parallelRead(failing, readOptions{block: 64, window: 3, workers: 2})
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("read error = %v, want %v", err, iotest.ErrTimeout)
	}
}

// TestReadParallelCancel stops a reading half way: it returns the
// context's error, and every part's goroutine is done.
func TestReadParallelCancel(t *testing.T) {
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 2000, Datacenters: 2, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	err := readParallel(ctx, &in, readOptions{block: 8192, window: 4, workers: 2}, keep, func(ms []Minion) {
		seen += len(ms)
		if seen > 500 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want %v", err, context.Canceled)
	}
}

// FuzzReadParallel reads any input in blocks of any size: the parallel
// reading is the sequential one.
func FuzzReadParallel(f *testing.F) {
	poisonArenas(f)
	for _, in := range formats(trickyAnswers()) {
		f.Add(in, uint8(7))
	}
	f.Add([]byte(`{"a": {"b": {"c": ,"d": {"blame.last_failed_states": []}}}}`), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, block uint8) {
		sameReading(t, "fuzz", in, nil, int(block)%200+1)
	})
}

func TestNextStart(t *testing.T) {
	tests := []struct {
		in   string
		from int
		want int
	}{
		{`{"a": 1}`, 0, 1},
		{`{"a": 1, "b": 2}`, 2, 9},
		{"x,\n\t \"b\"", 0, 5},
		{`"a" "b"`, 0, -1},
		{`[1, "b"]`, 0, 4}, // a list's string looks the same: the reading decides
		{``, 0, -1},
	}
	for _, tc := range tests {
		if got := nextStart([]byte(tc.in), tc.from); got != tc.want {
			t.Errorf("nextStart(%q, %d) = %d, want %d", tc.in, tc.from, got, tc.want)
		}
	}
}

// TestReadParallelFile reads regular files, which are mapped block by
// block where the system can: the same reading as from the start.
func TestReadParallelFile(t *testing.T) {
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 300, Datacenters: 3, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	want, err := sequentialRead(in.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.json")
	if err := os.WriteFile(path, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, block := range []int{os.Getpagesize(), 16 * os.Getpagesize(), partBlock, 1000} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parallelRead(f, readOptions{block: block, window: 3, workers: 2})
		f.Close()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("blocks of %d: %d minions, err %v; want %d", block, len(got), err, len(want))
		}
	}
}

// TestReadParallelFileCut cuts a file short while it is read: the reading
// fails with an error that says so, and the process goes on.
func TestReadParallelFileCut(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("files are read, not mapped, here")
	}
	var in bytes.Buffer
	if err := fleetgen.WriteRealistic(&in, fleetgen.RealisticOptions{Minions: 1000, Datacenters: 3, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.json")
	if err := os.WriteFile(path, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cut := false
	err = readParallel(context.Background(), f, readOptions{block: os.Getpagesize(), window: 64, workers: 2}, keep, func([]Minion) {
		if !cut {
			cut = true
			if err := os.Truncate(path, 0); err != nil {
				t.Error(err)
			}
		}
	})
	if !errors.Is(err, errFileChanged) {
		t.Fatalf("err = %v, want %v", err, errFileChanged)
	}
}
