package fakesalt

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// The demo masters' credentials: the demo is a lab, these are no secret.
const (
	DemoUsername = "sift"
	DemoPassword = "sift-demo"
	DemoEauth    = "sharedsecret"
)

// DemoVaultURL is the Vault server whose outage the demo stages.
const DemoVaultURL = "https://vault.example.com:8200"

// DemoDatacenter is one datacenter of the demo's inventory.
type DemoDatacenter struct {
	Name string
	// Master names the master (one of Fleet.Masters) that serves it.
	Master string
	// Target is the compound expression of its minions.
	Target string
}

// DemoInventory is the inventory the demo fleet implies, as plain data for
// `sift demo` to turn into its configuration.
type DemoInventory struct {
	Datacenters []DemoDatacenter
	// Groups name lists of datacenters.
	Groups map[string][]string
}

// Fleet is a set of fake masters and the inventory that describes them.
type Fleet struct {
	Masters   []*Master
	Inventory DemoInventory
}

// Master returns the fleet's master called name, nil if none.
func (f *Fleet) Master(name string) *Master {
	for _, m := range f.Masters {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// DemoFleet is the built-in incident of `sift demo`, 316 minions on two
// masters:
//
//   - group europe: ams01 and fra02 on salt-eu, lon03 on salt-us;
//     americas: iad04 on salt-us;
//   - John Doe's commit e4a91b2 broke /etc/nginx/nginx.conf (source file not
//     found) on most web minions of ams01 and fra02;
//   - the Vault server https://vault.example.com:8200 is down: the web
//     minions of lon03 fail to compile;
//   - a handful of minions never answer: most are disconnected from their
//     master (stopped, their host down), which says so at once; web-ams01-076
//     is connected but hung, and is waited for until Salt's timeout;
//   - the app minions fra02-029…040 lack the blame module, one lon03 minion
//     has no git history, iad04 is healthy.
//
// Minions answer an asynchronous job 0.2 to 1.5 s after it starts, so that
// progress shows. Each call returns a fresh fleet.
func DemoFleet() *Fleet {
	rng := rand.New(rand.NewPCG(2025, 1022))
	delay := func() time.Duration {
		return 200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))
	}
	eu := demoMaster("salt-eu")
	us := demoMaster("salt-us")

	add := func(m *Master, dc, role string, n int, answer func(i int) *Minion) {
		for i := 1; i <= n; i++ {
			mn := answer(i)
			mn.ID = fmt.Sprintf("%s-%s-%03d", role, dc, i)
			mn.Grains = map[string]string{"datacenter": dc, "role": role}
			if mn.Delay == 0 {
				mn.Delay = delay()
			}
			m.Minions = append(m.Minions, mn)
		}
	}
	healthy := func(int) *Minion { return &Minion{Answer: Healthy()} }
	disconnected := &Minion{Disconnected: true}

	ams01Job := Job{JID: "20251022100016123456", Time: time.Date(2025, 10, 22, 10, 0, 16, 0, time.UTC)}
	add(eu, "ams01", "web", 80, func(i int) *Minion {
		switch {
		case i <= 72:
			st := ExampleState
			st.RunNum = 5200 + rng.IntN(40)
			st.Duration = 300 + float64(rng.IntN(150000))/1000
			return &Minion{Answer: FailedState(Failure{States: []State{st}, FailedJob: ams01Job})}
		case i <= 75:
			u := *disconnected
			return &u
		case i == 76:
			return &Minion{Unreachable: true}
		}
		return &Minion{Answer: Healthy()}
	})
	add(eu, "ams01", "db", 16, healthy)
	add(eu, "ams01", "cache", 12, func(i int) *Minion {
		if i == 12 {
			return &Minion{Answer: NoJobs()}
		}
		return &Minion{Answer: Healthy()}
	})

	fra02Job := Job{JID: "20251022100241654321", Time: time.Date(2025, 10, 22, 10, 2, 41, 0, time.UTC)}
	nginxService := State{
		ID: "nginx", SLS: "webserver", Fun: "service.running",
		Comment: "One or more requisite failed: webserver./etc/nginx/nginx.conf",
	}
	add(eu, "fra02", "web", 64, func(i int) *Minion {
		switch {
		case i <= 58:
			st := ExampleState
			st.RunNum = 5200 + rng.IntN(40)
			st.Duration = 300 + float64(rng.IntN(150000))/1000
			svc := nginxService
			svc.RunNum = st.RunNum + 1
			return &Minion{Answer: FailedState(Failure{States: []State{st, svc}, FailedJob: fra02Job})}
		case i <= 60:
			u := *disconnected
			return &u
		}
		return &Minion{Answer: Healthy()}
	})
	add(eu, "fra02", "app", 40, func(i int) *Minion {
		if i >= 29 {
			return &Minion{Answer: ModuleMissing()}
		}
		return &Minion{Answer: Healthy()}
	})

	lon03Job := Job{JID: "20251022095530111111", Time: time.Date(2025, 10, 22, 9, 55, 30, 0, time.UTC)}
	add(us, "lon03", "web", 48, func(i int) *Minion {
		switch {
		case i <= 44:
			ce := VaultDown(DemoVaultURL)
			ce.Time = lon03Job.Time.Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
			return &Minion{Answer: CompileError(Failure{CompileErrors: []CompileErr{ce}, FailedJob: lon03Job})}
		case i <= 46:
			u := *disconnected
			return &u
		case i == 47:
			return &Minion{Answer: BlameFailed("no git history of the Salt codebase: set blame.git_dir to a checkout or a mirror")}
		}
		return &Minion{Answer: Healthy()}
	})
	add(us, "lon03", "db", 12, healthy)

	add(us, "iad04", "web", 44, func(i int) *Minion {
		if i > 40 {
			return &Minion{Answer: NoJobs()}
		}
		return &Minion{Answer: Healthy()}
	})

	return &Fleet{
		Masters: []*Master{eu, us},
		Inventory: DemoInventory{
			Datacenters: []DemoDatacenter{
				{Name: "ams01", Master: "salt-eu", Target: "G@datacenter:ams01"},
				{Name: "fra02", Master: "salt-eu", Target: "G@datacenter:fra02"},
				{Name: "lon03", Master: "salt-us", Target: "G@datacenter:lon03"},
				{Name: "iad04", Master: "salt-us", Target: "G@datacenter:iad04"},
			},
			Groups: map[string][]string{
				"europe":   {"ams01", "fra02", "lon03"},
				"americas": {"iad04"},
			},
		},
	}
}

func demoMaster(name string) *Master {
	return &Master{
		Name: name, Username: DemoUsername, Password: DemoPassword, Eauth: DemoEauth,
		// A synchronous call on a silent minion waits a fifth of Salt's
		// timeouts: long enough to be seen, short enough for a demo.
		TimeScale: 0.2,
	}
}
