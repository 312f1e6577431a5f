package bot_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// bodyOf is what a recorded call says, for failure messages.
func bodyOf(calls []fakeslack.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "#%d %s %d %s thread_ts=%q ts=%q\n", c.Seq, c.Method, c.Status, c.Error, c.Form.Get("thread_ts"), c.Form.Get("ts"))
	}
	return b.String()
}

func TestSlashCommandReportsInOrder(t *testing.T) {
	fl := newFleet(t)
	var fake atomic.Pointer[fakeslack.Server]
	var gated atomic.Bool
	triagers := func(progress func(triage.Progress)) bot.Triager {
		return fl.triagers()(func(p triage.Progress) {
			progress(p)
			if p.Kind == triage.ProgressDatacenterFinished && !gated.Swap(true) {
				// Hold the triage until Slack has the acknowledgement and
				// shows progress, so that the order below does not depend
				// on how fast Salt answers. A bot that acknowledged after
				// its triage would hang here.
				s := fake.Load()
				_ = s.Wait(t.Context(), func() bool { return len(s.Acks()) > 0 && len(s.CallsTo("chat.update")) > 0 })
			}
		})
	}
	h := start(t, setup{triagers: triagers, inv: &fl.inv})
	fake.Store(h.slack)

	sent := h.slash(alice, incident, "/blame-group", "europe")
	recs := h.waitAudit(1)

	acks := h.slack.AcksOf(sent.EnvelopeID)
	ephemerals := h.slack.CallsTo("chat.postEphemeral")
	posts := h.slack.CallsTo("chat.postMessage")
	updates := h.slack.CallsTo("chat.update")
	all := bodyOf(h.slack.Calls())
	if len(acks) != 1 || len(ephemerals) != 1 || len(posts) < 2 || len(updates) < 2 {
		t.Fatalf("acks %d, ephemerals %d, posts %d, updates %d; calls:\n%s", len(acks), len(ephemerals), len(posts), len(updates), all)
	}
	summary := posts[0]
	msgs := h.slack.Messages(incident)
	summaryTS := msgs[0].TS
	if summary.Form.Get("thread_ts") != "" || summary.Form.Get("channel") != incident {
		t.Errorf("summary posted to %q thread %q, want the channel itself", summary.Form.Get("channel"), summary.Form.Get("thread_ts"))
	}
	// The acknowledgement and the Web API calls travel on different
	// connections, so the fake may see the ephemeral first; what matters
	// is that the acknowledgement never waits for the triage.
	if acks[0].Seq > updates[len(updates)-1].Seq {
		t.Errorf("ack (#%d) after the final summary (#%d)", acks[0].Seq, updates[len(updates)-1].Seq)
	}
	order := []struct {
		what string
		seq  int
	}{
		{"ephemeral", ephemerals[0].Seq},
		{"summary", summary.Seq},
		{"first progress update", updates[0].Seq},
		{"final summary", updates[len(updates)-1].Seq},
		{"first thread message", posts[1].Seq},
	}
	for i := 1; i < len(order); i++ {
		if order[i-1].seq >= order[i].seq {
			t.Errorf("%s (#%d) not before %s (#%d); calls:\n%s", order[i-1].what, order[i-1].seq, order[i].what, order[i].seq, all)
		}
	}
	for _, u := range updates {
		if u.Form.Get("ts") != summaryTS || u.Form.Get("channel") != incident {
			t.Errorf("update of %s/%s, want the summary %s/%s", u.Form.Get("channel"), u.Form.Get("ts"), incident, summaryTS)
		}
	}
	for _, p := range posts[1:] {
		if p.Form.Get("thread_ts") != summaryTS {
			t.Errorf("detail posted in thread %q, want the summary's %q", p.Form.Get("thread_ts"), summaryTS)
		}
	}
	if !strings.Contains(updates[0].Form.Get("text"), "datacenters") {
		t.Errorf("first update %q does not show progress", updates[0].Form.Get("text"))
	}
	if !strings.Contains(ephemerals[0].Form.Get("text"), "Triaging *group europe*") || ephemerals[0].Form.Get("user") != alice {
		t.Errorf("ephemeral = %v", ephemerals[0].Form)
	}

	final, _ := h.slack.Message(incident, summaryTS)
	thread := h.slack.Thread(incident, summaryTS)
	for _, want := range []string{"commit e4a91b2", "Requested by <@" + alice + ">"} {
		if !strings.Contains(blockText(final.Blocks), want) {
			t.Errorf("final summary lacks %q:\n%s", want, blockText(final.Blocks))
		}
	}
	// The author is mentioned once, where the report names them first.
	if all := blockText(final.Blocks) + texts(thread); strings.Count(all, "<@"+jdoe+">") != 1 {
		t.Errorf("author mentioned %d times, want once:\n%s", strings.Count(all, "<@"+jdoe+">"), all)
	}
	for _, want := range []string{
		"https://git.example.com/salt/-/commit/e4a91b2c9f7d3b6f84d12a9f0e62a58c3c7d9b5a",
		"/etc/nginx/nginx.conf", "Datacenters (3)", "Unreachable minions",
	} {
		if !strings.Contains(texts(thread), want) {
			t.Errorf("thread lacks %q:\n%s", want, texts(thread))
		}
	}
	if lookups := h.slack.CallsTo("users.lookupByEmail"); len(lookups) != 1 {
		t.Errorf("users.lookupByEmail calls = %d, want 1 (one author)", len(lookups))
	}

	// Progress updates are spaced by the progress interval at least. The
	// bot waits from the end of one call, which the fake saw before the
	// start of the next.
	times := []time.Time{summary.At}
	for _, u := range updates {
		times = append(times, u.At)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 30*time.Millisecond {
			t.Errorf("update %d came %s after the previous one, inside the progress interval", i, gap)
		}
	}

	r := recs[0]
	if r.Outcome != bot.OutcomeOK || r.User != alice || r.Channel != incident || r.Via != "slash" ||
		r.Command != "/blame-group" || r.Text != "europe" || r.Scope == nil || *r.Scope != (triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}) ||
		r.MessageTS != summaryTS || !strings.Contains(r.TopCause, "e4a91b2") || r.Failing == nil || *r.Failing == 0 || r.ID == "" {
		t.Errorf("audit record = %+v", r)
	}
}

func TestMentionRepliesWhereItWasAsked(t *testing.T) {
	var mu sync.Mutex
	var triaged []string
	h := start(t, setup{triagers: triagerFunc(func(ctx context.Context, s triage.Scope, progress func(triage.Progress)) (*triage.Report, error) {
		return cannedReport(s), nil
	}).factory(), inv: &smallInventory, deps: func(d *bot.Deps) {
		d.OnTriage = func(s triage.Scope, r *triage.Report, err error, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			triaged = append(triaged, fmt.Sprintf("%s %v %v", s, r != nil, err))
		}
	}})
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"datacenter ams01 true <nil>", "datacenter fra02 true <nil>"}; !slices.Equal(triaged, want) {
			t.Errorf("OnTriage calls = %q, want %q", triaged, want)
		}
	}()

	t.Run("in a thread", func(t *testing.T) {
		root := h.slack.Post(incident, bob, "ams01 is on fire")
		h.mention(bob, incident, root, "dc ams01")
		r := h.waitAudit(1)[0]
		replies := h.slack.Thread(incident, root)
		if len(replies) < 3 {
			t.Fatalf("thread of the incident has %d messages, want the mention, the summary and details:\n%s", len(replies), texts(replies))
		}
		summary := replies[1]
		if summary.User != fakeslack.DefaultBotUserID || r.MessageTS != summary.TS || !strings.Contains(blockText(summary.Blocks), "commit e4a91b2") {
			t.Errorf("summary = %+v; audit = %+v", summary, r)
		}
		for _, m := range h.slack.Messages(incident) {
			if m.User == fakeslack.DefaultBotUserID && m.ThreadTS != root {
				t.Errorf("bot message %s posted outside the incident thread (thread %q)", m.TS, m.ThreadTS)
			}
		}
		if len(h.slack.Ephemerals()) != 0 {
			t.Errorf("ephemerals = %+v, want none", h.slack.Ephemerals())
		}
		if r.Via != "mention" || r.ThreadTS != root || r.Outcome != bot.OutcomeOK {
			t.Errorf("audit record = %+v", r)
		}
	})

	t.Run("at the top of the channel", func(t *testing.T) {
		h.mention(bob, elsewhere, "", "dc fra02")
		r := h.waitAudit(2)[1]
		summary, ok := h.slack.Message(elsewhere, r.MessageTS)
		if !ok || summary.User != fakeslack.DefaultBotUserID || summary.ThreadTS != summary.TS {
			t.Fatalf("summary = %+v (found %v), want a top-level message with a thread", summary, ok)
		}
		if th := h.slack.Thread(elsewhere, r.MessageTS); len(th) == 0 || !strings.Contains(texts(th), "John Doe") {
			t.Errorf("summary's thread = %s", texts(th))
		}
	})
}

func TestHelpAndUsageErrors(t *testing.T) {
	fl := newFleet(t)
	h := start(t, setup{triagers: fl.triagers(), inv: &fl.inv})
	tests := []struct {
		name     string
		send     func()
		want     []string
		wantVia  string
		wantKind string
	}{
		{"mention help", func() { h.mention(bob, incident, "", "help") },
			[]string{"/blame-dc DATACENTER", "@sift group GROUP", "Datacenters: ams01, fra02, iad04, lon03", "Groups: americas, europe"}, "mention", bot.OutcomeHelp},
		{"unknown datacenter", func() { h.slash(bob, incident, "/blame-dc", "amss01") },
			[]string{`unknown datacenter "amss01"`, "did you mean ams01"}, "slash", bot.OutcomeUsageError},
		{"unknown group", func() { h.mention(bob, incident, "", "group eruope") },
			[]string{`unknown group "eruope"`, "europe"}, "mention", bot.OutcomeUsageError},
		{"bad minion id", func() { h.slash(bob, incident, "/blame-minion", "web*") },
			[]string{"not a minion id", "letters, digits"}, "slash", bot.OutcomeUsageError},
		{"unknown word", func() { h.mention(bob, incident, "", "restart everything") },
			[]string{`I don't know "restart"`}, "mention", bot.OutcomeUsageError},
		{"markup is escaped", func() { h.slash(bob, incident, "/blame-dc", "<!channel>") },
			[]string{"&lt;!channel&gt;"}, "slash", bot.OutcomeUsageError},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.send()
			r := h.waitAudit(i + 1)[i]
			eph := h.slack.Ephemerals()
			if len(eph) != i+1 {
				t.Fatalf("ephemerals = %d, want %d", len(eph), i+1)
			}
			got := eph[i]
			for _, w := range tc.want {
				if !strings.Contains(got.Text, w) {
					t.Errorf("answer %q lacks %q", got.Text, w)
				}
			}
			if got.User != bob || r.Outcome != tc.wantKind || r.Via != tc.wantVia {
				t.Errorf("ephemeral to %s; audit = %+v", got.User, r)
			}
		})
	}
	if n := len(h.slack.CallsTo("chat.postMessage")); n != 0 {
		t.Errorf("%d messages posted, want none", n)
	}
}

func TestRedeliveredEnvelopeRunsOnce(t *testing.T) {
	sameEnvelope := func(h *harness, id string) string {
		if err := h.slack.Redeliver(h.ctx, id); err != nil {
			h.t.Fatal(err)
		}
		return id
	}
	newEnvelope := func(h *harness, id string) string {
		id, err := h.slack.RedeliverAs(h.ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		return id
	}
	tests := []struct {
		name      string
		send      func(h *harness) fakeslack.Sent
		redeliver func(h *harness, id string) string
	}{
		{"slash command", func(h *harness) fakeslack.Sent { return h.slash(alice, incident, "/blame-dc", "ams01") }, sameEnvelope},
		{"mention", func(h *harness) fakeslack.Sent { return h.mention(alice, incident, "", "dc ams01") }, sameEnvelope},
		{"mention in a new envelope", func(h *harness) fakeslack.Sent { return h.mention(alice, incident, "", "dc ams01") }, newEnvelope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var runs atomic.Int32
			h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
				runs.Add(1)
				return cannedReport(s), nil
			}).factory()})
			sent := tc.send(h)
			again := tc.redeliver(h, sent.EnvelopeID)
			ack, err := h.slack.WaitAck(h.ctx, again)
			if err != nil || ack.RetryAttempt != 1 {
				t.Fatalf("ack of the redelivery = %+v, %v", ack, err)
			}
			// Run returns once every command it took is done.
			if err := h.shutdown(); err != nil {
				t.Fatal(err)
			}
			if n := runs.Load(); n != 1 {
				t.Errorf("triages = %d, want 1", n)
			}
			if n := len(h.records()); n != 1 {
				t.Errorf("audit records = %d, want 1", n)
			}
			summaries := 0
			for _, c := range h.slack.CallsTo("chat.postMessage") {
				if c.Form.Get("thread_ts") == "" {
					summaries++
				}
			}
			if summaries != 1 {
				t.Errorf("summaries posted = %d, want 1", summaries)
			}
		})
	}
}

func TestReconnects(t *testing.T) {
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		return cannedReport(s), nil
	}).factory()})
	tests := []struct {
		name  string
		cause func() error
	}{
		{"dropped socket", func() error {
			if h.slack.DropConnections() != 1 {
				return errors.New("no socket to drop")
			}
			return nil
		}},
		{"disconnect envelope", func() error { return h.slack.SendDisconnect(h.ctx, "refresh_requested") }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.slack.Connections()
			if err := tc.cause(); err != nil {
				t.Fatal(err)
			}
			if err := h.slack.Wait(h.ctx, func() bool { return h.slack.Connections() > before && h.slack.Connected() == 1 }); err != nil {
				t.Fatalf("no reconnection: %v\nlogs:\n%s", err, h.logs)
			}
			h.slash(alice, incident, "/blame-dc", "ams01")
			if r := h.waitAudit(i + 1)[i]; r.Outcome != bot.OutcomeOK {
				t.Errorf("audit record after reconnecting = %+v", r)
			}
			// The acknowledgement came from the event loop, after it saw
			// the new connection.
			if !h.bot.Ready() {
				t.Error("Ready() = false after reconnecting")
			}
		})
	}
}

func TestRateLimitedCallsAreResent(t *testing.T) {
	tests := []string{"chat.postEphemeral", "chat.postMessage", "chat.update", "files.completeUploadExternal"}
	for _, method := range tests {
		t.Run(method, func(t *testing.T) {
			var mu sync.Mutex
			var slackErrors []string
			h := start(t, setup{
				inv: &smallInventory,
				triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
					return bigReport(s, 20), nil // a file too
				}).factory(),
				deps: func(d *bot.Deps) {
					d.OnSlackError = func(method, code string) {
						mu.Lock()
						defer mu.Unlock()
						slackErrors = append(slackErrors, method+" "+code)
					}
				},
			})
			h.slack.RateLimitNext(method, 2*time.Second)
			h.slash(alice, incident, "/blame-dc", "ams01")
			if r := h.waitAudit(1)[0]; r.Outcome != bot.OutcomeOK {
				t.Fatalf("audit record = %+v\nlogs:\n%s", r, h.logs)
			}
			calls := h.slack.CallsTo(method)
			if len(calls) < 2 || calls[0].Status != 429 || calls[1].Status != 200 {
				t.Fatalf("calls:\n%s", bodyOf(calls))
			}
			if calls[0].Form.Encode() != calls[1].Form.Encode() {
				t.Errorf("resent call differs:\n%s\n%s", calls[0].Form.Encode(), calls[1].Form.Encode())
			}
			if got := h.clock.long(); !slices.Equal(got, []time.Duration{2 * time.Second}) {
				t.Errorf("long waits = %v, want [2s] (the Retry-After)", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(slackErrors, []string{method + " ratelimited"}) {
				t.Errorf("OnSlackError calls = %v", slackErrors)
			}
			if !strings.Contains(h.logs.String(), `"code":"ratelimited"`) && !strings.Contains(h.logs.String(), `"retry_after":"2s"`) {
				t.Errorf("rate limit not logged:\n%s", h.logs)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	canned := triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		return cannedReport(s), nil
	}).factory()
	restricted := func(c *bot.Config) {
		c.Channels = []string{incident}
		c.Authz = config.Authz{
			Datacenter: config.Access{Users: []string{alice}},
			Group:      config.Access{Usergroups: []string{"S0SRE"}},
		}
	}
	tests := []struct {
		name        string
		fake        fakeslack.Options
		user, where string
		cmd, text   string
		wantOutcome string
		wantText    []string
		wantReason  string
	}{
		{"channel not allowed", fakeslack.Options{}, alice, elsewhere, "/blame-dc", "ams01", bot.OutcomeRefused,
			[]string{"only in <#" + incident + ">"}, "channel not allowed"},
		{"user not listed", fakeslack.Options{}, bob, incident, "/blame-dc", "ams01", bot.OutcomeRefused,
			[]string{"`/blame-dc` is limited to <@" + alice + ">"}, "user not allowed"},
		{"listed user", fakeslack.Options{}, alice, incident, "/blame-dc", "ams01", bot.OutcomeOK, []string{"Triaging"}, ""},
		{"not in the user group", fakeslack.Options{Usergroups: map[string][]string{"S0SRE": {alice}}}, bob, incident, "/blame-group", "europe",
			bot.OutcomeRefused, []string{"limited to members of <!subteam^S0SRE>"}, "user not allowed"},
		{"in the user group", fakeslack.Options{Usergroups: map[string][]string{"S0SRE": {alice}}}, alice, incident, "/blame-group", "europe",
			bot.OutcomeOK, []string{"Triaging"}, ""},
		{"user group unreadable", fakeslack.Options{Usergroups: map[string][]string{"S0SRE": {alice}}, MissingScopes: []string{"usergroups:read"}},
			alice, incident, "/blame-group", "europe", bot.OutcomeRefused, []string{"could not read the members", "usergroups:read"},
			"user not allowed; user group check failed: S0SRE: missing_scope"},
		{"open kind", fakeslack.Options{}, bob, incident, "/blame-minion", "web-1", bot.OutcomeOK, []string{"Triaging"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{inv: &smallInventory, triagers: canned, fake: tc.fake, cfg: restricted})
			h.slash(tc.user, tc.where, tc.cmd, tc.text)
			r := h.waitAudit(1)[0]
			if r.Outcome != tc.wantOutcome || r.Reason != tc.wantReason || r.User != tc.user || r.Channel != tc.where {
				t.Errorf("audit record = %+v", r)
			}
			eph := h.slack.Ephemerals()
			if len(eph) == 0 {
				t.Fatal("no ephemeral answer")
			}
			for _, w := range tc.wantText {
				if !strings.Contains(eph[0].Text, w) {
					t.Errorf("answer %q lacks %q", eph[0].Text, w)
				}
			}
			posted := len(h.slack.CallsTo("chat.postMessage")) > 0
			if posted != (tc.wantOutcome == bot.OutcomeOK) {
				t.Errorf("report posted = %v for outcome %s", posted, tc.wantOutcome)
			}
		})
	}
}

// bigReport is a report of n failed-state causes, each with long comments
// and 50 minion ids, over 100 datacenters.
func bigReport(scope triage.Scope, n int) *triage.Report {
	r := cannedReport(scope)
	r.Causes = nil
	comment := strings.Repeat("Source file salt://webserver/files/nginx.conf not found in saltenv 'base'. ", 14)
	for i := range n {
		c := triage.Cause{
			Kind: triage.CauseFailedState, Key: fmt.Sprintf("file.managed /etc/app%04d.conf", i),
			Summary: fmt.Sprintf("state /etc/app%04d.conf fails", i), Minions: 500,
			Evidence: triage.Evidence{
				Fun: "file.managed", StateID: fmt.Sprintf("/etc/app%04d.conf", i), SLS: "app", Comment: comment,
				Messages: []string{comment + "1", comment + "2", comment + "3"},
			},
		}
		for j := range 50 {
			c.MinionIDs = append(c.MinionIDs, fmt.Sprintf("web-dc%03d-%04d.example.com", j, i))
		}
		for j := range 10 {
			c.Datacenters = append(c.Datacenters, fmt.Sprintf("dc%03d", (i+j)%100))
		}
		r.Causes = append(r.Causes, c)
	}
	r.Datacenters = nil
	for i := range 100 {
		r.Datacenters = append(r.Datacenters, triage.DatacenterResult{Name: fmt.Sprintf("dc%03d", i), Master: "salt-eu", Counts: triage.Counts{Expected: 5000, Answered: 5000, Failing: 5000}})
	}
	r.Counts = triage.Counts{Expected: 500000, Answered: 500000, Failing: 500000}
	return r
}

func TestLargeReportGoesAsFile(t *testing.T) {
	var rep *triage.Report
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		return bigReport(s, 500), nil
	}).factory()})
	h.slash(alice, incident, "/blame-group", "europe")
	r := h.waitAudit(1)[0]
	if r.Outcome != bot.OutcomeOK {
		t.Fatalf("audit record = %+v\nlogs:\n%s", r, h.logs)
	}
	rep = bigReport(triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}, 500)
	want, err := formatters.JSON(rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 2<<20 {
		t.Fatalf("report is %d bytes, want a 2 MB one", len(want))
	}
	files := h.slack.Files()
	if len(files) != 1 {
		t.Fatalf("files = %d, want 1", len(files))
	}
	f := files[0]
	if string(f.Content) != string(want) || f.Channel != incident || f.ThreadTS != r.MessageTS || !strings.HasSuffix(f.Name, ".json") {
		t.Errorf("file %s (%d bytes) in %s thread %s; want the %d-byte JSON report in the summary's thread %s",
			f.Name, len(f.Content), f.Channel, f.ThreadTS, len(want), r.MessageTS)
	}
	for _, c := range h.slack.Calls() {
		if c.Error != "" {
			t.Errorf("%s failed: %s", c.Method, c.Error)
		}
	}
}

func TestShutdown(t *testing.T) {
	t.Run("cancels a triage past the grace", func(t *testing.T) {
		started := make(chan struct{})
		h := start(t, setup{
			inv: &smallInventory,
			cfg: func(c *bot.Config) { c.ShutdownGrace = 200 * time.Millisecond },
			deps: func(d *bot.Deps) {
				d.Clock = &graceClock{grace: 200 * time.Millisecond, reserve: 50 * time.Millisecond}
			},
			triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
				close(started)
				<-ctx.Done()
				return cannedReport(s), ctx.Err()
			}).factory(),
		})
		h.slash(alice, incident, "/blame-group", "europe")
		select {
		case <-started:
		case <-h.ctx.Done():
			t.Fatal("triage did not start")
		}
		if err := h.shutdown(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		r := h.records()
		if len(r) != 1 || r[0].Outcome != bot.OutcomeCancelled {
			t.Fatalf("audit = %+v", r)
		}
		thread := h.slack.Thread(incident, r[0].MessageTS)
		if len(thread) != 1 || !strings.Contains(thread[0].Text, "Sift was stopped before this triage finished (after ") ||
			!strings.Contains(thread[0].Text, "; run it again with `/blame-group europe`") {
			t.Errorf("thread = %s", texts(thread))
		}
		// A stop is neither an error nor an all-clear: the summary says
		// so, and offers to run the triage again.
		if m, _ := h.slack.Message(incident, r[0].MessageTS); !strings.Contains(m.Text, "Sift was stopped before this triage of group europe finished") ||
			strings.Contains(m.Text, "could not triage") || !strings.Contains(string(m.Blocks), formatters.ActionRerun) {
			t.Errorf("summary = %q\n%s", m.Text, m.Blocks)
		}
	})

	t.Run("lets a triage finish within the grace", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		h := start(t, setup{
			inv: &smallInventory,
			// The whole grace (5 s), which the triage needs far less of.
			deps: func(d *bot.Deps) { d.Clock = wallClock{} },
			triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
				close(started)
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return cannedReport(s), nil
			}).factory(),
		})
		h.slash(alice, incident, "/blame-group", "europe")
		<-started
		h.cancel()
		// The socket closes at once: no new command is taken.
		if err := h.slack.Wait(h.ctx, func() bool { return h.slack.Connected() == 0 }); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := h.shutdown(); err != nil {
			t.Fatalf("Run = %v", err)
		}
		r := h.records()
		if len(r) != 1 || r[0].Outcome != bot.OutcomeOK {
			t.Fatalf("audit = %+v", r)
		}
		if th := h.slack.Thread(incident, r[0].MessageTS); len(th) == 0 {
			t.Error("report has no thread")
		}
	})
}

func TestSlackFailuresReachTheUser(t *testing.T) {
	t.Run("channel the bot is not in", func(t *testing.T) {
		h := start(t, setup{
			inv: &smallInventory, fake: fakeslack.Options{Channels: []string{incident}},
			triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
				return cannedReport(s), nil
			}).factory(),
		})
		h.slash(alice, elsewhere, "/blame-dc", "ams01")
		r := h.waitAudit(1)[0]
		resps := h.slack.Responses()
		if len(resps) != 2 || !strings.Contains(resps[0].Text, "Triaging") || !strings.Contains(resps[1].Text, "/invite") || resps[1].ResponseType != "ephemeral" {
			t.Errorf("response_url messages = %+v", resps)
		}
		if r.Outcome != bot.OutcomeFailed || !strings.Contains(r.Reason, "not_in_channel") {
			t.Errorf("audit record = %+v", r)
		}
	})

	t.Run("internal error", func(t *testing.T) {
		h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
			return nil, errors.New(`group "europe": datacenter "zrh09" is not in the inventory`)
		}).factory()})
		h.slash(alice, incident, "/blame-group", "europe")
		r := h.waitAudit(1)[0]
		m, _ := h.slack.Message(incident, r.MessageTS)
		if !strings.Contains(m.Text, "internal error") || !strings.Contains(m.Text, "id "+r.ID) || strings.Contains(m.Text, "zrh09") {
			t.Errorf("summary = %q, want an apology with id %s", m.Text, r.ID)
		}
		if !strings.Contains(h.logs.String(), "zrh09") || r.Outcome != bot.OutcomeFailed {
			t.Errorf("error not logged or audited: %+v\n%s", r, h.logs)
		}
	})

	t.Run("a thread message refused", func(t *testing.T) {
		h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
			return cannedReport(s), nil
		}).factory()})
		h.slack.FailNextMatching("chat.postMessage", "msg_blocks_too_long", func(f url.Values) bool { return f.Get("thread_ts") != "" })
		h.slash(alice, incident, "/blame-dc", "ams01")
		r := h.waitAudit(1)[0]
		if r.Outcome != bot.OutcomePartial || !strings.Contains(r.Reason, "msg_blocks_too_long") {
			t.Errorf("audit record = %+v", r)
		}
		thread := h.slack.Thread(incident, r.MessageTS)
		if len(thread) == 0 || !strings.Contains(thread[len(thread)-1].Text, "Slack refused part of this report (chat.postMessage: msg_blocks_too_long). The full report is attached") {
			t.Errorf("thread = %s", texts(thread))
		}
		if f := h.slack.Files(); len(f) != 1 || f[0].ThreadTS != r.MessageTS || !strings.Contains(string(f[0].Content), `"headline"`) {
			t.Errorf("files = %+v", f)
		}
	})
}

func TestInvalidAuthStops(t *testing.T) {
	tests := []struct {
		name     string
		app, bot string
		want     string
	}{
		{"app token", "xapp-1-wrong-appsecretTOKENvalue", botToken, "slack: app token: invalid_auth (check slack.app_token)"},
		{"bot token", appToken, "xoxb-wrong-botsecretTOKENvalue", "slack: bot token: invalid_auth (check slack.bot_token)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := fakeslack.New(fakeslack.Options{AppToken: appToken, BotToken: botToken})
			defer fs.Close()
			logs := &syncBuffer{}
			b, err := bot.New(bot.Config{AppToken: config.Secret(tc.app), BotToken: config.Secret(tc.bot), APIURL: fs.APIURL()},
				bot.Deps{Triagers: triagerFunc(nil).factory(), Log: jsonLogger(logs)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err = b.Run(ctx)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
			if strings.Contains(logs.String(), "secretTOKEN") {
				t.Errorf("token in logs:\n%s", logs)
			}
		})
	}
}

func TestNoTokenInLogsOrAudit(t *testing.T) {
	h := start(t, setup{
		inv:  &smallInventory,
		fake: fakeslack.Options{Usergroups: map[string][]string{"S0SRE": {alice}}, MissingScopes: []string{"users:read.email"}},
		cfg: func(c *bot.Config) {
			c.Authz.Group = config.Access{Usergroups: []string{"S0SRE"}}
		},
		triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
			if s.Kind == triage.ScopeMinion {
				return nil, errors.New("salt-api salt-eu: login: 401")
			}
			return cannedReport(s), nil
		}).factory(),
	})
	h.slack.RateLimitNext("chat.postMessage", time.Second)
	h.slack.FailNextMatching("chat.postMessage", "invalid_auth", func(f url.Values) bool { return f.Get("thread_ts") != "" })
	h.slash(alice, incident, "/blame-dc", "ams01")
	h.slash(bob, incident, "/blame-group", "europe")
	h.mention(alice, incident, "", "minion web-1")
	h.mention(alice, incident, "", "help")
	h.waitAudit(4)
	h.slack.DropConnections()
	if err := h.slack.Wait(h.ctx, func() bool { return h.slack.Connected() == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg := bot.Config{AppToken: config.Secret(appToken), BotToken: config.Secret(botToken)}
	outputs := map[string]string{
		"logs":   h.logs.String(),
		"audit":  h.audit.String(),
		"config": fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
	}
	if !strings.Contains(outputs["logs"], "slack call failed") || strings.Count(outputs["audit"], "\n") != 4 {
		t.Fatalf("the scenario did not run:\nlogs:\n%s\naudit:\n%s", outputs["logs"], outputs["audit"])
	}
	for name, out := range outputs {
		for _, secret := range []string{appToken, botToken, "secretTOKENvalue"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s holds a token:\n%s", name, out)
			}
		}
	}
}

func TestProgressUpdatesAreThrottled(t *testing.T) {
	// A 100-datacenter group reports a datacenter done far more often than
	// Slack allows a message to be updated.
	const interval = 40 * time.Millisecond
	h := start(t, setup{
		inv: &smallInventory,
		cfg: func(c *bot.Config) { c.ProgressInterval = interval },
		triagers: triagerFunc(func(ctx context.Context, s triage.Scope, progress func(triage.Progress)) (*triage.Report, error) {
			for i := range 100 {
				progress(triage.Progress{Kind: triage.ProgressDatacenterFinished, Scope: s, DatacentersDone: i + 1, DatacentersTotal: 100})
				time.Sleep(2 * time.Millisecond)
			}
			return cannedReport(s), nil
		}).factory(),
	})
	h.slash(alice, incident, "/blame-group", "europe")
	r := h.waitAudit(1)[0]
	updates := h.slack.CallsTo("chat.update")
	if len(updates) < 2 {
		t.Fatalf("updates = %d, want progress and the final summary", len(updates))
	}
	if len(updates) > 60 {
		t.Errorf("updates = %d for 100 progress events", len(updates))
	}
	summary := h.slack.CallsTo("chat.postMessage")[0]
	prev := summary.At
	for i, u := range updates {
		if u.Form.Get("ts") != r.MessageTS {
			t.Errorf("update %d of %s, want %s", i, u.Form.Get("ts"), r.MessageTS)
		}
		if gap := u.At.Sub(prev); gap < interval {
			t.Errorf("update %d came %s after the previous one, inside the %s interval", i, gap, interval)
		}
		prev = u.At
	}
	last := updates[len(updates)-2].Form.Get("text")
	if !strings.Contains(last, "of 100 datacenters done") {
		t.Errorf("last progress update %q", last)
	}
}

func TestPostingWithoutACommand(t *testing.T) {
	started := make(chan struct{})
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}).factory()})
	root := h.slack.Post(incident, bob, "pipeline halted")

	ts, err := h.bot.PostReport(h.ctx, incident, root, cannedReport(triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}),
		formatters.SlackOptions{Title: "Pipeline halt: salt-failures-dc"})
	if err != nil {
		t.Fatal(err)
	}
	replies := h.slack.Thread(incident, root)
	if len(replies) < 2 || replies[0].TS != ts || !strings.Contains(blockText(replies[0].Blocks), "Pipeline halt: salt-failures-dc") ||
		!strings.Contains(texts(replies), "<@"+jdoe+">") {
		t.Errorf("thread:\n%s", texts(replies))
	}
	note, err := h.bot.Reply(h.ctx, incident, root, formatters.SlackMessage{Text: "halt cleared"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bot.Update(h.ctx, incident, note, formatters.SlackMessage{Text: "halt cleared at 10:42"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := h.slack.Message(incident, note); m.Text != "halt cleared at 10:42" || m.ThreadTS != root {
		t.Errorf("note = %+v", m)
	}

	ctx, cancel := context.WithCancel(h.ctx)
	go func() {
		select {
		case <-started:
		case <-ctx.Done():
		}
		cancel()
	}()
	_, ts, err = h.bot.TriageTo(ctx, elsewhere, "", triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}, formatters.SlackOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("TriageTo = %v, want context.Canceled", err)
	}
	if th := h.slack.Thread(elsewhere, ts); len(th) != 1 || !strings.Contains(th[0].Text, "Sift was stopped before this triage finished") {
		t.Errorf("thread of a stopped triage:\n%s", texts(th))
	}
}

func TestCommitAuthorLookups(t *testing.T) {
	tests := []struct {
		name        string
		fake        fakeslack.Options
		wantMention bool
	}{
		{"author found", fakeslack.Options{}, true},
		{"author unknown", fakeslack.Options{Users: map[string]string{"someone@example.com": "U0SOME"}}, false},
		{"scope missing", fakeslack.Options{MissingScopes: []string{"users:read.email"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var slackErrors []string
			h := start(t, setup{
				inv: &smallInventory, fake: tc.fake,
				triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
					return cannedReport(s), nil
				}).factory(),
				deps: func(d *bot.Deps) {
					d.OnSlackError = func(method, code string) {
						mu.Lock()
						defer mu.Unlock()
						slackErrors = append(slackErrors, method+" "+code)
					}
				},
			})
			h.slash(alice, incident, "/blame-dc", "ams01")
			h.slash(alice, incident, "/blame-dc", "fra02")
			recs := h.waitAudit(2)
			for _, r := range recs {
				summary, _ := h.slack.Message(incident, r.MessageTS)
				thread := blockText(summary.Blocks) + texts(h.slack.Thread(incident, r.MessageTS))
				if got := strings.Contains(thread, "<@"+jdoe+">"); got != tc.wantMention {
					t.Errorf("author mentioned = %v, want %v:\n%s", got, tc.wantMention, thread)
				}
				if !strings.Contains(thread, "John Doe") {
					t.Errorf("author not named:\n%s", thread)
				}
			}
			// Cached, found or not; after a missing scope, not asked again.
			if n := len(h.slack.CallsTo("users.lookupByEmail")); n != 1 {
				t.Errorf("users.lookupByEmail calls = %d, want 1", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(slackErrors) != 0 || strings.Contains(h.logs.String(), "slack call failed") {
				t.Errorf("lookups reported as failures: %v\n%s", slackErrors, h.logs)
			}
		})
	}
}
