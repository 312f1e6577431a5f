package bot_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// scripted starts a bot whose triages return cannedReport, counting them.
func scriptedBot(t *testing.T, cfg func(*bot.Config), fake fakeslack.Options) (*harness, *atomic.Int32) {
	t.Helper()
	var runs atomic.Int32
	inv := smallInventory
	inv.Datacenters = append([]triage.Datacenter(nil), inv.Datacenters...)
	inv.Datacenters[0].Minions = []string{"web-ams01-001", "web-ams01-002", "db-ams01-001"}
	h := start(t, setup{cfg: cfg, fake: fake, inv: &inv, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		runs.Add(1)
		return cannedReport(s), nil
	}).factory()})
	return h, &runs
}

// buttonValue finds the value of the button actionID in a message.
func buttonValue(t *testing.T, m fakeslack.Message, actionID string) string {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if b.Type == "actions" && e.ActionID == actionID {
				return e.Value
			}
		}
	}
	t.Fatalf("no %s button in message %s:\n%s", actionID, m.TS, m.Blocks)
	return ""
}

// reportBy runs a slash command and returns its summary and thread once
// the report is posted.
func (h *harness) reportBy(user, cmd, text string, audits int) (fakeslack.Message, []fakeslack.Message) {
	h.t.Helper()
	h.slash(user, incident, cmd, text)
	h.waitAudit(audits)
	var summary fakeslack.Message
	for _, m := range h.slack.Messages(incident) {
		if (m.ThreadTS == "" || m.ThreadTS == m.TS) && m.User == fakeslack.DefaultBotUserID {
			summary = m
		}
	}
	return summary, h.slack.Thread(incident, summary.TS)
}

// press clicks a button and waits for its acknowledgement.
func (h *harness) press(user string, m fakeslack.Message, actionID, value string) fakeslack.Sent {
	h.t.Helper()
	sent, err := h.slack.SendBlockAction(h.ctx, fakeslack.BlockAction{UserID: user, ChannelID: m.Channel, MessageTS: m.TS, ActionID: actionID, Value: value})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		h.t.Fatal(err)
	}
	return sent
}

func TestButtonRerunPostsANewReportInTheSameThread(t *testing.T) {
	h, runs := scriptedBot(t, nil, fakeslack.Options{})
	summary, _ := h.reportBy(alice, "/blame-dc", "ams01", 1)
	value := buttonValue(t, summary, formatters.ActionRerun)
	if value != "datacenter:ams01" {
		t.Fatalf("re-run value = %q", value)
	}
	h.press(bob, summary, formatters.ActionRerun, value)
	recs := h.waitAudit(2)
	if runs.Load() != 2 {
		t.Errorf("%d triages, want 2", runs.Load())
	}
	r := recs[1]
	if r.Via != "button" || r.Command != formatters.ActionRerun || r.User != bob || r.Outcome != bot.OutcomeOK ||
		r.Scope == nil || *r.Scope != (triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}) || r.ThreadTS != summary.TS {
		t.Errorf("audit record = %+v", r)
	}
	rerun, ok := h.slack.Message(incident, r.MessageTS)
	if !ok || rerun.ThreadTS != summary.TS {
		t.Fatalf("re-run summary %s is in thread %q, want %s", r.MessageTS, rerun.ThreadTS, summary.TS)
	}
	if !strings.Contains(blockText(rerun.Blocks), "Requested by <@"+bob+">") {
		t.Errorf("re-run summary does not name who asked:\n%s", blockText(rerun.Blocks))
	}
	// Everything the re-run posted went to the first report's thread.
	for _, m := range h.slack.Messages(incident) {
		if m.Seq > rerun.Seq && m.ThreadTS != summary.TS {
			t.Errorf("message %s posted at %q, outside the thread", m.TS, m.ThreadTS)
		}
	}
}

func TestButtonAllMinionsAttachesACSV(t *testing.T) {
	h, _ := scriptedBot(t, nil, fakeslack.Options{})
	summary, _ := h.reportBy(alice, "/blame-dc", "ams01", 1)
	h.press(alice, summary, formatters.ActionAllMinions, buttonValue(t, summary, formatters.ActionAllMinions))
	recs := h.waitAudit(2)
	if r := recs[1]; r.Outcome != bot.OutcomeOK || r.Command != formatters.ActionAllMinions || r.Scope == nil || r.Scope.Name != "ams01" {
		t.Errorf("audit record = %+v", r)
	}
	files := h.slack.Files()
	if len(files) != 1 || files[0].ThreadTS != summary.TS || !strings.HasSuffix(files[0].Name, ".csv") {
		t.Fatalf("files = %+v", files)
	}
	rows, err := csv.NewReader(strings.NewReader(string(files[0].Content))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1][0] != "web-1" || rows[3][0] != "web-3" || rows[1][2] != "commit" {
		t.Errorf("CSV rows = %v", rows)
	}
}

func TestButtonCauseMinionsListsThemInTheThread(t *testing.T) {
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprintf("web-%d", i+1)
	}
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		r := cannedReport(s)
		r.Causes[0].Minions, r.Causes[0].MinionIDs = len(ids), ids
		return r, nil
	}).factory()})
	summary, thread := h.reportBy(alice, "/blame-dc", "ams01", 1)
	if text := blockText(thread[0].Blocks); !strings.Contains(text, "web-10") || strings.Contains(text, "web-11,") {
		t.Errorf("the cause names more than its first minions:\n%s", text)
	}
	cause := thread[0]
	h.press(alice, cause, formatters.ActionCauseMinions, buttonValue(t, cause, formatters.ActionCauseMinions))
	recs := h.waitAudit(2)
	if recs[1].Outcome != bot.OutcomeOK {
		t.Errorf("audit record = %+v", recs[1])
	}
	after := h.slack.Thread(incident, summary.TS)
	last := after[len(after)-1]
	if len(after) != len(thread)+1 || !strings.Contains(blockText(last.Blocks), "web-1, web-2, web-3") || !strings.Contains(blockText(last.Blocks), "web-39, web-40") {
		t.Errorf("thread after the button:\n%s", texts(after))
	}
}

func TestButtonOfAForgottenReportSaysSo(t *testing.T) {
	h, _ := scriptedBot(t, nil, fakeslack.Options{})
	summary, _ := h.reportBy(alice, "/blame-dc", "ams01", 1)
	// The buttons of a report posted by a Sift that has since restarted
	// name a report id this one never held.
	other, err := h.bot.PostReport(h.ctx, incident, summary.TS, cannedReport(triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}),
		formatters.SlackOptions{ReportID: "gone1234"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := h.slack.Message(incident, other)
	h.press(alice, m, formatters.ActionAllMinions, "gone1234")
	recs := h.waitAudit(2)
	if r := recs[1]; r.Outcome != bot.OutcomeFailed || r.Reason != "report no longer held" {
		t.Errorf("audit record = %+v", r)
	}
	eph := h.slack.Ephemerals()
	if len(eph) == 0 || !strings.Contains(eph[len(eph)-1].Text, "no longer holds this report") {
		t.Errorf("ephemerals = %+v", eph)
	}
}

func TestButtonsAreAuthorised(t *testing.T) {
	h, runs := scriptedBot(t, func(c *bot.Config) {
		c.Channels = []string{incident, elsewhere}
		c.Authz = config.Authz{Datacenter: config.Access{Users: []string{alice}}}
	}, fakeslack.Options{})
	summary, _ := h.reportBy(alice, "/blame-dc", "ams01", 1)

	h.press(bob, summary, formatters.ActionRerun, buttonValue(t, summary, formatters.ActionRerun))
	h.press(bob, summary, formatters.ActionAllMinions, buttonValue(t, summary, formatters.ActionAllMinions))
	recs := h.waitAudit(3)
	for _, r := range recs[1:] {
		if r.Outcome != bot.OutcomeRefused || r.Reason != "user not allowed" || r.User != bob || r.Via != "button" {
			t.Errorf("audit record = %+v", r)
		}
	}
	if runs.Load() != 1 || len(h.slack.Files()) != 0 {
		t.Errorf("a refused button ran: %d triages, %d files", runs.Load(), len(h.slack.Files()))
	}
	eph := h.slack.Ephemerals()
	if len(eph) < 2 || eph[len(eph)-1].User != bob || !strings.Contains(eph[len(eph)-1].Text, "is limited to <@"+alice+">") {
		t.Errorf("ephemerals = %+v", eph)
	}
}

func TestButtonsInAChannelSiftDoesNotServe(t *testing.T) {
	h, runs := scriptedBot(t, func(c *bot.Config) { c.Channels = []string{incident} }, fakeslack.Options{})
	// A report Sift posted elsewhere (a halt channel, say) before the
	// channel was taken out of its configuration.
	ts, err := h.bot.PostReport(h.ctx, elsewhere, "", cannedReport(triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}), formatters.SlackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := h.slack.Message(elsewhere, ts)
	h.press(alice, m, formatters.ActionRerun, buttonValue(t, m, formatters.ActionRerun))
	recs := h.waitAudit(1)
	if r := recs[0]; r.Outcome != bot.OutcomeRefused || r.Reason != "channel not allowed" || r.Channel != elsewhere {
		t.Errorf("audit record = %+v", r)
	}
	if runs.Load() != 0 {
		t.Errorf("%d triages ran", runs.Load())
	}
}

// shortcut uses the message shortcut on a message and returns the modal
// it opened.
func (h *harness) shortcut(user, channel, ts string) fakeslack.View {
	h.t.Helper()
	sent, err := h.slack.SendMessageShortcut(h.ctx, fakeslack.MessageShortcut{UserID: user, ChannelID: channel, MessageTS: ts, CallbackID: bot.ShortcutCallbackID})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		h.t.Fatal(err)
	}
	if err := h.slack.Wait(h.ctx, func() bool { return len(h.slack.Views()) > 0 }); err != nil {
		h.t.Fatalf("no modal opened: %v\ncalls:\n%s", err, bodyOf(h.slack.Calls()))
	}
	views := h.slack.Views()
	if views[len(views)-1].TriggerID != sent.TriggerID {
		h.t.Fatalf("modal opened with trigger %q, want the shortcut's %q", views[len(views)-1].TriggerID, sent.TriggerID)
	}
	return views[len(views)-1]
}

// submit submits the modal and returns the acknowledgement's payload.
func (h *harness) submit(user, viewID string, values map[string]map[string]fakeslack.ViewValue) json.RawMessage {
	h.t.Helper()
	sent, err := h.slack.SubmitView(h.ctx, fakeslack.ViewSubmission{UserID: user, ViewID: viewID, Values: values})
	if err != nil {
		h.t.Fatal(err)
	}
	ack, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID)
	if err != nil {
		h.t.Fatal(err)
	}
	return ack.Payload
}

func pick(block, action, typ, value string) map[string]map[string]fakeslack.ViewValue {
	return map[string]map[string]fakeslack.ViewValue{block: {action: {Type: typ, Selected: value, Text: value}}}
}

func TestShortcutTriagesIntoTheThreadOfTheMessage(t *testing.T) {
	h, runs := scriptedBot(t, nil, fakeslack.Options{})
	root := h.slack.Post(incident, bob, "web tier is down in ams01, looking")
	// The shortcut is used on a reply: the report goes to its thread.
	reply, err := h.slack.PostInThread(incident, root, bob, "highstates failing since 10:00")
	if err != nil {
		t.Fatal(err)
	}
	view := h.shortcut(alice, incident, reply)

	var modal struct {
		Title      struct{ Text string } `json:"title"`
		CallbackID string                `json:"callback_id"`
		Blocks     []struct {
			Type    string `json:"type"`
			BlockID string `json:"block_id"`
			Element struct {
				Type    string `json:"type"`
				Options []struct {
					Value string `json:"value"`
				} `json:"options"`
			} `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(view.View, &modal); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	var dcs []string
	for _, b := range modal.Blocks {
		kinds[b.BlockID] = b.Element.Type
		if b.BlockID == "sift_datacenter" {
			for _, o := range b.Element.Options {
				dcs = append(dcs, o.Value)
			}
		}
	}
	if modal.CallbackID != bot.ShortcutCallbackID || kinds["sift_minion"] != "external_select" || kinds["sift_datacenter"] != "static_select" ||
		kinds["sift_group"] != "static_select" || strings.Join(dcs, ",") != "ams01,fra02" {
		t.Fatalf("modal = %s", view.View)
	}

	// Type-ahead for minions: from the inventory, and what was typed when
	// it is a minion id.
	sent, err := h.slack.SendBlockSuggestion(h.ctx, fakeslack.BlockSuggestion{UserID: alice, ViewID: view.ID, BlockID: "sift_minion", ActionID: "minion", Value: "web-ams"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Options []struct {
			Value string                `json:"value"`
			Text  struct{ Text string } `json:"text"`
		} `json:"options"`
	}
	if err := json.Unmarshal(ack.Payload, &opts); err != nil {
		t.Fatalf("suggestion ack %s: %v", ack.Payload, err)
	}
	var got []string
	for _, o := range opts.Options {
		got = append(got, o.Value)
	}
	if strings.Join(got, ",") != "web-ams,web-ams01-001,web-ams01-002" {
		t.Errorf("suggestions = %v", got)
	}
	// A pattern is never offered as a minion.
	sent, _ = h.slack.SendBlockSuggestion(h.ctx, fakeslack.BlockSuggestion{UserID: alice, ViewID: view.ID, BlockID: "sift_minion", ActionID: "minion", Value: "web-*"})
	ack, _ = h.slack.WaitAck(h.ctx, sent.EnvelopeID)
	if strings.Contains(string(ack.Payload), "web-*") {
		t.Errorf("a glob was offered: %s", ack.Payload)
	}

	payload := h.submit(alice, view.ID, pick("sift_minion", "minion", "external_select", "web-ams01-002"))
	if strings.Contains(string(payload), "errors") {
		t.Fatalf("submission refused: %s", payload)
	}
	recs := h.waitAudit(1)
	r := recs[0]
	if r.Via != "shortcut" || r.Outcome != bot.OutcomeOK || r.User != alice || r.Channel != incident || r.ThreadTS != root ||
		r.Scope == nil || *r.Scope != (triage.Scope{Kind: triage.ScopeMinion, Name: "web-ams01-002"}) {
		t.Errorf("audit record = %+v", r)
	}
	summary, ok := h.slack.Message(incident, r.MessageTS)
	if !ok || summary.ThreadTS != root {
		t.Errorf("report posted in thread %q, want the message's %s", summary.ThreadTS, root)
	}
	if runs.Load() != 1 {
		t.Errorf("%d triages", runs.Load())
	}
	if v := h.slack.Views(); v[0].Open {
		t.Error("the modal is still open after a good submission")
	}
}

func TestShortcutFormErrors(t *testing.T) {
	h, runs := scriptedBot(t, nil, fakeslack.Options{})
	root := h.slack.Post(incident, bob, "alerts firing")
	view := h.shortcut(alice, incident, root)
	tests := []struct {
		name   string
		values map[string]map[string]fakeslack.ViewValue
		block  string
	}{
		{"nothing", nil, "sift_minion"},
		{"two", map[string]map[string]fakeslack.ViewValue{
			"sift_datacenter": {"datacenter": {Type: "static_select", Selected: "ams01"}},
			"sift_group":      {"group": {Type: "static_select", Selected: "europe"}},
		}, "sift_group"},
		{"not a minion id", pick("sift_minion", "minion", "external_select", "web-1,web-2"), "sift_minion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := h.submit(alice, view.ID, tc.values)
			var resp struct {
				ResponseAction string            `json:"response_action"`
				Errors         map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(payload, &resp); err != nil || resp.ResponseAction != "errors" || resp.Errors[tc.block] == "" {
				t.Errorf("ack payload = %s, want errors on %s", payload, tc.block)
			}
			if !h.slack.Views()[0].Open {
				t.Error("the modal closed on a bad submission")
			}
		})
	}
	if runs.Load() != 0 {
		t.Errorf("%d triages ran", runs.Load())
	}
}

func TestShortcutIsAuthorised(t *testing.T) {
	h, runs := scriptedBot(t, func(c *bot.Config) {
		c.Channels = []string{incident}
		c.Authz = config.Authz{Group: config.Access{Users: []string{bob}}}
	}, fakeslack.Options{})

	// In a channel Sift does not serve, no modal opens.
	other := h.slack.Post(elsewhere, bob, "hello")
	sent, err := h.slack.SendMessageShortcut(h.ctx, fakeslack.MessageShortcut{UserID: alice, ChannelID: elsewhere, MessageTS: other, CallbackID: bot.ShortcutCallbackID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	recs := h.waitAudit(1)
	if r := recs[0]; r.Via != "shortcut" || r.Outcome != bot.OutcomeRefused || r.Reason != "channel not allowed" || r.Channel != elsewhere {
		t.Errorf("audit record = %+v", r)
	}
	if len(h.slack.Views()) != 0 {
		t.Error("a modal opened in a channel Sift does not serve")
	}

	// A group triage alice may not run is refused after the form.
	root := h.slack.Post(incident, bob, "europe is red")
	view := h.shortcut(alice, incident, root)
	h.submit(alice, view.ID, pick("sift_group", "group", "static_select", "europe"))
	recs = h.waitAudit(2)
	if r := recs[1]; r.Outcome != bot.OutcomeRefused || r.Reason != "user not allowed" || r.User != alice || r.ThreadTS != root {
		t.Errorf("audit record = %+v", r)
	}
	if runs.Load() != 0 {
		t.Errorf("%d triages ran", runs.Load())
	}
	eph := h.slack.Ephemerals()
	if len(eph) == 0 || eph[len(eph)-1].User != alice || eph[len(eph)-1].ThreadTS != root {
		t.Errorf("refusal not told in the thread: %+v", eph)
	}
}

func TestButtonFullMessagesAttachesThem(t *testing.T) {
	traceback := "Rendering SLS 'base:web' failed: Jinja error\nTraceback (most recent call last):\n" +
		strings.Repeat("  File \"/usr/lib/python3/dist-packages/salt/utils/templates.py\", line 394, in render_jinja_tmpl\n", 20) +
		"salt.exceptions.SaltRenderError: Vault request failed: 403 Forbidden\n"
	h := start(t, setup{inv: &smallInventory, triagers: triagerFunc(func(ctx context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
		r := cannedReport(s)
		r.Causes[0].Evidence.Examples = []triage.Example{{Text: traceback, Minion: "web-1", Count: 3}}
		return r, nil
	}).factory()})
	summary, thread := h.reportBy(alice, "/blame-dc", "ams01", 1)
	cause := thread[0]
	if text := blockText(cause.Blocks); !strings.Contains(text, "SaltRenderError: Vault request failed") || strings.Contains(text, "templates.py") {
		t.Errorf("the cause shows more than the gist of the traceback:\n%s", text)
	}
	h.press(bob, cause, formatters.ActionCauseMessages, buttonValue(t, cause, formatters.ActionCauseMessages))
	recs := h.waitAudit(2)
	if r := recs[1]; r.Outcome != bot.OutcomeOK || r.Command != formatters.ActionCauseMessages || r.User != bob {
		t.Errorf("audit record = %+v", r)
	}
	files := h.slack.Files()
	if len(files) != 1 || files[0].ThreadTS != summary.TS || !strings.Contains(string(files[0].Content), traceback) {
		t.Errorf("files = %+v", files)
	}
}

// placeholder matches the masks of the grouping templates, raw or as
// escaped in mrkdwn: they are for grouping, never for people.
var placeholder = regexp.MustCompile(`(<|&lt;)(n|host|path|minion|hex|ip|uuid|num)(>|&gt;)`)

func TestNoPlaceholderReachesSlack(t *testing.T) {
	h := start(t, setup{})
	if p := placeholder.FindString(blockText(json.RawMessage(`[{"text":"\u0026lt;n\u0026gt;"}]`))); p == "" {
		t.Fatal("the check would not see an escaped placeholder")
	}
	h.slash(alice, incident, "/blame-group", "europe")
	h.waitAudit(1)
	msgs := h.slack.Messages(incident)
	if len(msgs) < 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		// Decoded: slack-go sends blocks with < and & as JSON escapes.
		for _, text := range []string{m.Text, blockText(m.Blocks)} {
			if p := placeholder.FindString(text); p != "" {
				t.Errorf("message %s shows %q:\n%s", m.TS, p, blockText(m.Blocks))
			}
		}
	}
	// The demo's failures are masked for grouping: the report shows the
	// real messages instead.
	if all := texts(msgs); !strings.Contains(all, "What failed") || !strings.Contains(all, "more like it") {
		t.Errorf("the report shows no real message:\n%s", all)
	}
}

func TestShortcutWhoseFormCannotOpen(t *testing.T) {
	// Slack refuses a trigger used after its 3 s; here, any trigger.
	h, _ := scriptedBot(t, nil, fakeslack.Options{TriggerTTL: time.Nanosecond})
	root := h.slack.Post(incident, bob, "root")
	sent, err := h.slack.SendMessageShortcut(h.ctx, fakeslack.MessageShortcut{UserID: alice, ChannelID: incident, MessageTS: root, CallbackID: bot.ShortcutCallbackID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(h.ctx, sent.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	recs := h.waitAudit(1)
	if r := recs[0]; r.Via != "shortcut" || r.Outcome != bot.OutcomeFailed || !strings.Contains(r.Reason, "expired_trigger_id") {
		t.Errorf("audit record = %+v", r)
	}
	eph := h.slack.Ephemerals()
	if len(eph) != 1 || eph[0].User != alice || !strings.Contains(eph[0].Text, "could not open its form") {
		t.Errorf("ephemerals = %+v", eph)
	}
}
