package saltapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/triage"
)

// benchFleet is one datacenter of n minions: a tenth not connected, the
// others answering between 0.2 and 2 s after the job starts, with the
// answers of an incident (failed states whose comments vary per minion,
// compile errors with long tracebacks, missing modules, healthy minions,
// an error or two from inside the module).
func benchFleet(n int) (*fakesalt.Master, time.Duration) {
	rng := rand.New(rand.NewPCG(5000, 2026))
	m := &fakesalt.Master{Name: "salt-eu", Username: "sift", Password: password, Eauth: "sharedsecret",
		// A real master starts a runner process for each presence call.
		RunnerDelay: 800 * time.Millisecond}
	var slowest time.Duration
	for i := range n {
		mn := &fakesalt.Minion{ID: fmt.Sprintf("web-ams01-%04d", i+1), Grains: map[string]string{"datacenter": "ams01"}}
		switch r := rng.IntN(100); {
		case i%10 == 9:
			mn.Disconnected = true
		case r < 55:
			st := fakesalt.ExampleState
			st.ID = fmt.Sprintf("/etc/nginx/sites-enabled/site-%d.conf", rng.IntN(40))
			st.Comment = fmt.Sprintf("Source file salt://webserver/files/site-%d.conf not found in saltenv 'base' on %s (attempt %d, %s)",
				rng.IntN(40), mn.ID, rng.IntN(5), strings.Repeat("ab", rng.IntN(200)))
			st.RunNum, st.Duration = 5000+rng.IntN(400), float64(rng.IntN(900000))/1000
			mn.Answer = fakesalt.FailedState(fakesalt.Failure{States: []fakesalt.State{st, fakesalt.ExampleState}})
		case r < 70:
			ce := fakesalt.VaultDown("https://vault-" + fmt.Sprint(rng.IntN(3)) + ".example.com:8200")
			ce.Traceback += strings.Repeat("  File \"salt/loader/lazy.py\", line 1239, in _run_as\n    return _func_or_method(*args, **kwargs)\n", 1+rng.IntN(30))
			mn.Answer = fakesalt.CompileError(fakesalt.Failure{CompileErrors: []fakesalt.CompileErr{ce}})
		case r < 80:
			mn.Answer = fakesalt.ModuleMissing()
		case r < 98:
			mn.Answer = fakesalt.Healthy()
		default:
			mn.Answer = fakesalt.BlameFailed("cache unreadable: \u00e9\u00e8 " + strings.Repeat("\x01?", rng.IntN(50)))
		}
		if !mn.Disconnected {
			mn.Delay = 200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
			slowest = max(slowest, mn.Delay)
		}
		m.Minions = append(m.Minions, mn)
	}
	return m, slowest
}

// BenchmarkTriageWithDisconnectedMinions triages one datacenter of 5 000
// minions, 500 of them not connected, with Salt's timeout at 30 s. The
// figure is the wall time over the slowest live minion's answer: 1 would
// be a triage that ends the moment the last live minion answered; without
// presence, it is the timeout (about 20).
func BenchmarkTriageWithDisconnectedMinions(b *testing.B) {
	m, slowest := benchFleet(5000)
	srv := fakesalt.NewServer(m)
	defer srv.Close()
	client, err := New(Config{Name: m.Name, URL: srv.URL(), Eauth: m.Eauth, Username: m.Username, Password: m.Password,
		Timeout: 30 * time.Second, GatherJobTimeout: 10 * time.Second, PollInterval: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	inv := triage.Inventory{Datacenters: []triage.Datacenter{{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01"}}}
	tr := triage.New(inv, map[string]triage.Blamer{"salt-eu": client}, triage.Options{})
	// The fake master encodes each minion's answer on the first job; that
	// is no cost of a real master, nor of Sift.
	if _, err := tr.Triage(context.Background(), triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		polls := srv.Polls()
		start := time.Now()
		rep, err := tr.Triage(context.Background(), triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"})
		took := time.Since(start)
		total += took
		if err != nil || rep.Counts.Answered != 4500 || rep.Counts.Unreachable != 500 {
			b.Fatalf("err %v, counts %+v", err, rep.Counts)
		}
		b.ReportMetric(float64(srv.Polls()-polls), "polls/op")
	}
	b.ReportMetric(total.Seconds()/float64(b.N)/slowest.Seconds(), "wall/slowest-answer")
	b.ReportMetric(slowest.Seconds(), "slowest-answer-s")
}
