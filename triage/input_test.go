package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
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
