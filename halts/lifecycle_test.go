package halts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
	"github.com/sift-chatops/sift/triage"
)

// TestSameScopeJoinsOneHalt: alerts of a scope that arrive while its halt
// is being triaged, or soon after its post, join it: one triage, one post,
// and the thread lists them.
func TestSameScopeJoinsOneHalt(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Options.CoalesceWindow = 10 * time.Minute
	r.Restart()
	var events []halts.Event
	for i := range 50 {
		e := haltstest.Firing(fmt.Sprintf("alertmanager/%02d", i), "ams01")
		e.Name = fmt.Sprintf("Alert%02d", i)
		events = append(events, e)
	}
	res, err := r.Svc.NotifyAll(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != halts.ResultNew || res[1] != halts.ResultJoined || res[49] != halts.ResultJoined {
		t.Fatalf("results %v..., want new then joined", res[:3])
	}
	r.RunOnce()
	if n, c := len(p.Posts()), r.Triager.Calls(); n != 1 || c != 1 {
		t.Fatalf("%d posts and %d triages, want 1 and 1", n, c)
	}
	post := p.Posts()[0]
	var listed string
	for _, m := range p.Replies() {
		if m.Thread == post.TS && strings.Contains(m.Text, "joined this halt") {
			listed = m.Text
		}
	}
	if !strings.Contains(listed, "49 more alerts") || !strings.Contains(listed, "Alert01") || !strings.Contains(listed, "…and 29 more") {
		t.Errorf("joined reply %q: want the 49 joined alerts counted, the first 20 named", listed)
	}
	// Within the window after the post, another alert joins and is
	// listed; nothing is posted again.
	r.Clock.Advance(5 * time.Minute)
	late := haltstest.Firing("alertmanager/late", "ams01")
	late.Name = "LateAlert"
	if got := r.Notify(late); got != halts.ResultJoined {
		t.Fatalf("late alert: %s, want joined", got)
	}
	r.RunOnce()
	if n := len(p.Posts()); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
	if last := p.Replies()[len(p.Replies())-1]; !strings.Contains(last.Text, "1 more alert of this scope") || !strings.Contains(last.Text, "LateAlert") {
		t.Errorf("last reply %q: want the late alert listed", last.Text)
	}
	// After the window, the scope halts anew.
	r.Clock.Advance(10 * time.Minute)
	if got := r.Notify(haltstest.Firing("alertmanager/next", "ams01")); got != halts.ResultNew {
		t.Errorf("alert after the window: %s, want new", got)
	}
	// The first halt clears only when every alert that joined it did.
	for _, e := range events {
		r.Notify(haltstest.Resolved(e.Key))
	}
	r.RunOnce()
	if n := len(p.Updates()); n != 0 {
		t.Fatalf("%d edits while the late alert is open, want 0", n)
	}
	r.Notify(haltstest.Resolved("alertmanager/late"))
	r.RunOnce()
	if ups := p.Updates(); len(ups) != 1 || ups[0].TS != post.TS {
		t.Errorf("edits %+v, want the first post marked resolved", ups)
	}
}

// countingObserver counts notifications and suppressed halts.
type countingObserver struct {
	mu         sync.Mutex
	suppressed int
}

func (o *countingObserver) HaltNotification(halts.Source, string) {}

func (o *countingObserver) HaltsSuppressed(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.suppressed += n
}

// TestPostBudget: past max_posts_per_hour, halts are stored and not
// posted, and one note per interval says how many.
func TestPostBudget(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	obs := &countingObserver{}
	r.Options.MaxPostsPerHour = 3
	r.Options.Observer = obs
	r.Restart()
	for i := range 10 {
		r.Notify(haltstest.Firing(fmt.Sprintf("pipeline/%d", i), fmt.Sprintf("dc%02d", i)))
	}
	r.RunOnce()
	r.RunOnce() // the note is posted at the start of a run
	if n := len(p.Posts()); n != 3 {
		t.Fatalf("%d posts, want the budget's 3", n)
	}
	if c := r.Triager.Calls(); c != 3 {
		t.Errorf("%d triages, want 3: suppressed halts are not triaged", c)
	}
	notes := topLevelReplies(p)
	if len(notes) != 1 || !strings.Contains(notes[0], "7 more halts suppressed") {
		t.Fatalf("notes %q, want one saying 7 halts were suppressed", notes)
	}
	if obs.suppressed != 7 {
		t.Errorf("suppressed metric %d, want 7", obs.suppressed)
	}
	// More halts within the interval: no second note yet.
	for i := 10; i < 15; i++ {
		r.Notify(haltstest.Firing(fmt.Sprintf("pipeline/%d", i), fmt.Sprintf("dc%02d", i)))
	}
	r.RunOnce()
	r.RunOnce()
	if notes := topLevelReplies(p); len(notes) != 1 {
		t.Errorf("%d notes within the interval, want 1", len(notes))
	}
	// An hour later the budget is back and the held-back count is said once.
	r.Clock.Advance(time.Hour + time.Second)
	r.RunOnce()
	notes = topLevelReplies(p)
	if len(notes) != 2 || !strings.Contains(notes[1], "5 more halts suppressed") {
		t.Errorf("notes %q, want a second one for the 5 later halts", notes)
	}
	r.Notify(haltstest.Firing("pipeline/new", "dc99"))
	r.RunOnce()
	if n := len(p.Posts()); n != 4 {
		t.Errorf("%d posts after the hour, want 4", n)
	}
	for _, h := range r.Halts() {
		if h.PostState != halts.PostPosted && h.PostState != halts.PostSuppressed {
			t.Errorf("halt %s %s, want posted or suppressed", h.Key, h.PostState)
		}
	}
}

func topLevelReplies(p *haltstest.Poster) []string {
	var out []string
	for _, m := range p.Replies() {
		if m.Thread == "" {
			out = append(out, m.Text)
		}
	}
	return out
}

// failingStore is a store whose failures can be switched on: every write
// of a step's outcome fails, as on a full disk.
type failingStore struct {
	halts.Store
	mu   sync.Mutex
	fail error
}

func (f *failingStore) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *failingStore) BeginPost(ctx context.Context, fp, channel string, summary []byte) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.BeginPost(ctx, fp, channel, summary)
}

func (f *failingStore) Failed(ctx context.Context, fp string, next time.Time) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Failed(ctx, fp, next)
}

func (f *failingStore) RecordTriage(ctx context.Context, r halts.TriageRecord) (int64, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.Store.RecordTriage(ctx, r)
}

// TestFailureThatCannotBeRecordedBacksOff: with the disk full, a failed
// step is not retried at once: the backoff is held in memory, it grows,
// and each attempt logs one warning.
func TestFailureThatCannotBeRecordedBacksOff(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	var logs bytes.Buffer
	r.Log.SetOutput(&logs)
	r.Notify(haltstest.Firing("pipeline/1", "ams01"))
	fs := &failingStore{Store: r.Store, fail: errors.New("database or disk is full")}
	r.Svc = halts.NewService(fs, r.Triager, r.Poster, r.Options)
	ctx := context.Background()

	attempts := func() int { return strings.Count(logs.String(), "halt step failed") }
	// Many runs at the same instant: one attempt, one warning.
	for range 20 {
		if err := r.Svc.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := attempts(); n != 1 {
		t.Fatalf("%d warnings after 20 runs at one instant, want 1\n%s", n, logs.String())
	}
	// The waits double (jitter is 0 here): 5 s, 10 s, 20 s.
	for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		r.Clock.Advance(wait - time.Millisecond)
		r.Svc.RunOnce(ctx)
		if n := attempts(); n != i+1 {
			t.Fatalf("retry %d came before its %s backoff (%d warnings)", i+1, wait, n)
		}
		r.Clock.Advance(time.Millisecond)
		r.Svc.RunOnce(ctx)
		if n := attempts(); n != i+2 {
			t.Fatalf("retry %d not made after %s (%d warnings)", i+1, wait, n)
		}
	}
	if !strings.Contains(logs.String(), "record_error") || !strings.Contains(logs.String(), "disk is full") {
		t.Errorf("the warnings do not say the failure could not be recorded:\n%s", logs.String())
	}
	// The disk has room again: the halt is posted, once.
	fs.mu.Lock()
	fs.fail = nil
	fs.mu.Unlock()
	r.Clock.Advance(time.Hour)
	r.Svc.RunOnce(ctx)
	if n := len(p.Posts()); n != 1 {
		t.Errorf("%d posts once the store works, want 1", n)
	}
}

// TestBackoffJitter: the wait after n failures is spread by the jitter,
// never beyond the doubled wait nor below half of it.
func TestBackoffJitter(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		t.Run(fmt.Sprint(jitter), func(t *testing.T) {
			p := haltstest.NewPoster()
			p.FailPost = haltstest.ErrSlackDown
			r := haltstest.NewRig(t, p)
			r.Options.Jitter = func() float64 { return jitter }
			r.Restart()
			r.Notify(haltstest.Firing("pipeline/1", "ams01"))
			r.RunOnce()
			h := r.Halts()[0]
			want := 5*time.Second - time.Duration(float64(5*time.Second/2)*jitter)
			if got := h.NextAttemptAt.Sub(r.Clock.Now()); got != want {
				t.Errorf("next attempt in %s, want %s", got, want)
			}
		})
	}
}

// TestPanicIsOneHaltsFailure: a panic while working on a halt is logged
// with an id and the stack, said in the halt's thread, and retried later;
// the service goes on with the other halts.
func TestPanicIsOneHaltsFailure(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	var logs bytes.Buffer
	r.Log.SetOutput(&logs)
	r.Notify(haltstest.Firing("pipeline/1", "ams01"))
	r.RunOnce()
	post := p.Posts()[0]
	r.Notify(haltstest.Resolved("pipeline/1"))
	r.Notify(haltstest.Firing("pipeline/2", "fra02"))
	p.PanicOnUpdate = true
	r.RunOnce()

	out := logs.String()
	if !strings.Contains(out, "internal error while working on a halt") || !strings.Contains(out, "update exploded") || !strings.Contains(out, "goroutine") {
		t.Fatalf("log lacks the panic, its value or its stack:\n%s", out)
	}
	var reply string
	for _, m := range p.Replies() {
		if m.Thread == post.TS && strings.Contains(m.Text, "Sift hit an internal error; the log has id") {
			reply = m.Text
		}
	}
	if reply == "" {
		t.Fatalf("no internal-error reply in the halt's thread: %+v", p.Replies())
	}
	id := reply[strings.Index(reply, "`")+1:]
	id = id[:strings.Index(id, "`")]
	if !strings.Contains(out, "error_id="+id) {
		t.Errorf("the reply's id %s is not in the log", id)
	}
	if n := len(p.Posts()); n != 2 {
		t.Errorf("%d posts, want fra02 posted too despite the panic", n)
	}
	var h halts.Halt
	for _, x := range r.Halts() {
		if x.Key == "pipeline/1" {
			h = x
		}
	}
	if h.Failures != 1 || h.ResolveEdited {
		t.Errorf("halt after the panic: %d failures, edited %v; want the failure recorded and the edit to do", h.Failures, h.ResolveEdited)
	}
	r.Clock.Advance(time.Minute)
	r.RunOnce()
	if ups := p.Updates(); len(ups) != 1 || ups[0].TS != post.TS {
		t.Errorf("updates %+v after the retry, want the resolved edit", ups)
	}
}

// TestRetention: what is older than the retention is pruned by the
// service; open halts stay.
func TestRetention(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Options.Retention = 48 * time.Hour
	r.Restart()
	ctx := context.Background()
	r.Notify(haltstest.Firing("pipeline/old", "ams01"))
	r.Notify(haltstest.Firing("pipeline/open", "fra02"))
	r.RunOnce()
	r.Notify(haltstest.Resolved("pipeline/old"))
	r.RunOnce()
	if _, err := r.Store.RecordTriage(ctx, halts.TriageRecord{At: r.Clock.Now(), Origin: halts.OriginSlack, Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "eu"}}); err != nil {
		t.Fatal(err)
	}
	r.Clock.Advance(72 * time.Hour)
	r.RunOnce()
	hs := r.Halts()
	if len(hs) != 1 || hs[0].Key != "pipeline/open" {
		t.Errorf("halts after the retention %+v, want the open one only", hs)
	}
	if recs, err := r.Store.Triages(ctx, 10); err != nil || len(recs) != 0 {
		t.Errorf("triages after the retention: %d, %v; want none", len(recs), err)
	}
}
