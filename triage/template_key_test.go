package triage

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

// TestTemplateKeyValuesThatSplitTheCache: values Mask masks but an exact
// copy would keep (URL paths, temp names without a digit) leave the key.
func TestTemplateKeyValuesThatSplitTheCache(t *testing.T) {
	pairs := []struct{ name, a, b string }{
		{"url path", "Unable to fetch https://artifacts.example.com/builds/app-20261130141918199591.tar.gz: HTTP 404",
			"Unable to fetch https://artifacts.example.com/builds/app-20261130133617646239.tar.gz: HTTP 404"},
		{"url query", "HTTP Error 500 from http://consul.service.example.com:8500/v1/kv/nodes/config?index=9709: timeout",
			"HTTP Error 500 from http://consul.service.example.com:8500/v1/kv/nodes/config?index=68070: timeout"},
		{"temp name", `File "/var/cache/salt/minion/files/base/tmpnwraiguq/init.sls", line 17`,
			`File "/var/cache/salt/minion/files/base/tmpqzkxwvur/init.sls", line 17`},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ka, oka := templateKey(nil, p.a, "web-1")
			kb, okb := templateKey(nil, p.b, "web-1")
			if !oka || !okb || string(ka) != string(kb) {
				t.Errorf("two keys:\n %q\n %q", ka, kb)
			}
			if a, b := Mask(p.a, "web-1"), Mask(p.b, "web-1"); a != b {
				t.Errorf("one key, two templates:\n %q\n %q", a, b)
			}
		})
	}
}

// TestTemplateKeyKeepsWhatMaskKeeps: what Mask keeps as it is stays in the
// key as it is: URL origins, salt:// paths, and a quoted salt:// path whole,
// even across blanks other than space, tab and newline.
func TestTemplateKeyKeepsWhatMaskKeeps(t *testing.T) {
	pairs := []struct{ name, a, b string }{
		{"url port", "connect to https://vault.example.com:8200/v1/x failed", "connect to https://vault.example.com:8201/v1/x failed"},
		{"url host", "GET http://repo1.example.com/a failed", "GET http://repo2.example.com/a failed"},
		{"second url's host", "see http://a/b'http://h1.example.com/x'", "see http://a/b'http://h2.example.com/x'"},
		{"salt path", "file salt://web/files/v1.conf missing", "file salt://web/files/v2.conf missing"},
		{"quoted salt path across a carriage return", "x 'salt://a\rb1'", "x 'salt://a\rb2'"},
		{"quoted salt path across a form feed", "x 'salt://a\fb1\vc' y", "x 'salt://a\fb2\vc' y"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ma, mb := Mask(p.a, "web-1"), Mask(p.b, "web-1")
			if ma == mb {
				t.Fatalf("the pair should have two templates, has %q", ma)
			}
			ka, _ := templateKey(nil, p.a, "web-1")
			kb, _ := templateKey(nil, p.b, "web-1")
			if string(ka) == string(kb) {
				t.Errorf("one key %q for two templates:\n %q\n %q", ka, ma, mb)
			}
			// Through the cache, in both orders.
			for _, m := range []string{p.a, p.b, p.a} {
				if got, want := TemplateOf(m, "web-1"), Mask(m, "web-1"); got != want {
					t.Errorf("TemplateOf(%q) = %q, Mask = %q", m, got, want)
				}
			}
		})
	}
}

// TestLineCacheMinion: a line kept in the line cache from one minion's
// message is not another minion's line when it holds that minion's id.
func TestLineCacheMinion(t *testing.T) {
	const line = "replica db-dc01-000007 is not answering on its port"
	msg := "Failed to sync the replicas of the cluster:\n  " + line + "\n  giving up after the retries"
	for _, id := range []string{"web-dc01-000001", "web-dc01-000002", "web-dc01-000003", "db-dc01-000007", "web-dc01-000004"} {
		for range 2 {
			got, _ := templateKey(nil, msg, id)
			want := appendKeyTokens(nil, msg, id)
			if string(got) != string(want) {
				t.Fatalf("key of %q for %s:\n got %q\nwant %q", msg, id, got, want)
			}
			if tpl, m := TemplateOf(msg, id), Mask(msg, id); tpl != m {
				t.Fatalf("TemplateOf for %s = %q, Mask = %q", id, tpl, m)
			}
		}
	}
	if tpl := TemplateOf(msg, "db-dc01-000007"); !strings.Contains(tpl, "<minion>") {
		t.Errorf("the minion's own id not masked: %q", tpl)
	}
}

// TestAppendKeyMatchesTokens: the fast key builder, with its line cache
// cold and warm, and the token-by-token one agree on the realistic
// messages of a fleet and on their mutations.
func TestAppendKeyMatchesTokens(t *testing.T) {
	msgs := realisticMessages(t, 3000)
	rng := rand.New(rand.NewPCG(31, 32))
	for pass := range 2 {
		for i, m := range msgs {
			for _, s := range []string{m.msg, mutateValues(m.msg, m.minion, "web-dc09-990099", rng)} {
				if a, b := appendKey(nil, s, m.minion), appendKeyTokens(nil, s, m.minion); string(a) != string(b) {
					t.Fatalf("pass %d, message %d: two keys for %q:\n %q\n %q", pass, i, s, a, b)
				}
			}
		}
	}
}

// TestTemplateOfRealistic: through the cache, every realistic message has
// the template Mask gives it.
func TestTemplateOfRealistic(t *testing.T) {
	resetTemplateCache()
	for _, m := range realisticMessages(t, 3000) {
		if got, want := TemplateOf(m.msg, m.minion), Mask(m.msg, m.minion); got != want {
			t.Fatalf("TemplateOf(%q)\n = %q\nMask %q", m.msg, got, want)
		}
	}
}

// TestTemplateOfConcurrent makes templates on several goroutines at once,
// as the decoding workers do: the caches they share give each message
// Mask's template.
func TestTemplateOfConcurrent(t *testing.T) {
	resetTemplateCache()
	msgs := realisticMessages(t, 1500)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range msgs {
				m := msgs[(k+w*len(msgs)/4)%len(msgs)]
				if got, want := TemplateOf(m.msg, m.minion), Mask(m.msg, m.minion); got != want {
					errs <- fmt.Sprintf("TemplateOf(%q)\n = %q\nMask %q", m.msg, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestTemplateCacheBounded fills the cache past its bound with distinct
// failures: it starts over rather than grow, and stays correct.
func TestTemplateCacheBounded(t *testing.T) {
	resetTemplateCache()
	first := templateCache.Load()
	filler := strings.Repeat("word ", 300)
	for i := range 2000 {
		// Kinds named in letters: a digit would be masked, and one key.
		kind := []byte{'g' + byte(i%20), 'g' + byte(i/20%20), 'g' + byte(i/400)}
		msg := fmt.Sprintf("%s failure kind %s", filler, kind)
		if got, want := TemplateOf(msg, "web-1"), Mask(msg, "web-1"); got != want {
			t.Fatalf("TemplateOf = %q, Mask = %q", got, want)
		}
	}
	cur := templateCache.Load()
	if cur == first {
		t.Fatalf("cache not started over after %d bytes of templates", 2000*2*len(filler))
	}
	if n := cur.bytes.Load(); n > templateMaxBytes {
		t.Errorf("cache holds %d bytes, bound %d", n, templateMaxBytes)
	}
}

func FuzzTemplateOf(f *testing.F) {
	c, err := fleetgen.Corpus()
	if err != nil {
		f.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for i, x := range c {
		v := minionValues(rng, i)
		f.Add(fleetgen.Fill(x.Text, v), v.Minion)
	}
	f.Add("x 'salt://a\rb1'", "web-1")
	f.Add("see http://a/b?next=http://h1.example.com/x tmpabcdefgh", "h1")
	f.Fuzz(func(t *testing.T, msg, id string) {
		if plainID(id) {
			if a, b := appendKey(nil, msg, id), appendKeyTokens(nil, msg, id); string(a) != string(b) {
				t.Fatalf("two keys for %q, %q:\n %q\n %q", msg, id, a, b)
			}
		}
		// Twice: the second may come from the caches.
		for range 2 {
			if got, want := TemplateOf(msg, id), Mask(msg, id); got != want {
				t.Fatalf("TemplateOf(%q, %q) = %q, Mask = %q", msg, id, got, want)
			}
		}
	})
}

// TestNearLineMinions keys long lines with values from a line of
// their kind, on minions whose ids stand in different tokens, and in a
// token that another minion's line holds as it is: the key is the one the
// token-by-token builder makes.
func TestNearLineMinions(t *testing.T) {
	const tail = " Max retries exceeded with url: /v1/secret/data/minions/%s/tls (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f%x>: Failed to establish a new connection: [Errno 111] Connection refused'))"
	rng := rand.New(rand.NewPCG(41, 42))
	ids := []string{"web-dc01-000001", "web-dc01-000002", "db-dc02-000017", "web-dc01-000003"}
	for round := range 3 {
		for k, id := range ids {
			other := ids[(k+1)%len(ids)]
			for _, line := range []string{
				fmt.Sprintf("Rendering SLS 'base:webserver.tls' failed for %s:"+tail, id, id, rng.Uint64()),
				fmt.Sprintf("Rendering SLS 'base:webserver.tls' failed for %s:"+tail, other, id, rng.Uint64()),
				fmt.Sprintf("Rendering SLS 'base:webserver.tls' failed for %s:"+tail, other, other, rng.Uint64()),
				fmt.Sprintf("Rendering SLS 'base:webserver.tls' failed for %s:"+tail, "web-dc01-000002", "web-dc01-000002", rng.Uint64()),
			} {
				if got, want := appendKey(nil, line, id), appendKeyTokens(nil, line, id); string(got) != string(want) {
					t.Fatalf("round %d, minion %s: key of %q\n got %q\nwant %q", round, id, line, got, want)
				}
			}
		}
	}
}
