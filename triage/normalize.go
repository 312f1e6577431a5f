package triage

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	urlPattern  = regexp.MustCompile(`https?://[^\s'"<>\]\[)(,;]+`)
	saltPath    = regexp.MustCompile(`salt://[^\s'"]+`)
	ipv4Pattern = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b`)
	hexPattern  = regexp.MustCompile(`\b[0-9a-fA-F]{7,}\b`)
	fqdnPattern = regexp.MustCompile(`\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+){2,}\b`)
	pathPattern = regexp.MustCompile(`(?:^|[\s'"(=])(/[^\s'"]+)`)
	numPattern  = regexp.MustCompile(`\d+(?:\.\d+)?`)
	spaces      = regexp.MustCompile(`\s+`)
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

// URLsIn returns the http(s) URLs named in a text.
func URLsIn(s string) []string {
	if !strings.Contains(s, "http") {
		return nil
	}
	return urlPattern.FindAllString(s, -1)
}

// Normalize rewrites the parts of a message that differ from minion to
// minion (its own name, numbers, hashes, addresses, host names, file paths)
// so that the same failure on many minions has one signature. URLs are kept
// as their origin and salt:// paths as they are: they name the culprit.
func Normalize(msg, minionID string) string {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	var kept []string
	keep := func(s string) string {
		kept = append(kept, s)
		return "\x00"
	}
	msg = urlPattern.ReplaceAllStringFunc(msg, func(u string) string {
		if o, ok := ServiceOrigin(u); ok {
			return keep(o)
		}
		return keep("<url>")
	})
	msg = saltPath.ReplaceAllStringFunc(msg, keep)
	if minionID != "" {
		msg = strings.ReplaceAll(msg, minionID, "<minion>")
	}
	msg = ipv4Pattern.ReplaceAllString(msg, "<ip>")
	msg = hexPattern.ReplaceAllStringFunc(msg, func(h string) string {
		if strings.IndexFunc(h, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
			return h // all digits: left to the number rule
		}
		return "<hex>"
	})
	msg = fqdnPattern.ReplaceAllString(msg, "<host>")
	msg = pathPattern.ReplaceAllStringFunc(msg, func(p string) string {
		i := strings.IndexByte(p, '/')
		return p[:i] + "<path>"
	})
	msg = numPattern.ReplaceAllString(msg, "<n>")
	msg = strings.TrimSpace(spaces.ReplaceAllString(msg, " "))
	if len(kept) > 0 {
		var b strings.Builder
		k := 0
		for _, r := range msg {
			if r == 0 && k < len(kept) {
				b.WriteString(kept[k])
				k++
				continue
			}
			b.WriteRune(r)
		}
		msg = b.String()
	}
	return msg
}
