package triage

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// urlSamples are URLs as failures name them, and the odd ones net/url
// reads its own way: each is taken apart by serviceOrigin as by
// ServiceOrigin.
var urlSamples = []string{
	"https://vault.example.com:8200",
	"https://vault.example.com:8200/v1/secret/data/minions/web-dc04-000014/tls",
	"http://mirror.example.net:8080/debian/dists/bookworm/Release",
	"http://consul.service.example.com:8500/v1/kv/app?recurse=true#top",
	"https://files.example.com/a.tar.gz.",
	"https://files.example.com:",
	"https://files.example.com:.",
	"http://host:/x",
	"http://:80/x",
	"http://",
	"http:///path",
	"http://?q",
	"http://#f",
	"http://@host/x",
	"http://user:pw@host:8080/x",
	"http://Host.Example.com/x",
	"HTTP://host/x",
	"http://host:8o8o/x",
	"http://host:80:81/x",
	"http://[::1]:8200/x",
	"http://[::1",
	"http://host/a%20b",
	"http://host/a%zz",
	"http://host/a#%zz",
	"http://host?%zz",
	"http://host/a\x00b",
	"http://host/a\x7fb",
	"http://host\x00/a",
	"http://ho st/a",
	"http://host/ä",
	"http://hö.st/a",
	"http://host%41/a",
	"http://-host-/a",
	"http://a..b/",
	"https//host/x",
	"ftp://host/x",
	"salt://webserver/files/nginx.conf",
	"",
}

func TestServiceOriginFast(t *testing.T) {
	for _, raw := range urlSamples {
		got, gotOK := serviceOrigin(raw)
		want, wantOK := ServiceOrigin(raw)
		if got != want || gotOK != wantOK {
			t.Errorf("%q: %q %v, want %q %v", raw, got, gotOK, want, wantOK)
		}
	}
	// URLs put together from pieces that matter to a parser.
	pieces := []string{"http://", "https://", "h", "o", "st", ".", "-", ":", "80", "/", "?", "#", "%", "%41", "%g", "@", "[", "]", "A", " ", "\x01", "ü"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var b strings.Builder
		b.WriteString(pieces[rng.IntN(2)])
		for range rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		raw := b.String()
		got, gotOK := serviceOrigin(raw)
		want, wantOK := ServiceOrigin(raw)
		if got != want || gotOK != wantOK {
			t.Fatalf("%q: %q %v, want %q %v", raw, got, gotOK, want, wantOK)
		}
	}
}

func FuzzServiceOriginFast(f *testing.F) {
	for _, raw := range urlSamples {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, gotOK := serviceOrigin(raw)
		want, wantOK := ServiceOrigin(raw)
		if got != want || gotOK != wantOK {
			t.Errorf("%q: %q %v, want %q %v", raw, got, gotOK, want, wantOK)
		}
	})
}
