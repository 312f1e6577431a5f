package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sift-chatops/sift/fakesalt"
)

func TestProgressLinesShowEachDatacentersOwnCounts(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 10, fakesalt.Healthy())},
		{Name: "salt-us", Minions: minions("lon03", "web", 4, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu", "lon03": "salt-us"})
	r := sift(t, "", "triage", "group", "all", "--config", l.config)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`ams01 done \([12]/2\), 10/10 minions answered`, `lon03 done \([12]/2\), 4/4 minions answered`} {
		if !regexp.MustCompile(want).MatchString(r.stderr) {
			t.Errorf("progress lacks %s:\n%s", want, r.stderr)
		}
	}
}

// cancelOnWrite cancels a context at the first write that holds a string.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	when   string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.when) {
		w.cancel()
	}
	return w.buf.Write(p)
}

func TestStoppedTriageSaysSo(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 3, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Stopped (as by SIGTERM) as soon as the triage starts.
	stderr := &cancelOnWrite{when: "triaging", cancel: cancel}
	var stdout bytes.Buffer
	err := run(ctx, []string{"triage", "dc", "ams01", "--config", l.config}, strings.NewReader(""), &stdout, stderr)
	if exitCode(err) != exitFailure {
		t.Errorf("exit %d (%v), want %d", exitCode(err), err, exitFailure)
	}
	head, _, _ := strings.Cut(stdout.String(), "\n")
	if !strings.HasPrefix(head, "Sift was stopped before this triage finished (after ") ||
		!strings.HasSuffix(head, "; run it again with `sift triage dc ams01`") {
		t.Errorf("headline = %q", head)
	}
}

func TestNoMasterAnsweredSaysWhich(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 3, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu"})
	l.servers["salt-eu"].Close()
	r := sift(t, "", "triage", "dc", "ams01", "--config", l.config, "--format", "json")
	if r.code != exitFailure {
		t.Errorf("exit %d, want %d", r.code, exitFailure)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Headline != "no master answered: ams01 (salt-eu: connection refused)" {
		t.Errorf("headline = %q", rep.Headline)
	}
	if !strings.Contains(r.stdout, `"outcome": "failed"`) {
		t.Errorf("JSON report does not say it failed:\n%s", r.stdout)
	}
}

func TestMinionNoMasterKnows(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{
		{Name: "salt-eu", Minions: minions("ams01", "web", 2, fakesalt.Healthy())},
		{Name: "salt-us", Minions: minions("lon03", "web", 2, fakesalt.Healthy())},
	}, map[string]string{"ams01": "salt-eu", "lon03": "salt-us"})
	r := sift(t, "", "triage", "minion", "web-9", "--config", l.config, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rep := decodeReport(t, r.stdout)
	if rep.Headline != "web-9 is not a minion of any master" {
		t.Errorf("headline = %q\n%s", rep.Headline, r.stdout)
	}
	if len(rep.Causes) != 1 || rep.Causes[0].Kind != "unreachable" || !strings.Contains(r.stdout, `"summary": "web-9 is not a minion of any master"`) {
		t.Errorf("causes = %+v\n%s", rep.Causes, r.stdout)
	}
}
