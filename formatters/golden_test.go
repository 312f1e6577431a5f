package formatters

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./formatters -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./formatters -update and review the diff)\ngot:\n%s", path, got)
	}
}

// slackJSON renders a SlackReport the way the goldens hold it: the blocks as
// Slack receives them.
func slackJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name+".txt", []byte(Text(tc.r)))

			j, err := JSON(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", j)

			s := Slack(tc.r, tc.o)
			checkSlackReport(t, s)
			golden(t, tc.name+".slack.json", slackJSON(t, s))
		})
	}
}

func TestGoldenSlackProgressAndError(t *testing.T) {
	scope := partialGroupReport().Scope
	progress := SlackProgress(scope, Progress{
		DatacentersDone: 1, DatacentersTotal: 3, MinionsAnswered: 412, MinionsExpected: 900,
		Elapsed: 12400 * time.Millisecond, Running: []string{"fra02", "par02"},
	}, SlackOptions{RequestedBy: "U07SRE0001"})
	checkMessage(t, "progress", progress)
	golden(t, "progress.slack.json", slackJSON(t, progress))

	failed := SlackError(scope, `group "eu": datacenter "par03" is not in the inventory`, SlackOptions{Title: "Pipeline halt: salt-failures-dc"})
	checkMessage(t, "error", failed)
	golden(t, "error.slack.json", slackJSON(t, failed))

	stopped := SlackStopped(scope, 28400*time.Millisecond, "/blame-group eu", SlackOptions{RequestedBy: "U07SRE0001"})
	checkMessage(t, "stopped-early", stopped)
	golden(t, "stopped-early.slack.json", slackJSON(t, stopped))
}
