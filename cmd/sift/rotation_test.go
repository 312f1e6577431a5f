package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
)

// TestServeRotatesSlackTokens rotates both Slack tokens in their files and
// sends SIGHUP: the next Web API calls carry the new bot token, and the
// reconnection after Slack drops the socket opens it with the new app
// token, all without a restart.
func TestServeRotatesSlackTokens(t *testing.T) {
	l := startLab(t, []*fakesalt.Master{{Name: "salt-eu", Minions: minions("ams01", "web", 3, fakesalt.Healthy())}},
		map[string]string{"ams01": "salt-eu"})
	fs := fakeslack.New(fakeslack.Options{PingInterval: 100 * time.Millisecond})
	defer fs.Close()
	dir := t.TempDir()
	appFile, botFile := filepath.Join(dir, "app.token"), filepath.Join(dir, "bot.token")
	write := func(path, v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(appFile, "xapp-1-rotation-old")
	write(botFile, "xoxb-rotation-old")
	addr := freeAddr(t)
	f, err := os.OpenFile(l.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "slack:\n  app_token_file: %s\n  bot_token_file: %s\n  api_url: %q\n  audit_log: stdout\n  shutdown_grace: 2s\n  progress_interval: 50ms\nmetrics: {listen: %q}\n",
		appFile, botFile, fs.APIURL(), addr)
	f.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"serve", "--config", l.config}, strings.NewReader(""), &stdout, &stderr)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
		// Read only once serve returned: it writes to both until then.
		for _, s := range []string{"xoxb-rotation", "xapp-1-rotation"} {
			if strings.Contains(stdout.String()+stderr.String(), s) {
				t.Errorf("a token leaked into the output")
			}
		}
	}()
	if err := fs.Wait(ctx, func() bool { return fs.Connected() == 1 }); err != nil {
		t.Fatalf("no connection: %v", err)
	}
	tokens := func(method string) []string {
		var out []string
		for _, c := range fs.CallsTo(method) {
			out = append(out, c.Token)
		}
		return out
	}
	if got := tokens("apps.connections.open"); len(got) != 1 || got[0] != "xapp-1-rotation-old" {
		t.Fatalf("first connection with %q", got)
	}

	write(appFile, "xapp-1-rotation-new")
	write(botFile, "xoxb-rotation-new")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload shows in the metrics once both tokens were read again.
	for {
		_, body := get(t, "http://"+addr+"/metrics")
		if strings.Contains(body, `sift_secret_changes_total{secret="slack.app_token"} 1`) &&
			strings.Contains(body, `sift_secret_changes_total{secret="slack.bot_token"} 1`) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the tokens were not read again after SIGHUP:\n%s", body)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Slack drops the socket (as it does when a token is rotated): the bot
	// reconnects with the new app token.
	if err := fs.SendDisconnect(ctx, "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Wait(ctx, func() bool {
		got := tokens("apps.connections.open")
		return len(got) >= 2 && got[len(got)-1] == "xapp-1-rotation-new" && fs.Connected() == 1
	}); err != nil {
		t.Fatalf("no reconnection with the new app token: %v (opens: %q)", err, tokens("apps.connections.open"))
	}
	// A command is answered with the new bot token.
	before := len(fs.Calls())
	if _, err := fs.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-dc", Text: "ams01", UserID: "U0ALICE", ChannelID: "C0INCIDENT"}); err != nil {
		t.Fatal(err)
	}
	if err := fs.Wait(ctx, func() bool { return len(fs.Messages("C0INCIDENT")) > 0 }); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	for _, c := range fs.Calls()[before:] {
		if strings.HasPrefix(c.Token, "xoxb-") && c.Token != "xoxb-rotation-new" {
			t.Errorf("%s called with the old bot token", c.Method)
		}
	}
	for _, c := range fs.Calls() {
		if strings.Contains(c.Token, "placeholder") {
			t.Errorf("%s reached Slack with the placeholder", c.Method)
		}
	}
	if got := tokens("auth.test"); len(got) == 0 || got[0] != "xoxb-rotation-old" {
		t.Errorf("auth.test (a form-encoded token) carried %q", got)
	}
	if got := tokens("chat.postMessage"); len(got) == 0 || got[len(got)-1] != "xoxb-rotation-new" {
		t.Errorf("chat.postMessage tokens %q, want the new bot token", got)
	}
}
