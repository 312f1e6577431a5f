package fleetgen

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

func values(seed uint64) Values {
	return Values{Minion: "web-1", Domain: "ams01.example.com", Rand: rand.New(rand.NewPCG(seed, seed)), Now: time.Date(2026, 12, 1, 14, 3, 22, 0, time.UTC)}
}

func TestCorpus(t *testing.T) {
	c, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) < 40 {
		t.Fatalf("%d failures, want at least 40", len(c))
	}
	slot := regexp.MustCompile(`\{(minion|fqdn|ip|port|pid|jid|uuid|hex:\d+|tmp|int:\d+-\d+|iso|syslog|journal|time)\}`)
	names := map[string]bool{}
	withValues := 0
	for _, f := range c {
		if names[f.Name] {
			t.Errorf("two failures named %s", f.Name)
		}
		names[f.Name] = true
		filled := Fill(f.Text, values(1))
		if left := slot.FindString(filled); left != "" {
			t.Errorf("%s: slot %s left unfilled", f.Name, left)
		}
		if slot.MatchString(f.Text) {
			withValues++
		}
	}
	// Some failures read the same on every minion (a YAML error, a missing
	// sls, a source file not found); most carry values that differ.
	if withValues < len(c)*3/5 {
		t.Errorf("%d of %d failures have per-minion values", withValues, len(c))
	}
}

func TestFill(t *testing.T) {
	tests := []struct{ in, want string }{
		{"{minion} on {fqdn}", "web-1 on web-1.ams01.example.com"},
		{"{'uid': {int:7-7}}", "{'uid': 7}"},
		{"{{ pillar['x'] }} {unknown} {hex:0}", "{{ pillar['x'] }} {unknown} {hex:0}"},
		{"{syslog}|", "Dec  1 "},
	}
	for _, tc := range tests {
		got := Fill(tc.in, values(2))
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("Fill(%q) = %q, want %q…", tc.in, got, tc.want)
		}
	}
	if a, b := Fill("{uuid} {tmp} {ip}", values(3)), Fill("{uuid} {tmp} {ip}", values(4)); a == b {
		t.Errorf("two minions, one value: %q", a)
	}
}

func TestWriteRealistic(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRealistic(&buf, RealisticOptions{Minions: 2000, Datacenters: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 2000 {
		t.Fatalf("%d minions, want 2000", len(doc))
	}
	var comments, tracebacks []int
	garbageAnswers := 0
	for _, raw := range doc {
		for _, g := range garbage {
			if bytes.Equal(raw, g) {
				garbageAnswers++
			}
		}
		var a struct {
			States []struct {
				Comment string `json:"comment"`
			} `json:"blame.last_failed_states"`
			Errors []struct {
				Traceback string `json:"traceback"`
			} `json:"blame.last_compile_errors"`
		}
		if json.Unmarshal(raw, &a) != nil {
			continue
		}
		for _, s := range a.States {
			comments = append(comments, len(s.Comment))
		}
		for _, e := range a.Errors {
			tracebacks = append(tracebacks, len(e.Traceback))
		}
	}
	for _, n := range tracebacks {
		if n < 1600 || n > 1800 {
			t.Errorf("traceback of %d bytes, want 1.6 to 1.8 KB", n)
			break
		}
	}
	if len(comments) < 800 || len(tracebacks) < 100 {
		t.Errorf("%d comments, %d tracebacks", len(comments), len(tracebacks))
	}
	// About 2 % garbage: 40 of 2000, give or take.
	if garbageAnswers < 15 || garbageAnswers > 80 {
		t.Errorf("%d garbage answers of 2000", garbageAnswers)
	}
}
