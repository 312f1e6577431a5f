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
//   - the api minions of ams01 were rolled back from 9f8e7d6 to 1a2b3c4,
//     which lacks Carol Ops's commit adding the template their config
//     needs;
//   - on the pg minions of lon03 dpkg's lock is held: postgresql does not
//     install, and the service and the database that require it fail too
//     ("One or more requisite failed"), with no commit to blame;
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
	add(eu, "ams01", "api", 16, func(i int) *Minion {
		if i > 14 {
			return &Minion{Answer: Healthy()}
		}
		conf := demoAPIConfig
		conf.RunNum = 310 + rng.IntN(5)
		conf.Duration = 20 + float64(rng.IntN(30000))/1000
		svc := demoAPIService
		svc.RunNum = conf.RunNum + 2
		return &Minion{Answer: FailedState(Failure{
			States:         []State{conf, svc},
			Commits:        demoRolledBack,
			Window:         "rollback",
			FailedJob:      Job{JID: "20251022095812000042", Time: time.Date(2025, 10, 22, 9, 58, 12, 0, time.UTC), Commit: demoServedCommit, CodebaseVersion: "2025.10.21-4"},
			LastSuccessJob: Job{Commit: demoRollbackFrom, CodebaseVersion: "2025.10.22-3"},
		})}
	})
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
	pgJob := Job{JID: "20251022095102777777", Time: time.Date(2025, 10, 22, 9, 51, 2, 0, time.UTC),
		Commit: "77c0d1a4e5b6f7a8b9c0d1e2f3a4b5c6d7e8f9a0", CodebaseVersion: "2025.10.22-1"}
	add(us, "lon03", "pg", 10, func(i int) *Minion {
		if i == 10 {
			return &Minion{Answer: Healthy()}
		}
		pkg := demoPostgresPkg
		pkg.Comment = fmt.Sprintf(pkg.Comment, rng.Uint64(), 4000+rng.IntN(60000))
		pkg.RunNum, pkg.Duration = 120, 4000+float64(rng.IntN(9000))
		svc, db := demoPostgresService, demoAppDatabase
		svc.RunNum, db.RunNum = 121, 122
		return &Minion{Answer: FailedState(Failure{States: []State{pkg, svc, db}, Commits: []Commit{}, FailedJob: pgJob})}
	})

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

// The rollback of the demo: ams01's api minions were served 1a2b3c4 after
// succeeding on 9f8e7d6, and the rollback took out the commit that added
// the template of their config.
const (
	demoServedCommit = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	demoRollbackFrom = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c"
)

var (
	demoRolledBack = []Commit{
		{ID: "5c3e8a1f0b9d7c6e4a2f1b0c9d8e7f6a5b4c3d2e", AuthorName: "Carol Ops", AuthorEmail: "carol@example.com",
			Time: time.Date(2025, 10, 22, 8, 12, 40, 0, time.UTC), Path: "/srv/salt/app/files/config.yml.j2", Change: "removed"},
		{ID: "5c3e8a1f0b9d7c6e4a2f1b0c9d8e7f6a5b4c3d2e", AuthorName: "Carol Ops", AuthorEmail: "carol@example.com",
			Time: time.Date(2025, 10, 22, 8, 12, 40, 0, time.UTC), Path: "/srv/salt/app/init.sls", Change: "removed"},
	}
	demoAPIConfig = State{
		ID: "/etc/app/config.yml", SLS: "app", Fun: "file.managed",
		Comment: "Source file salt://app/files/config.yml.j2 not found in saltenv 'base'",
	}
	demoAPIService = State{
		ID: "app", SLS: "app", Fun: "service.running",
		Comment: "One or more requisite failed: app./etc/app/config.yml",
	}
	// demoPostgresPkg's comment is a format: each minion has its own
	// systemd scope and lock holder.
	demoPostgresPkg = State{
		ID: "postgres-pkg", Name: "postgresql", SLS: "postgres", Fun: "pkg.installed",
		Comment: "Problem encountered installing package(s). Additional info follows:\n\nerrors:\n" +
			"    - Running scope as unit: run-r%016x.scope\n" +
			"      E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process %d (unattended-upgr)\n" +
			"      E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?",
	}
	demoPostgresService = State{
		ID: "postgres-service", Name: "postgresql", SLS: "postgres", Fun: "service.running",
		Comment: "One or more requisite failed: postgres.postgres-pkg",
	}
	demoAppDatabase = State{
		ID: "app-db", Name: "createdb app", SLS: "postgres.app", Fun: "cmd.run",
		Comment: "One or more requisite failed: postgres.postgres-service",
	}
)

func demoMaster(name string) *Master {
	return &Master{
		Name: name, Username: DemoUsername, Password: DemoPassword, Eauth: DemoEauth,
		// A synchronous call on a silent minion waits a fifth of Salt's
		// timeouts: long enough to be seen, short enough for a demo.
		TimeScale: 0.2,
	}
}
