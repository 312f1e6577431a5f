package halts_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/triage"
)

// killedAfterPost is the bot in a process killed the moment Slack took a
// halt's post: the post is in the channel, its ts was never stored.
type killedAfterPost struct{ *bot.Bot }

func (k killedAfterPost) PostReport(ctx context.Context, channel, threadTS string, r *triage.Report, o formatters.SlackOptions) (string, error) {
	if _, err := k.Bot.PostReport(ctx, channel, threadTS, r, o); err != nil {
		return "", err
	}
	runtime.Goexit()
	return "", nil
}

// TestPostFoundAfterRestartIsNotPostedAgain runs the real bot against the
// fake Slack: the halt's post went through but Sift died before storing
// its ts, and the next Sift finds the post in the channel's history
// instead of posting the halt a second time.
func TestPostFoundAfterRestartIsNotPostedAgain(t *testing.T) {
	fs := fakeslack.New(fakeslack.Options{})
	t.Cleanup(fs.Close)
	b, err := bot.New(bot.Config{AppToken: "xapp-1-A0SIFT-1-test", BotToken: "xoxb-1-2-test", APIURL: fs.APIURL()},
		bot.Deps{Triagers: func(func(triage.Progress)) bot.Triager { return &haltstest.Triager{} }})
	if err != nil {
		t.Fatal(err)
	}
	r := haltstest.NewRig(t, killedAfterPost{b})
	r.Notify(haltstest.Firing("pipeline/77", "ams01"))
	r.RunOnceMayDie()

	h := r.Halts()[0]
	marker := halts.Marker(h.Fingerprint)
	topLevel := func() []fakeslack.Message {
		var out []fakeslack.Message
		for _, m := range fs.Messages(haltstest.Channel) {
			if (m.ThreadTS == "" || m.ThreadTS == m.TS) && strings.Contains(string(m.Blocks), marker) {
				out = append(out, m)
			}
		}
		return out
	}
	if n := len(topLevel()); n != 1 || h.PostState != halts.PostPosting {
		t.Fatalf("before the restart: %d posts carrying %q and the halt %s; want 1 post, the halt mid-post", n, marker, h.PostState)
	}
	post := topLevel()[0]

	r.Poster = b
	r.Restart()
	r.Clock.Advance(time.Hour) // past any backoff
	r.RunOnce()
	r.RunOnce()
	if n := len(topLevel()); n != 1 {
		t.Errorf("%d top-level posts carrying %q after the restart, want exactly 1", n, marker)
	}
	if len(fs.CallsTo("conversations.history")) == 0 {
		t.Error("the channel's history was not searched")
	}
	if h := r.Halts()[0]; h.PostState != halts.PostPosted || h.TS != post.TS || h.Channel != haltstest.Channel {
		t.Fatalf("halt %s at %s in %s, want posted at %s in %s", h.PostState, h.TS, h.Channel, post.TS, haltstest.Channel)
	}

	// The halt clears: the post that was found is the one edited.
	r.Notify(haltstest.Resolved("pipeline/77"))
	r.RunOnce()
	if m, _ := fs.Message(haltstest.Channel, post.TS); m.Updates != 1 || !strings.Contains(string(m.Blocks), "Resolved: ") {
		t.Errorf("the post after the halt cleared: %d updates, blocks %s", m.Updates, m.Blocks)
	}
	if n := len(topLevel()); n != 1 {
		t.Errorf("%d top-level posts carrying %q in the end, want exactly 1", n, marker)
	}
}
