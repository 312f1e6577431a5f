package triage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// failingMinion is a failing minion of dc with the given failed states and
// no commit, release or service to explain it.
func failingMinion(id, dc string, states ...FailedState) Minion {
	return Minion{
		ID: id, Datacenter: dc, Status: StatusFailing, FailedStates: states,
		FailedJob:      &Job{Time: "2025-10-22T10:00:16+00:00", Commit: "e4a91b2", CodebaseVersion: "v1"},
		LastSuccessJob: &Job{Time: "2025-10-22T09:45:12+00:00", Commit: "e4a91b2", CodebaseVersion: "v1"},
	}
}

func causesOf(t *testing.T, minions []Minion) []Cause {
	t.Helper()
	agg := NewAggregator("")
	for _, m := range minions {
		agg.Add(m)
	}
	_, causes, _ := agg.Finish()
	return causes
}

func TestSignatureKey(t *testing.T) {
	tests := []struct {
		name string
		a, b Signature
		same bool
	}{
		{"equal signatures", Signature{"cmd.run", "a", "s", "t"}, Signature{"cmd.run", "a", "s", "t"}, true},
		{"a | moves between id and template", Signature{"cmd.run", "grep x | sort", "s", "t"}, Signature{"cmd.run", "grep x ", "s", " sort|t"}, false},
		{"sls differs", Signature{"cmd.run", "a", "s1", "t"}, Signature{"cmd.run", "a", "s2", "t"}, false},
		{"template differs", Signature{"cmd.run", "a", "s", "t1"}, Signature{"cmd.run", "a", "s", "t2"}, false},
		{"compile error and state", Signature{"", "", "web", "t"}, Signature{"web", "", "", "t"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Key() == tc.b.Key(); got != tc.same {
				t.Errorf("%q and %q: same %v, want %v", tc.a.Key(), tc.b.Key(), got, tc.same)
			}
		})
	}
	if k := (Signature{Fun: "cmd.run", StateID: "restart nginx", Template: "x"}).Key(); !strings.HasPrefix(k, "cmd.run restart nginx ") {
		t.Errorf("key %q does not name the state", k)
	}
	if k := (Signature{SLS: "webserver.tls", Template: "x"}).Key(); !strings.HasPrefix(k, "compile_error webserver.tls ") {
		t.Errorf("key %q does not name the sls", k)
	}
}

// TestFailedStateKeysStable: the same failures give the same keys, causes
// and examples whatever the order the minions arrive in, from one goroutine
// or many.
func TestFailedStateKeysStable(t *testing.T) {
	var minions []Minion
	for i := range 60 {
		id := fmt.Sprintf("web-%03d", i)
		// Ids with "|" are common in cmd.run states; two of them differ
		// only in where the "|" falls.
		minions = append(minions, failingMinion(id, "ams01",
			FailedState{ID: "grep -q ok /tmp/x | wc -l", SLS: "app", Fun: "cmd.run", Comment: fmt.Sprintf("Command exited with %d on %s", i%3+1, id)},
			FailedState{ID: "grep -q ok /tmp/x ", SLS: "app", Fun: "cmd.run", Comment: " wc -l|Command exited"},
		))
	}
	render := func(causes []Cause) string {
		var b strings.Builder
		for _, c := range causes {
			fmt.Fprintf(&b, "%s %q %d %v %+v\n", c.Kind, c.Key, c.Minions, c.Evidence.Comment, c.Evidence.Examples)
		}
		return b.String()
	}
	want := render(causesOf(t, minions))
	if n := strings.Count(want, "\n"); n != 2 {
		t.Fatalf("%d causes, want 2:\n%s", n, want)
	}
	for run := range 5 {
		shuffled := slices.Clone(minions)
		rand.New(rand.NewPCG(uint64(run), 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		agg := NewAggregator("")
		var wg sync.WaitGroup
		for part := range 4 {
			wg.Go(func() {
				for i := part; i < len(shuffled); i += 4 {
					agg.Add(shuffled[i])
				}
			})
		}
		wg.Wait()
		_, causes, _ := agg.Finish()
		if got := render(causes); got != want {
			t.Fatalf("run %d differs:\n%s\nwant\n%s", run, got, want)
		}
	}
}

func TestExamples(t *testing.T) {
	var minions []Minion
	for i := range 10 {
		id := fmt.Sprintf("web-%02d", i)
		comment := "Service ntpd failed to start (pid 4121)"
		if i >= 6 { // four minions with their own pids
			comment = fmt.Sprintf("Service ntpd failed to start (pid 50%02d)", i)
		}
		minions = append(minions, failingMinion(id, "ams01", FailedState{ID: "ntp", SLS: "base.ntp", Fun: "service.running", Comment: comment}))
	}
	causes := causesOf(t, minions)
	if len(causes) != 1 {
		t.Fatalf("%d causes, want one", len(causes))
	}
	ev := causes[0].Evidence
	want := []Example{{Text: "Service ntpd failed to start (pid 4121)", Minion: "web-00", Count: 10}}
	if !slices.Equal(ev.Examples, want) {
		t.Errorf("examples = %+v, want %+v", ev.Examples, want)
	}
	if ev.Comment != want[0].Text {
		t.Errorf("comment = %q, want the example", ev.Comment)
	}

	// Every minion's text differs: the example is the same whatever the
	// order, the smallest text and its minion.
	minions = minions[6:]
	slices.Reverse(minions)
	want = []Example{{Text: "Service ntpd failed to start (pid 5006)", Minion: "web-06", Count: 4}}
	if got := causesOf(t, minions)[0].Evidence.Examples; !slices.Equal(got, want) {
		t.Errorf("examples = %+v, want %+v", got, want)
	}
}

// TestCommitExamplesPerTemplate: a commit's evidence holds one real message
// per template among its minions, most common first.
func TestCommitExamplesPerTemplate(t *testing.T) {
	var minions []Minion
	for i := range 5 {
		m := failingMinion(fmt.Sprintf("web-%d", i), "ams01",
			FailedState{ID: "nginx", SLS: "webserver", Fun: "service.running", Comment: "Service nginx failed"})
		if i < 2 {
			m.FailedStates = append(m.FailedStates, FailedState{ID: "conf", SLS: "webserver", Fun: "file.managed", Comment: "Source file salt://x not found"})
		}
		m.Commits = []Commit{{ID: badCommit, AuthorName: "John Doe", Path: "webserver/init.sls"}}
		minions = append(minions, m)
	}
	ev := causesOf(t, minions)[0].Evidence
	want := []Example{{Text: "Service nginx failed", Minion: "web-0", Count: 5}, {Text: "Source file salt://x not found", Minion: "web-0", Count: 2}}
	if !slices.Equal(ev.Examples, want) {
		t.Errorf("examples = %+v, want %+v", ev.Examples, want)
	}
	if len(ev.FailedStates) != 2 || ev.FailedStates[0].StateID != "nginx" {
		t.Errorf("failed states = %+v", ev.FailedStates)
	}
}

// TestServiceMessagesAreRealText: an external service's messages are what
// its minions said, one per template, never a template.
func TestServiceMessagesAreRealText(t *testing.T) {
	var minions []Minion
	for i := range 6 {
		m := failingMinion(fmt.Sprintf("web-%d", i), "lon03")
		m.CompileErrors = []CompileError{{State: "webserver.tls", URLs: []string{"https://vault.example.com:8200"},
			Message: fmt.Sprintf("Failed to read secret secret/data/web-%d: 503 from https://vault.example.com:8200 after %d ms", i, 100+i)}}
		minions = append(minions, m)
	}
	c := causesOf(t, minions)[0]
	if c.Kind != CauseExternalService {
		t.Fatalf("top cause %s", c.Kind)
	}
	want := []string{"Failed to read secret secret/data/web-0: 503 from https://vault.example.com:8200 after 100 ms"}
	if !slices.Equal(c.Evidence.Messages, want) || len(c.Evidence.Examples) != 1 || c.Evidence.Examples[0].Count != 6 {
		t.Errorf("messages %q, examples %+v; want %q of 6", c.Evidence.Messages, c.Evidence.Examples, want)
	}
}
