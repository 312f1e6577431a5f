package halts_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/haltstest"
)

func TestDuplicateDeliveriesPostOnce(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	if got := r.Notify(haltstest.Firing("pipeline/42", "ams01")); got != halts.ResultNew {
		t.Fatalf("first firing: %s, want new", got)
	}
	for range 3 {
		if got := r.Notify(haltstest.Firing("pipeline/42", "ams01")); got != halts.ResultAgain {
			t.Fatalf("duplicate firing: %s, want firing_again", got)
		}
	}
	r.RunOnce()
	r.RunOnce()
	posts := p.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1: %+v", len(posts), posts)
	}
	hs := r.Halts()
	if len(hs) != 1 {
		t.Fatalf("%d halts stored, want 1", len(hs))
	}
	h := hs[0]
	if posts[0].Channel != haltstest.Channel || !strings.Contains(posts[0].Title, halts.Marker(h.Fingerprint)) {
		t.Errorf("post %+v: want channel %s and the halt's marker in the title", posts[0], haltstest.Channel)
	}
	if h.PostState != halts.PostPosted || h.TS != posts[0].TS || h.Firings != 4 {
		t.Errorf("stored halt %+v: want posted with ts %s and 4 firings", h, posts[0].TS)
	}
	// The thread gets the halt's details, and no "still failing" reply:
	// the firings came before the post.
	replies := p.Replies()
	if len(replies) != 1 || replies[0].Thread != posts[0].TS || !strings.Contains(replies[0].Text, "Salt failures above 20%") {
		t.Errorf("replies %+v: want the halt's details in the post's thread", replies)
	}
	if r.Triager.Calls() != 1 {
		t.Errorf("%d triages, want 1", r.Triager.Calls())
	}
}

func TestStillFailingAtMostOncePerInterval(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Notify(haltstest.Firing("pipeline/7", "fra02"))
	r.RunOnce()
	stillFailing := func() int {
		n := 0
		for _, m := range p.Replies() {
			if strings.Contains(m.Text, "Still failing") {
				n++
			}
		}
		return n
	}
	steps := []struct {
		name    string
		advance time.Duration
		firings int
		want    int
	}{
		{"firings within the interval", 10 * time.Minute, 3, 0},
		{"interval over", 21 * time.Minute, 0, 1},
		{"nothing new", 10 * time.Minute, 0, 1},
		{"new firing, interval not over", time.Minute, 1, 1},
		{"new firing, interval over", 20 * time.Minute, 0, 2},
	}
	for _, s := range steps {
		r.Clock.Advance(s.advance)
		for range s.firings {
			r.Notify(haltstest.Firing("pipeline/7", "fra02"))
		}
		r.RunOnce()
		r.RunOnce()
		if got := stillFailing(); got != s.want {
			t.Fatalf("%s: %d still-failing replies, want %d", s.name, got, s.want)
		}
	}
	if n := len(p.Posts()); n != 1 {
		t.Errorf("%d top-level posts, want 1", n)
	}
}

func TestResolvedAfterRestartEditsOriginal(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Notify(haltstest.Firing("pipeline/9", "lon03"))
	r.RunOnce()
	original := p.Posts()[0]

	r.Restart()
	r.Clock.Advance(42 * time.Minute)
	if got := r.Notify(haltstest.Resolved("pipeline/9")); got != halts.ResultResolved {
		t.Fatalf("resolved: %s", got)
	}
	r.RunOnce()
	r.RunOnce()

	if n := len(p.Posts()); n != 1 {
		t.Fatalf("%d posts, want the original only", n)
	}
	ups := p.Updates()
	if len(ups) != 1 || ups[0].TS != original.TS || ups[0].Channel != haltstest.Channel {
		t.Fatalf("updates %+v: want one edit of %s", ups, original.TS)
	}
	if !strings.Contains(ups[0].Title, "Resolved: ") || !strings.Contains(ups[0].Title, "halt ") || !strings.Contains(ups[0].Text, "Resolved after 42m") {
		t.Errorf("edit %+v: want a resolved header with the marker and the duration", ups[0])
	}
	replies := p.Replies()
	last := replies[len(replies)-1]
	if last.Thread != original.TS || !strings.Contains(last.Text, "cleared after 42m") {
		t.Errorf("last reply %+v: want the resolution in the thread", last)
	}
	// A late firing of the resolved pipeline halt is a duplicate.
	if got := r.Notify(haltstest.Firing("pipeline/9", "lon03")); got != halts.ResultIgnored {
		t.Errorf("late firing: %s, want ignored_cleared", got)
	}
	r.RunOnce()
	if n := len(p.Posts()); n != 1 {
		t.Errorf("%d posts after a late firing, want 1", n)
	}
}

func TestResolvedBeforePostStillPostsThenEdits(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Notify(haltstest.Firing("pipeline/1", "ams01"))
	r.Clock.Advance(time.Minute)
	r.Notify(haltstest.Resolved("pipeline/1"))
	r.RunOnce()
	if len(p.Posts()) != 1 || len(p.Updates()) != 1 {
		t.Fatalf("posts %d, updates %d: want the halt posted then edited", len(p.Posts()), len(p.Updates()))
	}
}

func TestKilledMidPostPostsExactlyOnce(t *testing.T) {
	tests := []struct {
		name string
		// finder: the poster can search the channel history.
		finder bool
		setup  func(p *haltstest.Poster)
		// wantBefore is the posts Slack has before the restart.
		wantBefore int
	}{
		{"post refused", false, func(p *haltstest.Poster) { p.FailPost = haltstest.ErrSlackDown }, 0},
		{"killed after the store write, before the post", false, func(p *haltstest.Poster) { p.KillBefore = true }, 0},
		{"killed after the post, before its ts was stored", true, func(p *haltstest.Poster) { p.KillAfter = true }, 1},
		{"post accepted but answered an error", true, func(p *haltstest.Poster) { p.AcceptThenFail = haltstest.ErrSlackDown }, 1},
		{"killed before the post, with a finder", true, func(p *haltstest.Poster) { p.KillBefore = true }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := haltstest.NewPoster()
			var poster halts.Poster = fp
			if tc.finder {
				poster = &haltstest.Finder{Poster: fp}
			}
			r := haltstest.NewRig(t, poster)
			tc.setup(fp)
			r.Notify(haltstest.Firing("pipeline/77", "ams01"))
			r.RunOnceMayDie()
			if got := len(fp.Posts()); got != tc.wantBefore {
				t.Fatalf("%d posts before the restart, want %d", got, tc.wantBefore)
			}
			if h := r.Halts()[0]; h.PostState == halts.PostPosted {
				t.Fatalf("halt marked posted though its ts was never returned: %+v", h)
			}

			r.Restart()
			r.Clock.Advance(time.Hour) // past any backoff
			r.RunOnce()
			r.RunOnce()
			posts := fp.Posts()
			if len(posts) != 1 {
				t.Fatalf("%d posts after the restart, want exactly 1", len(posts))
			}
			h := r.Halts()[0]
			if h.PostState != halts.PostPosted || h.TS != posts[0].TS {
				t.Errorf("halt %+v: want posted with ts %s", h, posts[0].TS)
			}

			// The resolution edits that one post.
			r.Notify(haltstest.Resolved("pipeline/77"))
			r.RunOnce()
			if ups := fp.Updates(); len(ups) != 1 || ups[0].TS != posts[0].TS {
				t.Errorf("updates %+v: want one edit of %s", ups, posts[0].TS)
			}
		})
	}
}

func TestFailingSearchStillPostsInTheEnd(t *testing.T) {
	fp := haltstest.NewPoster()
	f := &haltstest.Finder{Poster: fp, Err: haltstest.ErrSlackDown}
	r := haltstest.NewRig(t, f)
	fp.FailPost = haltstest.ErrSlackDown
	r.Notify(haltstest.Firing("pipeline/12", "ams01"))
	r.RunOnce() // the post fails: the halt is now mid-post
	// Three failed steps in a row (the post, two searches) and the halt
	// is posted without the search.
	for attempt := 1; attempt <= 2; attempt++ {
		r.Clock.Advance(time.Hour)
		r.RunOnce()
		want := 0
		if attempt == 2 {
			want = 1
		}
		if got := len(fp.Posts()); got != want {
			t.Fatalf("after %d failed searches: %d posts, want %d", attempt, got, want)
		}
	}
	r.RunOnce()
	if f.Searches() != 2 || len(fp.Posts()) != 1 {
		t.Errorf("%d searches and %d posts, want 2 and 1", f.Searches(), len(fp.Posts()))
	}
}

func TestThreadRefusedIsNotPostedAgain(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	p.ThreadFails = haltstest.ErrSlackDown
	r.Notify(haltstest.Firing("pipeline/13", "ams01"))
	r.RunOnce()
	r.Clock.Advance(time.Hour)
	r.RunOnce()
	if n := len(p.Posts()); n != 1 {
		t.Fatalf("%d posts, want 1: the summary was up", n)
	}
	if h := r.Halts()[0]; h.PostState != halts.PostPosted || h.TS != p.Posts()[0].TS {
		t.Errorf("halt %+v: want posted", h)
	}
}

func TestTriageErrorIsPosted(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	r.Triager.Err = &unknownScope{}
	r.Notify(haltstest.Firing("pipeline/5", "nowhere"))
	r.RunOnce()
	posts := p.Posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Text, "could not triage datacenter nowhere") {
		t.Fatalf("posts %+v: want the halt posted with why it could not be triaged", posts)
	}
	recs, err := r.Store.Triages(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Outcome != "error" || recs[0].Halt == "" {
		t.Errorf("triage records %+v: want one error record tied to the halt", recs)
	}
}

type unknownScope struct{}

func (unknownScope) Error() string { return `unknown datacenter "nowhere"` }

func TestRunWorksUntilCancelled(t *testing.T) {
	p := haltstest.NewPoster()
	r := haltstest.NewRig(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.Svc.Run(ctx)
	}()
	defer func() { cancel(); wg.Wait() }()

	r.Notify(haltstest.Firing("pipeline/3", "iad04"))
	waitFor(t, p.Notify, "post")
	r.Notify(haltstest.Resolved("pipeline/3"))
	waitFor(t, p.Notify, "update")
	cancel()
	wg.Wait()
	if len(p.Posts()) != 1 || len(p.Updates()) != 1 {
		t.Errorf("posts %d, updates %d; want 1 and 1", len(p.Posts()), len(p.Updates()))
	}
}

// waitFor waits, at most a bounded time, for the poster to report kind.
func waitFor(t *testing.T, ch <-chan string, kind string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == kind {
				return
			}
		case <-deadline:
			t.Fatalf("no %s within 20s", kind)
		}
	}
}
