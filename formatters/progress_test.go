package formatters

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/triage"
)

func TestSlackProgressSaysWhatItWaitsFor(t *testing.T) {
	scope := triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}
	pending := []triage.PendingDatacenter{
		{Name: "fra02", Master: "salt-eu", Waiting: 12400 * time.Millisecond},
		{Name: "lon03", Master: "salt-uk", Waiting: 125 * time.Second},
	}
	for i := range 12 {
		pending = append(pending, triage.PendingDatacenter{Name: "dc" + string(rune('a'+i)), Master: "salt-x", Waiting: time.Second})
	}
	m := SlackProgress(scope, Progress{
		DatacentersDone: 1, DatacentersTotal: 15, Elapsed: 130 * time.Second,
		Running: []string{"fra02", "lon03"}, Pending: pending,
	}, SlackOptions{})
	checkMessage(t, "progress", m)
	b, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"Waiting for fra02 (salt-eu) for 12 s, lon03 (salt-uk) for 2 min 5 s,", " and 4 more"} {
		if !strings.Contains(text, want) {
			t.Errorf("progress lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Still running") {
		t.Errorf("progress names the running datacenters twice:\n%s", text)
	}
}
