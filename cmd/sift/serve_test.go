package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
)

const (
	testAppToken = "xapp-1-A0SIFT-1-servesecretAPPtoken"
	testBotToken = "xoxb-1-2-servesecretBOTtoken"
)

// withSlack appends a slack section to the lab's configuration.
func withSlack(t *testing.T, l *lab, apiURL, appToken, auditLog string) {
	t.Helper()
	f, err := os.OpenFile(l.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "slack:\n  app_token: %q\n  bot_token: %q\n  api_url: %q\n  audit_log: %q\n  shutdown_grace: 2s\n  progress_interval: 50ms\n",
		appToken, testBotToken, apiURL, auditLog)
}

func TestServe(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: concat(
		minions("ams01", "web", 5, fakesalt.FailedState(fakesalt.Failure{})),
		minions("ams01", "db", 3, fakesalt.Healthy()),
	)}}, map[string]string{"ams01": "salt-eu"})
	fs := fakeslack.New(fakeslack.Options{AppToken: testAppToken, BotToken: testBotToken, PingInterval: 100 * time.Millisecond})
	defer fs.Close()
	audit := filepath.Join(t.TempDir(), "audit.log")
	withSlack(t, l, fs.APIURL(), testAppToken, audit)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"serve", "--config", l.config}, strings.NewReader(""), &stdout, &stderr)
	}()

	if err := fs.Wait(ctx, func() bool { return fs.Connected() == 1 }); err != nil {
		stop()
		t.Fatalf("no connection: %v (run: %v)", err, <-done)
	}
	sent, err := fs.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "ams01", UserID: "U0ALICE", ChannelID: "C0INCIDENT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.WaitAck(ctx, sent.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	// The report's thread follows the final summary.
	err = fs.Wait(ctx, func() bool {
		msgs := fs.Messages("C0INCIDENT")
		return len(msgs) > 0 && len(fs.Thread("C0INCIDENT", msgs[0].TS)) > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	stop() // as SIGTERM does
	if err := <-done; err != nil {
		t.Fatalf("serve = %v\n%s", err, stderr.String())
	}

	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		User, Channel, Command, Text, Outcome, Headline string
		Scope                                           struct{ Kind, Name string }
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("audit log %q: %v", b, err)
	}
	if rec.Outcome != "ok" || rec.User != "U0ALICE" || rec.Scope.Kind != "datacenter" || rec.Scope.Name != "ams01" || !strings.Contains(rec.Headline, "e4a91b2") {
		t.Errorf("audit record = %+v", rec)
	}
	if !strings.Contains(stderr.String(), "sift serving in slack") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "audit": string(b)} {
		for _, secret := range []string{testAppToken, testBotToken, testPassword} {
			if strings.Contains(out, secret) {
				t.Errorf("%s holds a secret:\n%s", name, out)
			}
		}
	}
}

func TestServeErrors(t *testing.T) {
	fs := fakeslack.New(fakeslack.Options{AppToken: testAppToken, BotToken: testBotToken})
	defer fs.Close()
	tests := []struct {
		name     string
		slack    bool
		appToken string
		code     int
		want     string
	}{
		{"no slack section", false, "", exitUsage, "serve: the configuration has no slack section"},
		{"app token refused", true, "xapp-1-A0SIFT-1-servesecretWRONG", exitFailure, "slack: app token: invalid_auth (check slack.app_token)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, []*fakesalt.Master{{Name: "salt-eu"}}, map[string]string{"ams01": "salt-eu"})
			if tc.slack {
				withSlack(t, l, fs.APIURL(), tc.appToken, "stdout")
			}
			t.Setenv("SIFT_SLACK_APP_TOKEN", "")
			t.Setenv("SIFT_SLACK_BOT_TOKEN", "")
			r := sift(t, "", "serve", "--config", l.config)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, "servesecret") {
				t.Errorf("a token leaked:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}
