package formatters

import (
	"fmt"
	"time"

	"github.com/sift-chatops/sift/triage"
)

// started is the fixed start of every test report, so that goldens are
// stable.
var started = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// minionIDs returns n sorted minion ids of one datacenter.
func minionIDs(prefix, dc string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d.%s", prefix, i+1, dc)
	}
	return ids
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// mentions is the author directory the Slack goldens use.
var mentions = map[string]string{"john.doe@example.com": "U024BE7LH"}

// goldenCase is one report rendered to text, JSON and Slack goldens.
type goldenCase struct {
	name string
	r    *triage.Report
	o    SlackOptions
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"commit-two-dcs", commitReport(), SlackOptions{RequestedBy: "U07SRE0001", AuthorMentions: mentions}},
		{"release", releaseReport(), SlackOptions{RequestedBy: "U07SRE0001"}},
		{"external-service-vault", vaultReport(), SlackOptions{Title: "Pipeline halt: salt-failures-dc"}},
		{"failed-state", failedStateReport(), SlackOptions{RequestedBy: "U07SRE0001"}},
		{"all-healthy", healthyReport(), SlackOptions{RequestedBy: "U07SRE0001"}},
		{"unreachable-dominated", unreachableReport(), SlackOptions{}},
		{"group-partial", partialGroupReport(), SlackOptions{RequestedBy: "U07SRE0001", AuthorMentions: mentions}},
		{"minion", minionReport(), SlackOptions{RequestedBy: "U07SRE0001"}},
	}
}

func commitReport() *triage.Report {
	ams := minionIDs("web", "ams01", 170)
	fra := minionIDs("web", "fra02", 117)
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeGroup, Name: "eu-web"},
		Headline:  "commit e4a91b2 by John Doe explains 287 of 300 failing minions in 2 datacenters",
		StartedAt: started,
		Duration:  41234 * time.Millisecond,
		Counts:    triage.Counts{Expected: 1200, Answered: 1197, Healthy: 897, Failing: 300, Unreachable: 3},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseCommit,
				Key:         "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
				Summary:     "Commit e4a91b2 by John Doe changed nginx/files/nginx.conf.j2 & nginx/init.sls",
				Minions:     287,
				MinionIDs:   concat(ams, fra),
				Datacenters: []string{"ams01", "fra02"},
				Evidence: triage.Evidence{
					CommitID:       "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
					AuthorName:     "John Doe",
					AuthorEmail:    "john.doe@example.com",
					CommitDatetime: "2025-03-14T09:02:11+01:00",
					Paths:          []string{"nginx/files/nginx.conf.j2", "nginx/init.sls"},
					CommitURL:      "https://git.example.com/salt/states/commit/e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
					Messages:       []string{"Rendering SLS 'base:nginx' failed: Jinja variable 'dict object' has no attribute 'worker_procs'"},
					FailedStates:   []triage.Signature{{Fun: "file.managed", StateID: "nginx-conf", SLS: "webserver", Template: "Source file <path> not found"}},
					Examples: []triage.Example{{
						Text:   "Unable to manage file: Jinja variable 'dict object' has no attribute 'worker_procs'",
						Minion: "web-0001.ams01", Count: 287,
					}},
					LastSuccess:  "2025-03-14T08:55:00Z",
					FirstFailure: "2025-03-14T09:10:42Z",
				},
			},
			{
				Kind:        triage.CauseFailedState,
				Key:         "pkg_|-ntp_|-ntp_|-installed",
				Summary:     "pkg.installed ntp failed on 10 minions",
				Minions:     10,
				MinionIDs:   minionIDs("db", "ams01", 10),
				Datacenters: []string{"ams01"},
				Evidence: triage.Evidence{
					Fun: "pkg.installed", StateID: "ntp", SLS: "ntp",
					Comment: "E: Unable to locate package ntp",
				},
			},
			{
				Kind:        triage.CauseUnreachable,
				Key:         "unreachable",
				Summary:     "3 minions did not answer",
				Minions:     3,
				MinionIDs:   []string{"cache-0001.fra02", "cache-0002.fra02", "web-0900.ams01"},
				Datacenters: []string{"ams01", "fra02"},
				Evidence:    triage.Evidence{Messages: []string{"minion did not return in 60s"}},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 700, Answered: 699, Healthy: 519, Failing: 180, Unreachable: 1}, Duration: 38912 * time.Millisecond},
			{Name: "fra02", Master: "salt-eu", Counts: triage.Counts{Expected: 500, Answered: 498, Healthy: 378, Failing: 120, Unreachable: 2}, Duration: 41002 * time.Millisecond},
		},
	}
}

func releaseReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"},
		Headline:  "release 2025.03.14-2 explains 412 of 415 failing minions in ams01",
		StartedAt: started,
		Duration:  12800 * time.Millisecond,
		Counts:    triage.Counts{Expected: 700, Answered: 700, Healthy: 285, Failing: 415},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseRelease,
				Key:         "2025.03.14-2",
				Summary:     "Release 2025.03.14-2 (was 2025.03.13-1) broke 412 minions",
				Minions:     412,
				MinionIDs:   minionIDs("app", "ams01", 412),
				Datacenters: []string{"ams01"},
				Evidence: triage.Evidence{
					Version: "2025.03.14-2", PreviousVersion: "2025.03.13-1",
					FailedStates: []triage.Signature{{Fun: "cmd.run", StateID: "migrate", SLS: "app", Template: "Command \"/opt/app/bin/migrate\" run"}, {Fun: "service.running", StateID: "app", SLS: "app", Template: "Service app failed to start"}},
					Messages:     []string{"Command \"/opt/app/bin/migrate\" run: exit status 3"},
				},
			},
			{
				Kind:        triage.CauseFailedState,
				Key:         "file_|-motd_|-/etc/motd_|-managed",
				Summary:     "file.managed /etc/motd failed on 3 minions",
				Minions:     3,
				MinionIDs:   minionIDs("bastion", "ams01", 3),
				Datacenters: []string{"ams01"},
				Evidence:    triage.Evidence{Fun: "file.managed", StateID: "/etc/motd", SLS: "base.motd", Comment: "Source file salt://motd/motd.j2 not found in saltenv 'base'"},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 700, Answered: 700, Healthy: 285, Failing: 415}, Duration: 12650 * time.Millisecond},
		},
	}
}

func vaultReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "par02"},
		Headline:  "external service https://vault.internal.example:8200 explains 96 of 96 failing minions in par02",
		StartedAt: started,
		Duration:  9400 * time.Millisecond,
		Counts:    triage.Counts{Expected: 400, Answered: 400, Healthy: 304, Failing: 96},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseExternalService,
				Key:         "https://vault.internal.example:8200",
				Summary:     "Vault at https://vault.internal.example:8200 refused 96 minions",
				Minions:     96,
				MinionIDs:   minionIDs("api", "par02", 96),
				Datacenters: []string{"par02"},
				Evidence: triage.Evidence{
					ServiceURL: "https://vault.internal.example:8200",
					Probe:      "Vault at https://vault.internal.example:8200 answers 503: sealed (probed from Sift's host)",
					Messages: []string{
						"Error making API request. URL: GET https://vault.internal.example:8200/v1/secret/data/app Code: 503. Errors: * Vault is sealed",
						"vault.read_secret: <urlopen error [Errno 111] Connection refused>",
					},
					Examples: []triage.Example{
						{Text: "Error making API request.\n\nURL: GET https://vault.internal.example:8200/v1/secret/data/par02/api-0007.par02/tls\nCode: 503. Errors:\n\n* Vault is sealed", Minion: "api-0007.par02", Count: 90},
						{Text: "vault.read_secret: <urlopen error [Errno 111] Connection refused> (host='10.20.0.7', port=8200)", Minion: "api-0031.par02", Count: 6},
					},
					FailedStates: []triage.Signature{{Fun: "file.managed", StateID: "app-secrets", SLS: "app", Template: "Unable to manage file: <path>"}},
					FirstFailure: "2025-03-14T09:12:03Z",
				},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "par02", Master: "salt-fr", Counts: triage.Counts{Expected: 400, Answered: 400, Healthy: 304, Failing: 96}, Duration: 9300 * time.Millisecond},
		},
	}
}

func failedStateReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "lon03"},
		Headline:  "state pkg.installed nginx explains 40 of 52 failing minions in lon03",
		StartedAt: started,
		Duration:  15 * time.Second,
		Counts:    triage.Counts{Expected: 300, Answered: 300, Healthy: 248, Failing: 52},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseFailedState,
				Key:         "pkg_|-nginx_|-nginx_|-installed",
				Summary:     "pkg.installed nginx failed on 40 minions",
				Minions:     40,
				MinionIDs:   minionIDs("edge", "lon03", 40),
				Datacenters: []string{"lon03"},
				Evidence: triage.Evidence{
					Fun: "pkg.installed", StateID: "nginx", SLS: "nginx.install",
					Comment:  "Problem encountered installing package(s). Additional info follows:\n\nerrors:\n    - Running scope as unit: run-r1.scope\n      E: Version '1.24.0-1~jammy' for 'nginx' was not found & <no candidate>",
					Messages: []string{"Problem encountered installing package(s)."},
				},
			},
			{
				Kind:        triage.CauseFailedState,
				Key:         "compile:nginx.config",
				Summary:     "nginx.config did not compile on 12 minions",
				Minions:     12,
				MinionIDs:   minionIDs("edge", "lon03", 12),
				Datacenters: []string{"lon03"},
				Evidence: triage.Evidence{
					CompileState: "nginx.config",
					Messages:     []string{"Rendering SLS 'base:nginx.config' failed: mapping values are not allowed here; line 4\n\n---\nnginx:\n  conf: {{ pillar['nginx'] }}: x    <======================"},
					Examples: []triage.Example{{
						Text:   "Rendering SLS 'base:nginx.config' failed: mapping values are not allowed here; line 4\n\n---\nnginx:\n  conf: {{ pillar['nginx'] }}: x    <======================",
						Minion: "edge-0003.lon03", Count: 12,
					}},
				},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "lon03", Master: "salt-uk", Counts: triage.Counts{Expected: 300, Answered: 300, Healthy: 248, Failing: 52}, Duration: 14900 * time.Millisecond},
		},
	}
}

func healthyReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"},
		Headline:  "all 700 minions in ams01 are healthy",
		StartedAt: started,
		Duration:  8 * time.Second,
		Counts:    triage.Counts{Expected: 700, Answered: 700, Healthy: 690, NoJobs: 10},
		Datacenters: []triage.DatacenterResult{
			{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 700, Answered: 700, Healthy: 690, NoJobs: 10}, Duration: 7900 * time.Millisecond},
		},
	}
}

func unreachableReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeDatacenter, Name: "sin01"},
		Headline:  "812 of 900 minions in sin01 did not answer; 5 failing minions are explained by commit 0badc0d",
		StartedAt: started,
		Duration:  61 * time.Second,
		Counts:    triage.Counts{Expected: 900, Answered: 88, Healthy: 60, Failing: 5, Unreachable: 812, ModuleMissing: 23},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseUnreachable,
				Key:         "unreachable",
				Summary:     "812 minions did not answer within 60s",
				Minions:     812,
				MinionIDs:   minionIDs("node", "sin01", 812),
				Datacenters: []string{"sin01"},
				Evidence:    triage.Evidence{Messages: []string{"minion did not return in 60s"}},
			},
			{
				Kind:        triage.CauseModuleMissing,
				Key:         "module_missing",
				Summary:     "23 minions do not have the blame module",
				Minions:     23,
				MinionIDs:   minionIDs("legacy", "sin01", 23),
				Datacenters: []string{"sin01"},
				Evidence:    triage.Evidence{Messages: []string{"'blame.last_failure' is not available."}},
			},
			{
				Kind:        triage.CauseCommit,
				Key:         "0badc0de11223344556677889900aabbccddeeff",
				Summary:     "Commit 0badc0d by Jane Roe changed users/init.sls",
				Minions:     5,
				MinionIDs:   minionIDs("node", "sin01", 5),
				Datacenters: []string{"sin01"},
				Evidence: triage.Evidence{
					CommitID: "0badc0de11223344556677889900aabbccddeeff", AuthorName: "Jane Roe", AuthorEmail: "jane.roe@example.com",
					CommitDatetime: "2025-03-14T08:40:00Z", Paths: []string{"users/init.sls"},
				},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "sin01", Master: "salt-ap", Counts: triage.Counts{Expected: 900, Answered: 88, Healthy: 60, Failing: 5, Unreachable: 812, ModuleMissing: 23}, Duration: 60 * time.Second},
		},
	}
}

func partialGroupReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeGroup, Name: "eu"},
		Headline:  "commit e4a91b2 by John Doe explains 120 of 120 failing minions in 1 datacenter (1 of 3 datacenters did not answer)",
		StartedAt: started,
		Duration:  60500 * time.Millisecond,
		Counts:    triage.Counts{Expected: 900, Answered: 900, Healthy: 780, Failing: 120},
		Causes: []triage.Cause{
			{
				Kind:        triage.CauseCommit,
				Key:         "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a",
				Summary:     "Commit e4a91b2 by John Doe changed nginx/init.sls",
				Minions:     120,
				MinionIDs:   minionIDs("web", "fra02", 120),
				Datacenters: []string{"fra02"},
				Evidence: triage.Evidence{
					CommitID: "e4a91b2c7d0f5e8a9b1c2d3e4f5a6b7c8d9e0f1a", AuthorName: "John Doe", AuthorEmail: "John.Doe@example.com",
					CommitDatetime: "2025-03-14T09:02:11+01:00", Paths: []string{"nginx/init.sls"},
				},
			},
		},
		Datacenters: []triage.DatacenterResult{
			{Name: "ams01", Master: "salt-eu", Counts: triage.Counts{Expected: 400, Answered: 400, Healthy: 400}, Duration: 20 * time.Second},
			{Name: "fra02", Master: "salt-eu", Counts: triage.Counts{Expected: 500, Answered: 500, Healthy: 380, Failing: 120}, Duration: 31 * time.Second},
			{Name: "par02", Master: "salt-fr", Duration: 60 * time.Second, Error: "salt-api login: Post \"https://salt-fr.example:8000/login\": context deadline exceeded"},
		},
	}
}

func minionReport() *triage.Report {
	return &triage.Report{
		Scope:     triage.Scope{Kind: triage.ScopeMinion, Name: "web-0042.ams01"},
		Headline:  "state file.managed /etc/nginx/nginx.conf failed on web-0042.ams01",
		StartedAt: started,
		Duration:  850 * time.Millisecond,
		Counts:    triage.Counts{Expected: 1, Answered: 1, Failing: 1},
		Causes: []triage.Cause{
			{
				Kind:      triage.CauseFailedState,
				Key:       "file_|-nginx-conf_|-/etc/nginx/nginx.conf_|-managed",
				Summary:   "file.managed /etc/nginx/nginx.conf failed",
				Minions:   1,
				MinionIDs: []string{"web-0042.ams01"},
				Evidence: triage.Evidence{
					Fun: "file.managed", StateID: "/etc/nginx/nginx.conf", SLS: "nginx",
					Comment:     "Unable to manage file: Jinja variable 'dict object' has no attribute 'worker_procs'",
					LastSuccess: "2025-03-14T08:55:00Z", FirstFailure: "2025-03-14T09:10:42Z",
				},
			},
		},
	}
}
