package fakesalt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/triage"
)

// TestFaultsLoseNoAnswer triages a datacenter through salt-api answers that
// break in each of the ways a real one does: every answer the fake master
// holds ends up in the report.
func TestFaultsLoseNoAnswer(t *testing.T) {
	faults := []struct {
		name  string
		fault fakesalt.Fault
	}{
		{"truncated body", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultTruncate}},
		{"malformed JSON", fakesalt.Fault{Path: "/jobs/", Status: 200, Body: `{"info": [{"jid": "2026", "Result": {"web-ams01-001": {"return": {"blame.last_f`}},
		{"HTML 5xx", fakesalt.Fault{Path: "/jobs/", Status: 502, Body: "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"}},
		{"reset connection", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultReset}},
		{"slow answer past the client timeout", fakesalt.Fault{Path: "/jobs/", Kind: fakesalt.FaultStall}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			m := &fakesalt.Master{Name: "salt-eu", Username: "sift", Password: "lab-secret", Eauth: "sharedsecret"}
			const live, down = 40, 3
			for i := range live {
				m.Minions = append(m.Minions, &fakesalt.Minion{
					ID: fmt.Sprintf("web-ams01-%03d", i+1), Grains: map[string]string{"datacenter": "ams01"},
					Answer: fakesalt.FailedState(fakesalt.Failure{}), Delay: time.Duration(i) * 5 * time.Millisecond,
				})
			}
			for i := range down {
				m.Minions = append(m.Minions, &fakesalt.Minion{ID: fmt.Sprintf("db-ams01-%03d", i+1), Grains: map[string]string{"datacenter": "ams01"}, Disconnected: true})
			}
			srv := fakesalt.NewServer(m)
			defer srv.Close()
			clock := fakesalt.NewClock(time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC))
			srv.UseClock(clock.Now)
			// Polls fail in a row while the minions answer.
			for range 4 {
				srv.Inject(f.fault)
			}
			client, err := saltapi.New(saltapi.Config{
				Name: m.Name, URL: srv.URL(), Eauth: m.Eauth, Username: m.Username, Password: m.Password,
				Timeout: 30 * time.Second, GatherJobTimeout: 10 * time.Second,
				PollInterval: 50 * time.Millisecond, PollTimeout: 100 * time.Millisecond, Clock: clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			inv := triage.Inventory{Datacenters: []triage.Datacenter{{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01"}}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := triage.New(inv, map[string]triage.Blamer{"salt-eu": client}, triage.Options{}).
				Triage(ctx, triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Counts.Expected != live+down || rep.Counts.Answered != live || rep.Counts.Failing != live || rep.Counts.Unreachable != down {
				t.Errorf("counts %+v, want all %d live minions answered and %d unreachable", rep.Counts, live, down)
			}
			for _, dc := range rep.Datacenters {
				if dc.Error != "" {
					t.Errorf("%s: %s", dc.Name, dc.Error)
				}
			}
			if srv.Polls() < 5 {
				t.Errorf("%d polls: the faults were not all met", srv.Polls())
			}
		})
	}
}
