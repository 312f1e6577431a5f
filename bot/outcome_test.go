package bot_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/triage"
)

// blamerFunc is a Blamer scripted by the test.
type blamerFunc func(ctx context.Context, t triage.Target, sink triage.Sink) error

func (f blamerFunc) Blame(ctx context.Context, t triage.Target, sink triage.Sink) error {
	return f(ctx, t, sink)
}

// healthyAnswer is a real blame answer of a healthy minion.
func healthyAnswer(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("../testdata/blame-answers/healthy.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realTriagers runs the real triage over smallInventory with one Blamer.
func realTriagers(b triage.Blamer) bot.TriagerFactory {
	return func(progress func(triage.Progress)) bot.Triager {
		return triage.New(smallInventory, map[string]triage.Blamer{"salt-eu": b}, triage.Options{Progress: progress})
	}
}

func TestAuditAndSummarySayWhatCouldNotBeReached(t *testing.T) {
	healthy := healthyAnswer(t)
	// fra02's master is down; ams01's answers.
	blamer := blamerFunc(func(_ context.Context, tg triage.Target, sink triage.Sink) error {
		if tg.Datacenter == "fra02" {
			return errors.New("salt-api salt-eu: connection refused")
		}
		sink.Expected([]string{"web-1"})
		sink.Answer(triage.MinionAnswer{ID: "web-1", Raw: healthy})
		return nil
	})
	tests := []struct {
		name, cmd, text string
		outcome, triage string
		reason          string
	}{
		{"complete", "/blame-dc", "ams01", bot.OutcomeOK, "complete", ""},
		{"no master answered", "/blame-dc", "fra02", bot.OutcomeFailed, "failed", "no master answered: fra02 (salt-eu: connection refused)"},
		{"some datacenters failed", "/blame-group", "europe", bot.OutcomePartial, "partial",
			"no failing highstates: 1 minion checked, all healthy; partial: 1 of 2 datacenters answered; fra02 failed: salt-eu connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, setup{inv: &smallInventory, triagers: realTriagers(blamer)})
			h.slash(alice, incident, tc.cmd, tc.text)
			r := h.waitAudit(1)[0]
			if r.Outcome != tc.outcome || r.Triage != tc.triage || r.Reason != tc.reason {
				t.Errorf("audit outcome %q, triage %q, reason %q\nwant          %q, %q, %q", r.Outcome, r.Triage, r.Reason, tc.outcome, tc.triage, tc.reason)
			}
			if tc.reason == "" {
				return
			}
			summary, _ := h.slack.Message(incident, r.MessageTS)
			for _, where := range []string{summary.Text, blockText(summary.Blocks)} {
				if !strings.Contains(where, tc.reason) {
					t.Errorf("summary does not say %q:\n%s", tc.reason, where)
				}
			}
		})
	}
}

// manualClock is a clock the test moves, with tickers it fires by hand.
// Waits return at once.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers chan *manualTicker
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2025, 10, 22, 10, 0, 0, 0, time.UTC), tickers: make(chan *manualTicker, 16)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

func (c *manualClock) NewTicker(d time.Duration) bot.Ticker {
	t := &manualTicker{c: make(chan time.Time, 1), every: d}
	c.tickers <- t
	return t
}

type manualTicker struct {
	c     chan time.Time
	every time.Duration
}

func (t *manualTicker) C() <-chan time.Time { return t.c }
func (t *manualTicker) Stop()               {}

func TestSummaryIsRefreshedWhileNothingComes(t *testing.T) {
	clk := newManualClock()
	release := make(chan struct{})
	h := start(t, setup{
		inv:  &smallInventory,
		deps: func(d *bot.Deps) { d.Clock = clk },
		triagers: triagerFunc(func(ctx context.Context, s triage.Scope, progress func(triage.Progress)) (*triage.Report, error) {
			// ams01 is done; fra02's master hangs and sends nothing more.
			progress(triage.Progress{
				Kind: triage.ProgressDatacenterFinished, Scope: s, Datacenter: "ams01", Master: "salt-eu",
				DatacentersDone: 1, DatacentersTotal: 2, Elapsed: 3 * time.Second, Running: []string{"fra02"},
				Pending: []triage.PendingDatacenter{{Name: "fra02", Master: "salt-eu", Waiting: 3 * time.Second}},
			})
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return cannedReport(s), nil
		}).factory(),
	})
	h.slash(alice, incident, "/blame-group", "europe")
	var ticker *manualTicker
	select {
	case ticker = <-clk.tickers:
	case <-h.ctx.Done():
		t.Fatal("the summary is not kept up to date")
	}
	if ticker.every != 30*time.Millisecond {
		t.Errorf("refreshed every %s, want the progress interval", ticker.every)
	}
	h.waitUpdate("Waiting for fra02 (salt-eu) for 3 s")
	for _, want := range []string{"Waiting for fra02 (salt-eu) for 15 s", "Waiting for fra02 (salt-eu) for 27 s"} {
		clk.Advance(12 * time.Second)
		ticker.c <- clk.Now()
		h.waitUpdate(want)
	}
	close(release)
	if r := h.waitAudit(1)[0]; r.Outcome != bot.OutcomeOK {
		t.Errorf("audit = %+v", r)
	}
}

// waitUpdate waits for a chat.update that shows want.
func (h *harness) waitUpdate(want string) {
	h.t.Helper()
	err := h.slack.Wait(h.ctx, func() bool {
		for _, u := range h.slack.CallsTo("chat.update") {
			if strings.Contains(blockText(json.RawMessage(u.Form.Get("blocks"))), want) {
				return true
			}
		}
		return false
	})
	if err != nil {
		h.t.Fatalf("no update says %q; updates:\n%s", want, bodyOf(h.slack.CallsTo("chat.update")))
	}
}

func TestPanicInACommandIsContained(t *testing.T) {
	tests := []struct {
		name  string
		blame blamerFunc
		// panics makes the Triager itself panic, in the command's goroutine.
		panics bool
	}{
		{name: "in the command", panics: true},
		{name: "in a goroutine of the triage", blame: func(context.Context, triage.Target, triage.Sink) error {
			var counts map[string]int
			counts["web-1"]++
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls sync.Mutex
			n := 0
			factory := func(progress func(triage.Progress)) bot.Triager {
				calls.Lock()
				defer calls.Unlock()
				n++
				if n > 1 {
					return triagerFunc(func(_ context.Context, s triage.Scope, _ func(triage.Progress)) (*triage.Report, error) {
						return cannedReport(s), nil
					}).factory()(progress)
				}
				if tc.panics {
					return triagerFunc(func(context.Context, triage.Scope, func(triage.Progress)) (*triage.Report, error) {
						panic("a bug in the triage")
					}).factory()(progress)
				}
				return realTriagers(tc.blame)(progress)
			}
			var observed sync.Mutex
			var errs []error
			h := start(t, setup{inv: &smallInventory, triagers: factory, deps: func(d *bot.Deps) {
				d.OnTriage = func(_ triage.Scope, _ *triage.Report, err error, _ time.Duration) {
					observed.Lock()
					errs = append(errs, err)
					observed.Unlock()
				}
			}})
			h.slash(alice, incident, "/blame-dc", "ams01")
			r := h.waitAudit(1)[0]
			observed.Lock()
			if len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), r.ID) {
				t.Errorf("triages observed for the metrics: %v, want the one that failed", errs)
			}
			observed.Unlock()
			if r.Outcome != bot.OutcomeFailed || !strings.Contains(r.Reason, "internal error") {
				t.Errorf("audit = %+v", r)
			}
			say := "Sift hit an internal error; the log has id " + r.ID
			if th := h.slack.Thread(incident, r.MessageTS); len(th) != 1 || !strings.Contains(th[0].Text, say) {
				t.Errorf("thread:\n%s", texts(th))
			}
			if m, _ := h.slack.Message(incident, r.MessageTS); !strings.Contains(m.Text, say) {
				t.Errorf("summary = %q", m.Text)
			}
			logged := false
			sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var line map[string]any
				if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "command panicked" {
					continue
				}
				stack, _ := line["stack"].(string)
				logged = line["id"] == r.ID && strings.Contains(stack, "TestPanicInACommandIsContained") && line["panic"] != ""
			}
			if !logged {
				t.Errorf("no log line with the id and the stack of the panic:\n%s", h.logs)
			}

			// Sift goes on.
			h.slash(alice, incident, "/blame-dc", "ams01")
			if r := h.waitAudit(2)[1]; r.Outcome != bot.OutcomeOK {
				t.Errorf("next command: audit = %+v", r)
			}
		})
	}
}
