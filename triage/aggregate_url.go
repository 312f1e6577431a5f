package triage

import "strings"

// serviceOrigin is ServiceOrigin without parsing the common URL: a
// lowercase http or https scheme, a host of lowercase letters, digits,
// dots and dashes with an optional numeric port, and after it nothing
// net/url would refuse (a control byte, or a "%" it might). Its origin is
// then a prefix of the URL, with nothing to copy; anything else is parsed.
func serviceOrigin(raw string) (string, bool) {
	s := strings.TrimRight(raw, ".:")
	var end int
	switch {
	case strings.HasPrefix(s, "https://"):
		end = len("https://")
	case strings.HasPrefix(s, "http://"):
		end = len("http://")
	default:
		return ServiceOrigin(raw)
	}
	host, colon := end, -1
	for ; end < len(s); end++ {
		c := s[end]
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-':
			if colon >= 0 && (c < '0' || c > '9') {
				return ServiceOrigin(raw) // a port that is not a number
			}
			continue
		case c == ':' && colon < 0:
			colon = end
			continue
		}
		break
	}
	if end == host {
		return ServiceOrigin(raw) // no host, or one net/url reads its own way
	}
	for i := end; i < len(s); i++ {
		switch c := s[i]; {
		case i == end && c != '/' && c != '?' && c != '#',
			c < ' ' || c == 0x7f || c == '%':
			return ServiceOrigin(raw)
		}
	}
	return s[:end], true
}
