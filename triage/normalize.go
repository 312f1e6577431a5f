package triage

import (
	"net/url"
	"strings"
)

// ServiceOrigin returns scheme://host[:port] of an http(s) URL, the key under
// which failures naming one external service are grouped.
func ServiceOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimRight(raw, ".:"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// URLsIn returns the http(s) URLs named in a text. A URL ends at a blank, a
// quote, a bracket, a comma or a semicolon.
func URLsIn(s string) []string { return appendURLs(nil, s) }

// appendURLs appends to out the URLs URLsIn returns.
func appendURLs(out []string, s string) []string {
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			return out
		}
		k += i
		start := -1
		switch {
		case k >= 5 && s[k-5:k] == "https":
			start = k - 5
		case k >= 4 && s[k-4:k] == "http":
			start = k - 4
		}
		end := k + 3
		for end < len(s) && !urlStop(s[end]) {
			end++
		}
		if start >= 0 && end > k+3 {
			out = append(out, s[start:end])
		}
		i = end
	}
}

func urlStop(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f', '\'', '"', '<', '>', '[', ']', '(', ')', ',', ';':
		return true
	}
	return false
}
