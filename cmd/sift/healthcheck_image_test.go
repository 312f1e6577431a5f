package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No Docker engine runs in CI: these tests read the Dockerfile and the
// .dockerignore for what the image must hold, and CI builds the binary the
// way the Dockerfile does (scripts/test.sh).

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, COPY, ...
	args string
}

// stages splits a Dockerfile into its build stages' instructions.
func stages(t *testing.T, text string) [][]instruction {
	t.Helper()
	var out [][]instruction
	var cur string
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur += rest + " "
			continue
		}
		cur += line
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		cur = ""
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
		}
		out[len(out)-1] = append(out[len(out)-1], in)
	}
	return out
}

func find(ins []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

var digestPinned = regexp.MustCompile(`^\S+:\S+@sha256:[0-9a-f]{64}(\s|$)`)

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	all := stages(t, string(data))
	if len(all) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(all))
	}
	for _, st := range all {
		if from := st[0].args; !digestPinned.MatchString(from) {
			t.Errorf("FROM %s: pin the image by digest (image:tag@sha256:...)", from)
		}
	}
	final := all[len(all)-1]

	if users := find(final, "USER"); len(users) == 0 || !strings.HasPrefix(users[len(users)-1].args, "nonroot") {
		t.Errorf("the runtime stage must run as nonroot, has USER %v", users)
	}

	// The store's directory: a volume, owned by nonroot (65532) so that
	// SQLite can write it with or without one.
	var volumes []string
	for _, v := range find(final, "VOLUME") {
		if err := json.Unmarshal([]byte(v.args), &volumes); err != nil {
			volumes = append(volumes, strings.Fields(v.args)...)
		}
	}
	if !slices.Contains(volumes, "/var/lib/sift") {
		t.Errorf("VOLUME %q: declare /var/lib/sift", volumes)
	}
	owned := false
	for _, c := range find(final, "COPY") {
		f := strings.Fields(c.args)
		if slices.Contains(f, "--chown=65532:65532") && f[len(f)-1] == "/var/lib/sift" {
			owned = true
		}
	}
	if !owned {
		t.Error("no COPY --chown=65532:65532 ... /var/lib/sift: the store's directory must belong to nonroot")
	}

	// The health check: sift healthcheck with flags it knows, asking a
	// port the image exposes, the port the examples' metrics.listen uses.
	hcs := find(final, "HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("%d HEALTHCHECK instructions, want 1", len(hcs))
	}
	_, execForm, ok := strings.Cut(hcs[0].args, "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(strings.TrimSpace(execForm)), &argv) != nil {
		t.Fatalf("HEALTHCHECK %s: use the exec form CMD [\"/usr/local/bin/sift\", \"healthcheck\", ...]: the image has no shell", hcs[0].args)
	}
	if len(argv) < 2 || argv[0] != "/usr/local/bin/sift" || argv[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK runs %q, want /usr/local/bin/sift healthcheck", argv)
	}
	fs, rawURL, _ := healthcheckFlags(io.Discard)
	if rest, err := parseFlags(fs, argv[2:]); err != nil || len(rest) > 0 {
		t.Fatalf("HEALTHCHECK's arguments %q: %v %q", argv[2:], err, rest)
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		t.Fatal(err)
	}
	var exposed []string
	for _, e := range find(final, "EXPOSE") {
		for _, p := range strings.Fields(e.args) {
			exposed = append(exposed, strings.TrimSuffix(p, "/tcp"))
		}
	}
	if !slices.Contains(exposed, u.Port()) {
		t.Errorf("the health check asks port %s, EXPOSE has %q", u.Port(), exposed)
	}
	if u.Path != "/healthz" {
		t.Errorf("the health check asks %s, want /healthz (liveness, not readiness: a Slack outage must not restart Sift)", u.Path)
	}

	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "sift.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Metrics struct{ Listen string } `yaml:"metrics"`
		Halts   struct{ Listen string } `yaml:"halts"`
	}
	if err := yaml.Unmarshal(example, &cfg); err != nil {
		t.Fatal(err)
	}
	for key, addr := range map[string]string{"metrics.listen": cfg.Metrics.Listen, "halts.listen": cfg.Halts.Listen} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil || !slices.Contains(exposed, port) {
			t.Errorf("examples/sift.yml %s %q: its port is not in EXPOSE %q", key, addr, exposed)
		}
	}
	if _, port, _ := net.SplitHostPort(cfg.Metrics.Listen); port != u.Port() {
		t.Errorf("examples/sift.yml metrics.listen %q and the HEALTHCHECK's URL %s disagree on the port", cfg.Metrics.Listen, u)
	}

	// The default command reads the configuration where the README's
	// docker run mounts it.
	if cmds := find(final, "CMD"); len(cmds) == 0 || !strings.Contains(cmds[len(cmds)-1].args, `"/etc/sift/sift.yml"`) {
		t.Errorf("CMD %v: serve --config /etc/sift/sift.yml", cmds)
	}
}

// dockerignore is the subset of .dockerignore's rules the file uses: paths
// relative to the context, '*' and '?' within a segment, '**' for any
// number of directories, '!' to re-include, the last matching rule wins,
// and a rule that matches a directory covers what is under it.
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func parseDockerignore(t *testing.T, text string) dockerignore {
	t.Helper()
	var d dockerignore
	for line := range strings.Lines(text) {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		include := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(path.Clean(strings.TrimPrefix(p, "!")), "/")
		var re strings.Builder
		re.WriteString("^")
		afterDoubleStar := false
		for i, seg := range strings.Split(p, "/") {
			if seg == "**" {
				re.WriteString("(?:[^/]+/)*")
				afterDoubleStar = true
				continue
			}
			if i > 0 && !afterDoubleStar {
				re.WriteString("/")
			}
			afterDoubleStar = false
			for _, c := range seg {
				switch c {
				case '*':
					re.WriteString("[^/]*")
				case '?':
					re.WriteString("[^/]")
				default:
					re.WriteString(regexp.QuoteMeta(string(c)))
				}
			}
		}
		re.WriteString("$")
		d = append(d, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(re.String()), include})
	}
	return d
}

// excluded reports whether rel (slash-separated) stays out of the context.
func (d dockerignore) excluded(rel string) bool {
	out := false
	for _, rule := range d {
		parts := strings.Split(rel, "/")
		for i := range parts {
			if rule.re.MatchString(strings.Join(parts[:i+1], "/")) {
				out = !rule.include
				break
			}
		}
	}
	return out
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	d := parseDockerignore(t, string(data))
	// What must never reach the build context.
	for _, p := range []string{
		".git", ".git/objects/pack/x.pack", "sift", "cmd/sift/sift", "sift.yml", "local.yaml",
		"sift.db", "var/sift.db-wal", "secrets/slack-bot.token", "salt-eu.password", "config/testdata/ca.pem",
		"halts/halts.test", ".env",
	} {
		if !d.excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	// What the build needs: every file go build reads for ./cmd/sift in
	// this module, embedded files included.
	root := filepath.Join("..", "..")
	needed := []string{"go.mod", "go.sum"}
	cmd := exec.Command("go", "list", "-deps", "-json=Module,Dir,GoFiles,CgoFiles,EmbedFiles", "./cmd/sift")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var pkg struct {
			Module                        *struct{ Main bool }
			Dir                           string
			GoFiles, CgoFiles, EmbedFiles []string
		}
		if err := dec.Decode(&pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue // the standard library and dependencies: downloaded, not copied
		}
		rel, err := filepath.Rel(abs, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(pkg.GoFiles, pkg.CgoFiles, pkg.EmbedFiles) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if !slices.Contains(needed, "cmd/sift/main.go") {
		t.Fatalf("go list named no file of cmd/sift: %q", needed)
	}
	for _, p := range needed {
		if d.excluded(p) {
			t.Errorf(".dockerignore keeps %s out of the build context, and the build needs it", p)
		}
	}
}
