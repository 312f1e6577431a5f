package fleetgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sift-chatops/sift/fakesalt"
)

// incidentStart is when the generated failures happened.
var incidentStart = time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)

// Answer builds the answer of one minion that fails on the given corpus
// failures, with the slots filled for that minion. Failed states carry
// commits when commits is not empty; compile errors carry a traceback of
// 1.6 to 1.8 KB, as Salt's renderers return them.
func Answer(fails []Failure, v Values, commits []fakesalt.Commit) json.RawMessage {
	f := fakesalt.Failure{Commits: commits}
	if f.Commits == nil {
		f.Commits = []fakesalt.Commit{}
	}
	// The same codebase version on both jobs: no release explains these.
	f.FailedJob = fakesalt.Job{CodebaseVersion: "2026.11.30-1", JID: v.Now.Format("20060102150405") + fmt.Sprintf("%06d", v.Rand.IntN(1e6)), Time: v.Now}
	f.LastSuccessJob = fakesalt.Job{CodebaseVersion: "2026.11.30-1"}
	compile := false
	for i, x := range fails {
		text := Fill(x.Text, v)
		if x.Compile {
			compile = true
			urls := make([]string, len(x.URLs))
			for k, u := range x.URLs {
				urls[k] = Fill(u, v)
			}
			tb := traceback(v, x.Name, text)
			msg := text
			if len(x.ErrorTypes) > 0 && x.ErrorTypes[0] == "render" {
				// Salt's renderers put the traceback in the message too.
				msg = text + "\n" + tb
			}
			f.CompileErrors = append(f.CompileErrors, fakesalt.CompileErr{
				Types: x.ErrorTypes, Message: msg, State: x.StateID, Traceback: tb, URLs: urls, Time: v.Now,
			})
			continue
		}
		f.States = append(f.States, fakesalt.State{
			ID: x.StateID, SLS: x.SLS, Fun: x.Fun, Comment: text,
			RunNum: 100 + i, Duration: float64(v.Rand.IntN(90000)) / 10,
		})
	}
	if compile && len(f.States) == 0 {
		return fakesalt.CompileError(f)
	}
	return fakesalt.FailedState(f)
}

// traceback returns a Python traceback of 1.6 to 1.8 KB ending in last's
// first line: frames of Salt's renderer and loader, and the template's
// cache path under the minion's own temp name. Its frames depend on the
// failure only, as a real traceback's do; the values in them differ per
// minion.
func traceback(v Values, name, last string) string {
	want := 1750 + int(crc32.ChecksumIEEE([]byte(name))%51)
	if i := strings.IndexByte(last, '\n'); i >= 0 {
		last = last[:i]
	}
	var b strings.Builder
	b.WriteString("Traceback (most recent call last):\n")
	frames := []string{
		"  File \"/opt/saltstack/salt/lib/python3.10/site-packages/salt/utils/templates.py\", line 477, in render_jinja_tmpl\n    output = template.render(**decoded_context)\n",
		"  File \"/opt/saltstack/salt/lib/python3.10/site-packages/jinja2/environment.py\", line 1301, in render\n    self.environment.handle_exception()\n",
		"  File \"/opt/saltstack/salt/lib/python3.10/site-packages/salt/loader/lazy.py\", line 1274, in _run_as\n    return _func_or_method(*args, **kwargs)\n",
		"  File \"/opt/saltstack/salt/lib/python3.10/site-packages/salt/modules/vault.py\", line 284, in read_secret\n    data = vault.read_kv(path, opts=__opts__, context=__context__)\n",
		"  File \"/opt/saltstack/salt/lib/python3.10/site-packages/salt/utils/vault/kv.py\", line 68, in read\n    res = self.client.get(path)\n",
	}
	tail := fmt.Sprintf("  File \"/var/cache/salt/minion/files/base/%s/init.sls\", line 17, in top-level template code\n%s\n",
		Fill("{tmp}", v), last)
	// Whole frames up to the length the failure's traceback has; with
	// per-minion values in the tail, lengths vary a little, frames do not.
	for k := 0; b.Len()+len(tail)+len(frames[k%len(frames)]) <= want; k++ {
		b.WriteString(frames[k%len(frames)])
	}
	b.WriteString(tail)
	return b.String()
}

// incident is one failure of a generated incident: the corpus failures a
// minion shows together, and whether a commit explains them.
type incident struct {
	names  []string
	commit bool
	weight int
}

// incidents of a realistic fleet: a bad commit breaking the web tier (its
// root and two dependents), an outage of Vault, and a long tail of
// unrelated failures on few minions each.
var incidents = []incident{
	{names: []string{"file-jinja-undefined", "service-nginx-bind", "requisite-failed"}, commit: true, weight: 300},
	{names: []string{"vault-refused"}, weight: 80},
	{names: []string{"vault-sealed", "vault-token-expired"}, weight: 30},
	{names: []string{"apt-fetch-failed"}, weight: 40},
	{names: []string{"dpkg-lock"}, weight: 25},
	{names: []string{"pip-timeout", "cmd-run-stderr"}, weight: 20},
	{names: []string{"service-postgres-journal", "postgres-socket"}, weight: 15},
	{names: []string{"jinja-undefined-compile"}, weight: 15},
	{names: []string{"http-artifact-404"}, weight: 10},
	{names: []string{"git-timeout"}, weight: 10},
	{names: []string{"file-check-cmd"}, weight: 8},
	{names: []string{"consul-kv"}, weight: 8},
	{names: []string{"salt-timeout"}, weight: 6},
	{names: []string{"tls-expired"}, weight: 5},
	{names: []string{"mount-missing"}, weight: 4},
	{names: []string{"docker-pull"}, weight: 4},
	{names: []string{"ntp-resolve"}, weight: 3},
	{names: []string{"kernel-module"}, weight: 3},
}

// garbage are answers that are not blame answers: what a fleet also sends
// (strings, wrong types, module errors, control characters).
var garbage = []json.RawMessage{
	json.RawMessage(`"Minion did not return. [Not connected]"`),
	json.RawMessage(`"ERROR: Unable to load blame: SyntaxError: invalid syntax (blame.py, line 12)"`),
	json.RawMessage(`[1, 2, 3]`),
	json.RawMessage(`42`),
	json.RawMessage(`{"retcode": 1, "ret": {"retcode": 1}}`),
	json.RawMessage(`{"blame.last_failed_states": "oops", "blame.last_highstate_failure": {}, "blame.last_compile_errors": []}`),
	json.RawMessage(`{"blame.last_failed_states": [], "blame.last_highstate_failure": {"result": true, "status": "rebooting"}, "blame.last_compile_errors": []}`),
	json.RawMessage(`{"blame.last_failed_states": [{"__id__": "x", "comment": "bad \u0000\u001b[31m bytes"}], "blame.last_highstate_failure": {"result": true, "status": "failing", "commits": 7}, "blame.last_compile_errors": []}`),
}

// RealisticOptions shapes a realistic fleet.
type RealisticOptions struct {
	// Minions and Datacenters: how many, spread round-robin.
	Minions, Datacenters int
	// Seed makes the output reproducible.
	Seed uint64
}

// WriteRealistic writes the blame output of a realistic fleet as one JSON
// object, like salt's --static output: per 100 minions about 42 healthy,
// 48 failing on the corpus's failures (a bad commit on most of them, a
// Vault outage, a long tail of unrelated failures) with values that differ
// per minion in every slot, 3 unreachable, 2 without the module, 3 with no
// highstate yet and 2 garbage answers.
func WriteRealistic(w io.Writer, o RealisticOptions) error {
	corpus, err := Corpus()
	if err != nil {
		return err
	}
	byName := map[string]Failure{}
	for _, f := range corpus {
		byName[f.Name] = f
	}
	type resolved struct {
		fails  []Failure
		commit bool
	}
	var table []resolved
	for _, in := range incidents {
		r := resolved{commit: in.commit}
		for _, n := range in.names {
			f, ok := byName[n]
			if !ok {
				return fmt.Errorf("fleetgen: incident names %q, not in the corpus", n)
			}
			r.fails = append(r.fails, f)
		}
		for range in.weight {
			table = append(table, r)
		}
	}
	dcs := max(1, o.Datacenters)
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	second := fakesalt.ExampleCommit
	second.Path = "/srv/salt/webserver/files/nginx.conf.j2"
	commits := []fakesalt.Commit{fakesalt.ExampleCommit, second}
	healthy, noJobs, missing := fakesalt.Healthy(), fakesalt.NoJobs(), fakesalt.ModuleMissing()

	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("{")
	for i := range o.Minions {
		id := fmt.Sprintf("web-dc%02d-%06d", i%dcs, i)
		var raw json.RawMessage
		switch r := rng.IntN(100); {
		case r < 42:
			raw = healthy
		case r < 90:
			in := table[rng.IntN(len(table))]
			v := Values{Minion: id, Domain: fmt.Sprintf("dc%02d.example.com", i%dcs), Rand: rng,
				Now: incidentStart.Add(time.Duration(rng.IntN(1800)) * time.Second)}
			var cs []fakesalt.Commit
			if in.commit {
				cs = commits
			}
			raw = Answer(in.fails, v, cs)
		case r < 93:
			raw = json.RawMessage("false")
		case r < 95:
			raw = missing
		case r < 98:
			raw = noJobs
		default:
			raw = garbage[rng.IntN(len(garbage))]
		}
		if i > 0 {
			bw.WriteString(",")
		}
		fmt.Fprintf(bw, "\n    %q: ", id)
		bw.Write(raw)
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}
