// Package fleetgen writes large, realistic blame outputs, the way
// `salt -C … blame.… --out json --static` prints them on a master, for
// benchmarks of triage over saved evidence.
package fleetgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sift-chatops/sift/fakesalt"
)

// answers are the kinds of minion answer in a generated fleet, in the
// proportions of a bad incident: most minions fail on a commit.
func answers() []json.RawMessage {
	states := []fakesalt.State{
		fakesalt.ExampleState,
		{ID: "nginx-service", SLS: "webserver", Fun: "service.running", Name: "nginx",
			Comment: "One or more requisite failed: webserver./etc/nginx/nginx.conf", RunNum: 5222},
		{ID: "nginx-reload", SLS: "webserver", Fun: "cmd.run", Name: "systemctl reload nginx",
			Comment: "One or more requisite failed: webserver.nginx-service", RunNum: 5223},
		{ID: "/etc/logrotate.d/nginx", SLS: "webserver.logrotate", Fun: "file.managed",
			Comment: "One or more requisite failed: webserver./etc/nginx/nginx.conf", RunNum: 5224},
	}
	second := fakesalt.ExampleCommit
	second.Path = "/srv/salt/webserver/files/nginx.conf"
	vault := fakesalt.VaultDown("https://vault.example.com:8200")
	vault.Traceback = strings.Repeat("  File \"/usr/lib/python3/dist-packages/salt/renderers/jinja.py\", line 42, in render\n", 12) +
		"salt.exceptions.SaltRenderError: Vault request failed: connection refused"
	return []json.RawMessage{
		fakesalt.FailedState(fakesalt.Failure{States: states, Commits: []fakesalt.Commit{fakesalt.ExampleCommit, second}}),
		fakesalt.CompileError(fakesalt.Failure{CompileErrors: []fakesalt.CompileErr{vault, vault}}),
		fakesalt.Release("2025.10.22-1", "2025.10.22-3"),
		fakesalt.Healthy(),
		json.RawMessage("false"),
		fakesalt.ModuleMissing(),
	}
}

// mix is, per 100 minions, how many get each answer of answers().
var mix = []int{72, 10, 5, 8, 3, 2}

// Write writes the blame output of n minions spread over datacenters dcs
// as one JSON object, like salt's --static output.
func Write(w io.Writer, n, dcs int) error {
	kinds := answers()
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("{")
	for i := range n {
		k, r := 0, i%100
		for acc := mix[0]; r >= acc; acc += mix[k] {
			k++
		}
		if i > 0 {
			bw.WriteString(",")
		}
		fmt.Fprintf(bw, "\n    \"web-dc%02d-%06d\": ", i%dcs, i)
		bw.Write(kinds[k])
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}
