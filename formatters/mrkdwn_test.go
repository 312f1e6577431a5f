package formatters

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		mode textMode
		want string
	}{
		{"plain", "web-0001", 100, modeLine, "web-0001"},
		{"entities", "a & b <c> d", 100, modeLine, "a &amp; b &lt;c&gt; d"},
		{"broadcast", "<!channel>", 100, modeLine, "&lt;!channel&gt;"},
		{"backticks", "```x```", 100, modeLine, "ˋˋˋxˋˋˋ"},
		{"line breaks in a line", "a\nb\tc", 100, modeLine, "a b c"},
		{"line breaks in a block", "a\nb", 100, modeBlock, "a\nb"},
		{"control characters", "a\x1b[31mb\x00", 100, modeLine, "a[31mb"},
		{"fits exactly", "abcde", 5, modeLine, "abcde"},
		{"cut", "abcdef", 5, modeLine, "abcd…"},
		{"cut counts runes", "ééééééé", 5, modeLine, "éééé…"},
		{"cut before an entity", "abc&def", 5, modeLine, "abc…"},
		{"entity that fits", "ab&", 7, modeLine, "ab&amp;"},
		{"entity one short", "ab&", 6, modeLine, "ab…"},
		{"invalid UTF-8", "a\xffb", 10, modeLine, "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := escape(tc.in, tc.n, tc.mode)
			if got != tc.want {
				t.Errorf("escape(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
			if utf8.RuneCountInString(got) > tc.n {
				t.Errorf("escape(%q, %d) has %d characters", tc.in, tc.n, utf8.RuneCountInString(got))
			}
		})
	}
}

func TestMentionAndLink(t *testing.T) {
	for in, want := range map[string]string{
		"U024BE7LH":  "<@U024BE7LH>",
		"W0123ABCD":  "<@W0123ABCD>",
		"":           "",
		"<!channel>": "",
		"U12>x":      "",
		"u024be7lh":  "",
	} {
		if got := mention(in); got != want {
			t.Errorf("mention(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"https://git.example.com/c/e4a91b2", "<https://git.example.com/c/e4a91b2|e4a91b2>"},
		{"https://git.example.com/c?a=1&b=2", "<https://git.example.com/c?a=1&amp;b=2|e4a91b2>"},
		{"https://evil.example|<!channel>", "e4a91b2"},
		{"javascript:alert(1)", "e4a91b2"},
		{"https://git.example.com/a b", "e4a91b2"},
		{"", "e4a91b2"},
	} {
		if got := link(tc.url, "e4a91b2", 40); got != tc.want {
			t.Errorf("link(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abc &amp; def", 7, "abc …"},
		{"abc <@U1234> def", 8, "abc …"},
		{"abcdefgh", 5, "abcd…"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestTextClean(t *testing.T) {
	got := textClean("a\x1b[2Jb\n\n  c\td\u2028e", 0)
	if got != "a[2Jb c de" {
		t.Errorf("textClean = %q", got)
	}
	if got := textClean(strings.Repeat("x", 500), 10); got != "xxxxxxx..." {
		t.Errorf("textClean cut = %q", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -1200: "-1,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
