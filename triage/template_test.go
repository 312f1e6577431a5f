package triage

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

func TestMask(t *testing.T) {
	const minion = "web-ams01-001"
	tests := []struct{ name, in, want string }{
		{"minion id, numbers, pid", "Service ntpd failed on web-ams01-001 after 3 attempts (pid 4221)",
			"Service ntpd failed on <minion> after <*> attempts (pid <*>)"},
		{"minion id inside a longer name stays", "web-ams01-0010 answered", "web-<*> answered"},
		{"salt:// path kept", "Source file salt://webserver/files/nginx.conf not found in saltenv 'base'",
			"Source file salt://webserver/files/nginx.conf not found in saltenv '<q>'"},
		{"hex and path", "checksum a3f9c2d1e8b7 mismatch for /var/cache/salt/minion/files/x.tgz",
			"checksum <*> mismatch for <path>"},
		{"URL origin kept, per-minion path masked", "could not reach https://vault.example.com:8200/v1/secret/data/web-ams01-001 from 10.0.3.17",
			"could not reach https://vault.example.com:8200/<path> from <*>"},
		{"URL credentials dropped", "GET https://deploy:s3cr3t@repo.example.com/debian/ failed",
			"GET https://<user>@repo.example.com/<path> failed"},
		{"URL without path", "Failed to connect to https://vault.example.com:8200: refused",
			"Failed to connect to https://vault.example.com:8200: refused"},
		{"host name", "host db-3.ams01.example.com refused", "host <host> refused"},
		{"host name without digits", "lookup vault.internal failed", "lookup <host> failed"},
		{"python module path kept", "salt.exceptions.SaltRenderError: boom", "salt.exceptions.SaltRenderError: boom"},
		{"file names kept", "nginx.service and index.html", "nginx.service and index.html"},
		{"systemd scope unit", "Running scope as unit: run-r3f9a0c8d2e4b4e1a9b1c2d3e4f5a6b7c.scope",
			"Running scope as unit: run-<*>.scope"},
		{"hex letters only", "commit deadbeefcafe failed", "commit <*> failed"},
		{"short hex-letter words stay", "a bad decade faced", "a bad decade faced"},
		{"temp file name", "Can't open /tmp/tmpa8x_3k: gone", "Can't open <path>: gone"},
		{"temp name alone", "wrote tmpqzkxwvur.sls", "wrote <*>.sls"},
		{"job id", "job 20261201140322123456 timed out", "job <*> timed out"},
		{"uuid", "request 123e4567-e89b-12d3-a456-426614174000 failed", "request <*> failed"},
		{"uuid of hex letters", "request deadbeef-cafe-face-bead-decafbadbeef failed", "request <*> failed"},
		{"ip with port", "connect to 10.0.3.17:8200 refused", "connect to <*> refused"},
		{"ipv6 with port", "listen on [fe80::1]:8080 failed", "listen on [<*>]:<*> failed"},
		{"iso timestamp", "expired on 2026-12-01T14:03:22.123456+00:00 at last", "expired on <*> at last"},
		{"syslog timestamp", "Dec  1 14:03:22 web-ams01-001 nginx[4221]: emerg", "<*> <*> <*> <minion> nginx[<*>]: emerg"},
		{"journal timestamp", "since Tue 2026-12-01 14:03:22 UTC; 3s ago", "since <*> <*> <*> UTC; <*> ago"},
		{"month word without a number stays", "May the service start", "May the service start"},
		{"quoted host", "Failed to connect to 'web-ams01-001.ams01.example.com' port 22", "Failed to connect to '<q>' port <*>"},
		{"quoted salt path kept", "file 'salt://a/b.conf' missing", "file 'salt://a/b.conf' missing"},
		{"apostrophes are not quotes", "Can't find it, it's gone", "Can't find it, it's gone"},
		{"double quotes", `File "/usr/lib/python3/dist-packages/salt/state.py", line 42, in call`, `File "<q>", line <*>, in call`},
		{"key=path", "failed: file=/etc/app/conf.d/x.yml", "failed: file=<path>"},
		{"path in brackets", "lock (/var/lib/dpkg/lock-frontend), is it held?", "lock (<path>), is it held?"},
		{"whitespace collapses", "  a\n\tb   c  ", "a b c"},
		{"version", "nginx-1.24.0 and python3.11", "nginx-<*> and <*>"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Mask(tc.in, minion); got != tc.want {
				t.Errorf("Mask(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestMaskIssueExamples masks the values the report of a split failure
// named: scope units, job ids, pids, ports, temp names, UUIDs, per-minion
// Vault paths, timestamps in several formats and quoted host names. Two
// minions' messages must give one template.
func TestMaskIssueExamples(t *testing.T) {
	pairs := []struct{ name, a, b string }{
		{"scope unit", "Running scope as unit: run-r3f9a0c1d2e3f4a5b6c7d8e9f0a1b2e1.scope", "Running scope as unit: run-r0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.scope"},
		{"job id", "jid 20261201140322123456 failed", "jid 20261201140409000017 failed"},
		{"pid", "held by process 4221 (unattended-upgr)", "held by process 871 (unattended-upgr)"},
		{"port", "bind to 0.0.0.0:8443 failed", "bind to 0.0.0.0:31337 failed"},
		{"temp file", "cannot stat /tmp/tmpa8x_3k", "cannot stat /tmp/tmpzq0w1e9r"},
		{"uuid", "request 123e4567-e89b-12d3-a456-426614174000", "request 9f8e7d6c-5b4a-4321-8fed-cba987654321"},
		{"vault path", "403 for url: https://vault.example.com:8200/v1/secret/data/minions/web-1/db", "403 for url: https://vault.example.com:8200/v1/secret/data/minions/db-77/db"},
		{"iso time", "at 2026-12-01T14:03:22.123456+00:00", "at 2026-11-30T09:59:01.000001+00:00"},
		{"syslog time", "Dec  1 14:03:22 nginx[1]: x", "Nov 30 09:59:01 nginx[1]: x"},
		{"journal time", "since Tue 2026-12-01 14:03:22 UTC;", "since Mon 2026-11-30 09:59:01 UTC;"},
		{"quoted host", "connect to 'db-7.ams01.example.com' refused", "connect to 'cache.par02.example.net' refused"},
		{"minion id", "web-1 cannot reach its master", "db-77 cannot reach its master"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			a, b := Mask(p.a, "web-1"), Mask(p.b, "db-77")
			if a != b {
				t.Errorf("two minions, two templates:\n %q\n %q", a, b)
			}
			if a == p.a {
				t.Errorf("nothing masked in %q", p.a)
			}
		})
	}
}

func corpus(t testing.TB) []fleetgen.Failure {
	t.Helper()
	c, err := fleetgen.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) < 40 {
		t.Fatalf("corpus holds %d failures, want at least 40", len(c))
	}
	return c
}

// minionValues draws the per-minion values of the i-th minion.
func minionValues(rng *rand.Rand, i int) fleetgen.Values {
	prefix := []string{"web", "db", "cache", "lb", "app-worker"}[i%5]
	return fleetgen.Values{
		Minion: fmt.Sprintf("%s-%s%02d-%04d", prefix, []string{"ams", "par", "fra"}[i%3], i%7, rng.IntN(10000)),
		Domain: fmt.Sprintf("dc%02d.example.com", i%4),
		Rand:   rng,
		Now:    time.Date(2026, time.Month(1+i%12), 1+i%28, i%24, 0, 0, 0, time.UTC),
	}
}

// TestCorpusOneTemplatePerFailure instantiates each failure of the corpus
// for many minions with random values: one failure, one template.
func TestCorpusOneTemplatePerFailure(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range corpus(t) {
		t.Run(f.Name, func(t *testing.T) {
			templates := map[string]string{}
			for i := range 200 {
				v := minionValues(rng, i)
				msg := fleetgen.Fill(f.Text, v)
				templates[TemplateOf(msg, v.Minion)] = msg
			}
			if len(templates) != 1 {
				for tpl, msg := range templates {
					t.Logf("template %q\n  of %q", tpl, msg)
				}
				t.Fatalf("%d templates for one failure, want 1", len(templates))
			}
		})
	}
}

// TestCorpusFailuresStayApart puts every two failures of the corpus on one
// state: their templates differ and do not cluster together.
func TestCorpusFailuresStayApart(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := corpus(t)
	templates := make([]string, len(c))
	for i, f := range c {
		v := minionValues(rng, i)
		templates[i] = Mask(fleetgen.Fill(f.Text, v), v.Minion)
	}
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if templates[i] == templates[j] {
				t.Errorf("%s and %s have one template %q", c[i].Name, c[j].Name, templates[i])
				continue
			}
			got := ClusterTemplates([]string{templates[i], templates[j]})
			if got[templates[i]] == got[templates[j]] {
				t.Errorf("%s and %s cluster together as %q", c[i].Name, c[j].Name, got[templates[i]])
			}
		}
	}
}

func TestClusterTemplates(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want map[string]string
	}{
		{"a token that masking missed merges",
			[]string{"user alice is locked out of <host>", "user bob is locked out of <host>", "user carol is locked out of <host>"},
			map[string]string{
				"user alice is locked out of <host>": "user <*> is locked out of <host>",
				"user bob is locked out of <host>":   "user <*> is locked out of <host>",
				"user carol is locked out of <host>": "user <*> is locked out of <host>",
			}},
		{"different lengths stay apart",
			[]string{"service nginx is dead", "service nginx is dead and disabled"},
			map[string]string{
				"service nginx is dead":              "service nginx is dead",
				"service nginx is dead and disabled": "service nginx is dead and disabled",
			}},
		{"below the similarity bar stays apart",
			[]string{"package <q> not found", "service <q> not running"},
			map[string]string{
				"package <q> not found":   "package <q> not found",
				"service <q> not running": "service <q> not running",
			}},
		{"different leading tokens stay apart",
			[]string{"E: x y z w v u", "W: x y z w v u"},
			map[string]string{"E: x y z w v u": "E: x y z w v u", "W: x y z w v u": "W: x y z w v u"}},
		{"repetitions count once", []string{"a b c", "a b c"}, map[string]string{"a b c": "a b c"}},
		{"empty", nil, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ClusterTemplates(tc.in)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ClusterTemplates(%q)\n got %v\nwant %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestClusterTemplatesOrderFree shuffles the input: the clusters depend on
// the set of templates only, so cause keys are stable across runs.
func TestClusterTemplatesOrderFree(t *testing.T) {
	var in []string
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		in = append(in, "user "+u+" is locked out of <host> after <*> tries")
		in = append(in, "quota of "+u+" exceeded on <path> by <*>")
	}
	in = append(in, "something else entirely", "Service <q> failed to start")
	want := fmt.Sprint(ClusterTemplates(in))
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		if got := fmt.Sprint(ClusterTemplates(append(in, in[:3]...))); got != want {
			t.Fatalf("order changed the clusters:\n got %s\nwant %s", got, want)
		}
	}
	got := ClusterTemplates(in)
	if c := got["user alice is locked out of <host> after <*> tries"]; c != "user <*> is locked out of <host> after <*> tries" {
		t.Errorf("cluster of alice = %q", c)
	}
	if got["something else entirely"] != "something else entirely" {
		t.Errorf("a lone template maps to %q", got["something else entirely"])
	}
}

func TestTemplateOfMatchesMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, f := range corpus(t) {
		for i := range 3 {
			v := minionValues(rng, i)
			msg := fleetgen.Fill(f.Text, v)
			// Twice: the second comes from the cache.
			for range 2 {
				if got, want := TemplateOf(msg, v.Minion), Mask(msg, v.Minion); got != want {
					t.Fatalf("%s: TemplateOf = %q, Mask = %q", f.Name, got, want)
				}
			}
		}
	}
	// The minion's id as part of a longer name is not masked, in or out of
	// the cache.
	for _, id := range []string{"web-1", "web-2"} {
		msg := "web-10 and " + id + " disagree"
		if got, want := TemplateOf(msg, id), Mask(msg, id); got != want || !strings.Contains(got, "<minion>") {
			t.Errorf("TemplateOf(%q, %q) = %q, Mask = %q", msg, id, got, want)
		}
	}
}

func TestMaskLongMessage(t *testing.T) {
	long := "Traceback (most recent call last):\n" + strings.Repeat("  File \"/opt/salt/x.py\", line 12, in f\n", 400) + "KeyError: 'vault_addr'"
	got := Mask(long, "")
	if len(got) > maxMaskInput {
		t.Errorf("template of %d bytes from a %d-byte message, want at most %d", len(got), len(long), maxMaskInput)
	}
	if !strings.HasPrefix(got, "Traceback (most recent call last):") || !strings.HasSuffix(got, "KeyError: '<q>'") {
		t.Errorf("head or tail lost: %q … %q", got[:40], got[len(got)-40:])
	}
}

func BenchmarkMask(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	c := corpus(b)
	msgs := make([]string, 0, 1000)
	ids := make([]string, 0, 1000)
	var n int
	for i := range 1000 {
		v := minionValues(rng, i)
		m := fleetgen.Fill(c[i%len(c)].Text, v)
		msgs, ids = append(msgs, m), append(ids, v.Minion)
		n += len(m)
	}
	b.SetBytes(int64(n / len(msgs)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Mask(msgs[i%len(msgs)], ids[i%len(ids)])
		i++
	}
}

// TestMaskLongMessageCutsAtTokens: values of different lengths before the
// cut of a long message do not move it.
func TestMaskLongMessageCutsAtTokens(t *testing.T) {
	msg := func(n string) string {
		var b strings.Builder
		for range 120 {
			fmt.Fprintf(&b, "  File \"/opt/salt/%s/x.py\", line %s, in render\n", n, n)
		}
		b.WriteString("salt.exceptions.SaltRenderError: Jinja variable 'dict object' has no attribute 'port'")
		return b.String()
	}
	a, b := Mask(msg("7"), ""), Mask(msg("1234567"), "")
	if a != b {
		t.Errorf("two templates for one failure:\n%q\n%q", a, b)
	}
	if !strings.HasSuffix(a, "has no attribute '<q>'") {
		t.Errorf("tail lost: %q", a[len(a)-60:])
	}
}

// mutateValues returns msg with every piece that holds a digit, and every
// temp name, replaced by another of its class, of another length (but in
// tokens holding "salt://", and in URLs up to the end of their host), the
// minion's id by another of its shape, and blank runs by others of their
// kind: what differs between two minions' messages of one failure.
func mutateValues(msg, minion, other string, rng *rand.Rand) string {
	msg = replaceMinion(msg, minion, other)
	var b strings.Builder
	for i := 0; i < len(msg); {
		c := msg[i]
		if isSpace(c) {
			nl := false
			for ; i < len(msg) && isSpace(msg[i]); i++ {
				nl = nl || msg[i] == '\n'
			}
			if nl {
				b.WriteString([]string{"\n", " \n", "\n\t"}[rng.IntN(3)])
			} else {
				b.WriteString([]string{" ", "  ", "\t"}[rng.IntN(3)])
			}
			continue
		}
		j := i
		for j < len(msg) && !isSpace(msg[j]) {
			j++
		}
		tok := msg[i:j]
		k := 0
		switch {
		case strings.Contains(tok, "salt://"):
			k = len(tok)
		case strings.Contains(tok, "://"):
			// The URL's origin stays; its path is any text.
			k = strings.LastIndex(tok, "://") + len("://")
			for k < len(tok) && !strings.ContainsRune("/?#", rune(tok[k])) {
				k++
			}
		}
		b.WriteString(tok[:k])
		for k < len(tok) {
			if !isWord(tok[k]) {
				b.WriteByte(tok[k])
				k++
				continue
			}
			if (k == 0 || !isWord(tok[k-1])) && strings.HasPrefix(tok[k:], other) {
				b.WriteString(other)
				k += len(other)
				continue
			}
			e, digit, hostChars := k, false, true
			for ; e < len(tok) && isWord(tok[e]); e++ {
				switch d := tok[e]; {
				case d >= '0' && d <= '9':
					digit = true
				case d >= 'a' && d <= 'z':
				default:
					hostChars = false
				}
			}
			piece := tok[k:e]
			if len(piece) >= 9 && strings.HasPrefix(piece, "tmp") && (k == 0 || !isWord(tok[k-1])) {
				digit = true // a temp name: masked whatever it holds
			}
			if !digit {
				b.WriteString(piece)
				k = e
				continue
			}
			b.WriteString(samePieceClass(piece, hostChars, rng))
			k = e
		}
		i = j
	}
	return b.String()
}

func samePieceClass(piece string, hostChars bool, rng *rand.Rand) string {
	const lower, upper, digits = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
	var b strings.Builder
	first := piece[0]
	switch {
	case first >= '0' && first <= '9':
		b.WriteByte(digits[rng.IntN(10)])
	case first >= 'a' && first <= 'z':
		b.WriteByte(lower[rng.IntN(26)])
	case first >= 'A' && first <= 'Z':
		b.WriteByte(upper[rng.IntN(26)])
	default:
		return piece // '_' or UTF-8: left as it is
	}
	alphabet := lower + digits
	if !hostChars {
		alphabet += upper + "_"
		b.WriteByte('_')
	}
	for range rng.IntN(12) {
		b.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	b.WriteByte(digits[rng.IntN(10)])
	return b.String()
}

// checkKey checks the promise of templateKey on a message and a mutation
// of it: one key, one template. It reports whether the keys were one.
func checkKey(t *testing.T, msg string, seed uint64) bool {
	t.Helper()
	same := checkKeyOf(t, msg, seed, "web-dc01-000123", "web-dc07-999001")
	// An id that starts with a digit, and one found in a longer word.
	checkKeyOf(t, strings.ReplaceAll(msg, "web-dc01-000123", "1node-7"), seed, "1node-7", "2node-9")
	checkKeyOf(t, msg, seed, "web", "dev")
	return same
}

func checkKeyOf(t *testing.T, msg string, seed uint64, minion, other string) bool {
	t.Helper()
	// The run-copying key builder and the token-by-token one agree.
	if a, b := appendKey(nil, msg, minion), appendKeyTokens(nil, msg, minion); string(a) != string(b) {
		t.Errorf("two keys for %q:\n %q\n %q", msg, a, b)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	msg2 := mutateValues(msg, minion, other, rng)
	k1, ok1 := templateKey(nil, msg, minion)
	k2, ok2 := templateKey(nil, msg2, other)
	if !ok1 || !ok2 || string(k1) != string(k2) {
		return false
	}
	if a, b := Mask(msg, minion), Mask(msg2, other); a != b {
		t.Errorf("one key, two templates:\n msg  %q\n msg2 %q\n  %q\n  %q", msg, msg2, a, b)
	}
	return true
}

func TestTemplateKeyPromise(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	same, tried := 0, 0
	for _, f := range corpus(t) {
		for i := range 20 {
			v := minionValues(rng, i)
			v.Minion = "web-dc01-000123"
			tried++
			if checkKey(t, fleetgen.Fill(f.Text, v), uint64(i)) {
				same++
			}
		}
	}
	// The mutations keep the key, bar the odd one that makes a new word
	// boundary: the check above ran.
	if same < tried*9/10 {
		t.Errorf("one key for %d of %d mutated messages", same, tried)
	}
	for i, msg := range []string{
		"request deadbeef-cafe-face-bead-decafbadbeef failed",
		"request 123e4567-e89b-12d3-a456-426614174000 failed on db-3.ams01.example.com",
		"Dec  1 14:03:22 web-dc01-000123 x; Mon 2026-12-01 at 10.0.3.17:8200",
		"host web-dc01-000123.ams01.example.com and WEB-DC01-000123.x.com and web-dc01-0001234",
		"quote 'a b c d e f g h i j k l m n o p q 1' and \"x 12\nfoo\" and 'http://web-dc01-000123:80/a b'",
		"a-1 be-2 1-ab cafe-12-beef x86_64 ip 10.0.0.1:80 v1.2.3-rc1 AB12.cd34",
	} {
		if !checkKey(t, msg, uint64(i)) {
			t.Errorf("mutation of %q changed its key", msg)
		}
	}
}

func FuzzTemplateKey(f *testing.F) {
	c, err := fleetgen.Corpus()
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i, x := range c {
		v := minionValues(rng, i)
		v.Minion = "web-dc01-000123"
		f.Add(fleetgen.Fill(x.Text, v), uint64(i))
	}
	f.Fuzz(func(t *testing.T, msg string, seed uint64) {
		checkKey(t, msg, seed)
	})
}

// TestCutLongShort checks the shortcut for short messages against the
// token count it stands for: a message of fewer than twice maskTokens
// tokens is masked whole, one of that many is cut.
func TestCutLongShort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var b strings.Builder
		tokens := 2*maskTokens - 3 + rng.IntN(6)
		for i := range tokens {
			if i > 0 {
				b.WriteString([]string{" ", "\n", "  ", "\t"}[rng.IntN(4)])
			}
			b.WriteString("abcdefgh"[:1+rng.IntN(2)])
		}
		msg := b.String()
		if rng.IntN(2) == 0 { // the shortest message of that many tokens
			msg = strings.TrimSpace(strings.Repeat("a ", tokens))
		}
		head, tail, byBytes := cutLong(msg)
		whole := head == msg && tail == "" && !byBytes
		if whole != (tokens < 2*maskTokens) {
			t.Fatalf("cutLong of %d tokens in %d bytes = %q, %q, %v", tokens, len(msg), head, tail, byBytes)
		}
	}
}
