package triage

import (
	"strings"
)

// Placeholders a template holds where a message had a value that differs
// from minion to minion.
const (
	// Wild stands for numbers, hex ids, UUIDs, addresses, timestamps, pids,
	// job ids and temp names, and, after clustering, for any token on which
	// the messages of one cluster differ.
	Wild         = "<*>"
	maskMinion   = "<minion>"
	maskPath     = "<path>"
	maskHost     = "<host>"
	maskQuoted   = "<q>"
	maskURLPath  = "/<path>"
	maskUserinfo = "<user>@"
	// maxQuotedBlanks bounds the words of a quoted value: a quote around
	// more is prose. Counted in words, not bytes, so that the length of
	// the values inside does not decide.
	maxQuotedBlanks = 16
	maxMaskInput    = 2048
	maskTokens      = 64 // kept at each end of a long message
)

// Mask returns the template of a failure message: the message with what
// differs from minion to minion masked, so that one failure seen on many
// minions has one template. It reads the message once, by hand, with no
// regular expression, and never fails.
//
// Masked, token by token (a token is a run between blanks; whitespace
// collapses to one space):
//   - the minion's own id, wherever it stands between word boundaries, as
//     <minion>;
//   - absolute paths (/tmp/tmpa8x_3k, /var/cache/salt/…) as <path>;
//   - quoted values ('…' or "…" opening a token, up to 16 words on one
//     line) as <q>, except salt:// paths and URLs inside the quotes;
//   - URLs as their origin (scheme://host[:port], which names the service
//     at fault) followed by /<path> when they have a path: per-minion Vault
//     and HTTP paths vanish, the service stays; credentials in a URL are
//     dropped;
//   - host names (dotted lowercase names ending in a top-level domain such
//     as .com, .net, .internal, .local or a two-letter country) as <host>;
//   - within a token, every run of letters, digits and underscores (a
//     piece) that holds a digit, a run of eight or more hex letters, or a
//     Python temp name (tmp + 6 or more characters) as <*>; pieces of hex
//     letters only (cafe) joined to such a piece, and runs of such pieces
//     joined by . : - _ / + , collapse into one <*>, so an IP with a port,
//     a UUID, a timestamp or a version of any length is one <*>;
//   - month and weekday names next to a number (syslog and journal
//     timestamps) as <*>.
//
// Kept: salt:// paths (they name the file at fault), words, punctuation.
// A message of more than 128 tokens is masked as its first and last 64
// tokens (the head says where, the tail of a traceback
// says what; the frames between are the same on every minion, and masking
// them costs time on every one).
//
// The template depends on the lengths of the digit-holding pieces of a
// message only through their presence: TemplateOf relies on it.
//
// Mask is deterministic and safe for concurrent use. It is the grouping
// key of a failure, not a text for people: show the message itself.
func Mask(msg, minionID string) string {
	head, tail, _ := cutLong(msg)
	m := masker{msg: head, minion: minionID, out: make([]byte, 0, len(head)+len(tail)+8)}
	m.run()
	if tail != "" {
		m.out = append(m.out, " … "...)
		m.msg, m.wild = tail, false
		m.run()
	}
	return string(m.out)
}

// cutLong returns what Mask masks of a message: all of it, or its first
// and last maskTokens tokens when it has more than twice as many. The cut
// counts tokens, not bytes, so that it falls at the same place on every
// minion whatever the length of their values. Only a message of abnormal
// tokens (a head or tail over maxMaskInput, or over 8 KiB in few tokens)
// is cut by bytes, at maxMaskInput on each side, and byBytes says so.
func cutLong(msg string) (head, tail string, byBytes bool) {
	if len(msg) < 4*maskTokens-1 {
		// Too short to hold 2*maskTokens tokens (each a byte and a blank
		// after all but the last): the ends below would meet.
		return msg, "", false
	}
	end := 0
	for n := 0; n < maskTokens && end < len(msg); n++ {
		for end < len(msg) && isSpace(msg[end]) {
			end++
		}
		for end < len(msg) && !isSpace(msg[end]) {
			end++
		}
	}
	start := len(msg)
	for n := 0; n < maskTokens && start > end; n++ {
		for start > end && isSpace(msg[start-1]) {
			start--
		}
		for start > end && !isSpace(msg[start-1]) {
			start--
		}
	}
	switch {
	case start <= end && len(msg) <= 4*maxMaskInput:
		return msg, "", false // few tokens: all of it
	case start <= end, end > maxMaskInput, len(msg)-start > maxMaskInput:
		return msg[:maxMaskInput], msg[len(msg)-maxMaskInput:], true
	}
	return msg[:end], msg[start:], false
}

type masker struct {
	msg    string
	minion string
	out    []byte
	// wild reports that the output ends with <*> (at wildEnd), possibly
	// followed by up to two joiners: the next masked piece folds into it.
	wild    bool
	wildEnd int
	// hexAt is where the output's last piece starts when it is all hex
	// letters (cafe, dead), -1 otherwise: a masked piece joined to it
	// takes it in (UUID groups, hex ids that happen to hold no digit).
	hexAt, hexEnd int
}

// Byte classes, looked up rather than compared: Mask runs on every
// message of every minion.
const (
	classSpace = 1 << iota
	classWord
)

var byteClass = func() (t [256]uint8) {
	for _, c := range []byte(" \n\t\r\v\f") {
		t[c] = classSpace
	}
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80 {
			t[c] = classWord
		}
	}
	return t
}()

func isSpace(c byte) bool { return byteClass[c] == classSpace }

// isWord reports bytes of a token's pieces: ASCII letters, digits, the
// underscore, and any byte of a multi-byte UTF-8 sequence.
func isWord(c byte) bool { return byteClass[c] == classWord }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isJoiner reports the punctuation that joins the pieces of one value: the
// dots of an address, the colons of a time, the dashes of a UUID.
func isJoiner(c byte) bool {
	switch c {
	case '.', ':', '-', '_', '/', '+', ',':
		return true
	}
	return false
}

// opens reports bytes after which a new value may start inside a token:
// `key=/path`, `(pid`, `['x']`.
func opens(c byte) bool {
	switch c {
	case '(', '[', '{', '<', '=', ',', ':', ';', '@':
		return true
	}
	return isSpace(c)
}

func (m *masker) run() {
	s := m.msg
	m.hexAt = -1
	i := 0
	for i < len(s) {
		if isSpace(s[i]) {
			for i < len(s) && isSpace(s[i]) {
				i++
			}
			if len(m.out) > 0 && i < len(s) {
				m.out = append(m.out, ' ')
				m.wild, m.hexAt = false, -1
			}
			continue
		}
		i = m.value(i)
	}
}

func (m *masker) lit(s string) {
	m.out = append(m.out, s...)
	m.wild, m.hexAt = false, -1
}

// hexLit writes a piece of hex letters only, which a masked piece joined
// to it may still take in.
func (m *masker) hexLit(s string) {
	m.hexAt = len(m.out)
	m.out = append(m.out, s...)
	m.hexEnd = len(m.out)
	m.wild = false
}

func (m *masker) litByte(c byte) {
	switch {
	case m.wild && isJoiner(c) && len(m.out)-m.wildEnd < 2:
		m.out = append(m.out, c) // dropped if a masked piece follows
		return
	case m.hexAt >= 0 && isJoiner(c) && len(m.out)-m.hexEnd < 2:
		m.out = append(m.out, c)
		return
	}
	m.out = append(m.out, c)
	m.wild, m.hexAt = false, -1
}

func (m *masker) masked() {
	switch {
	case m.wild:
		m.out = m.out[:m.wildEnd] // folds into the <*> already written
		return
	case m.hexAt >= 0:
		m.out = m.out[:m.hexAt] // takes the hex piece before it in
	}
	m.out = append(m.out, Wild...)
	m.wild, m.wildEnd, m.hexAt = true, len(m.out), -1
}

// boundary reports whether a value may start at i: at the start of the
// message or of a token, or after an opening character.
func (m *masker) boundary(i int) bool {
	return i == 0 || opens(m.msg[i-1]) || m.msg[i-1] == '\'' || m.msg[i-1] == '"'
}

// value masks from i, a non-blank byte, to the end of what it recognises,
// and returns where it stopped.
func (m *masker) value(i int) int {
	s := m.msg
	c := s[i]
	boundary := m.boundary(i)
	if boundary {
		if j, ok := m.special(i); ok {
			return j
		}
	}
	if !isWord(c) {
		m.litByte(c)
		return i + 1
	}
	// A piece: a run of word bytes, or the minion's id, which may hold
	// dashes and dots.
	if m.minion != "" && c == m.minion[0] && (i == 0 || !isWord(s[i-1])) && m.isMinionAt(i) {
		m.lit(maskMinion)
		return i + len(m.minion)
	}
	// One pass over the piece says whether it varies: a digit, a run of
	// eight hex letters.
	variable, hexRun := false, 0
	j := i
	for ; j < len(s); j++ {
		c := s[j]
		if !isWord(c) {
			break
		}
		switch {
		case c >= '0' && c <= '9':
			variable = true
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			if hexRun++; hexRun >= 8 {
				variable = true
			}
			continue
		}
		hexRun = 0
	}
	if boundary && j < len(s) && (s[j] == '-' || s[j] == '.') {
		// Only a piece followed by a dash or a dot may start a host name.
		// One that holds the minion's id is not another host: the id is
		// masked as such.
		if k, ok := hostAt(s, i); ok && !m.holdsMinion(i, k) {
			m.lit(maskHost)
			return k
		}
	}
	piece := s[i:j]
	switch {
	case variable || len(piece) >= 9 && piece[:3] == "tmp" || m.dateWord(piece, j):
		m.masked()
	case allHex(piece):
		if m.wild {
			m.masked() // joined to a masked piece: part of the same value
		} else {
			m.hexLit(piece)
		}
	default:
		m.lit(piece)
	}
	return j
}

// special recognises a value that starts at a boundary with a byte that
// is not a word's: a quote, an absolute path; or a salt:// path or a URL.
func (m *masker) special(i int) (int, bool) {
	s := m.msg
	switch c := s[i]; c {
	case '\'', '"':
		return m.quoted(i)
	case '/':
		if i+1 < len(s) && !isSpace(s[i+1]) && s[i+1] != '/' {
			return m.path(i), true
		}
	case '~':
		if i+1 < len(s) && s[i+1] == '/' {
			return m.path(i), true
		}
	case 's':
		if strings.HasPrefix(s[i:], "salt://") {
			j := tokenEnd(s, i)
			m.lit(s[i:j])
			return j, true
		}
	case 'h', 'H':
		if hasPrefixFold(s[i:], "http") {
			if j, ok := m.url(i); ok {
				return j, true
			}
		}
	}
	return i, false
}

// quoted masks a quoted value opening at i; a quote that does not close
// on its line (an apostrophe, a quote around prose) is punctuation.
func (m *masker) quoted(i int) (int, bool) {
	s := m.msg
	q := s[i]
	end := -1
	blanks := 0
	for k := i + 1; k < len(s); k++ {
		if s[k] == '\n' {
			break
		}
		if isSpace(s[k]) && !isSpace(s[k-1]) {
			if blanks++; blanks > maxQuotedBlanks {
				break
			}
		}
		if s[k] == q && (k+1 == len(s) || !isWord(s[k+1])) {
			end = k
			break
		}
	}
	if end < 0 {
		return i, false
	}
	inner := s[i+1 : end]
	m.lit(s[i : i+1])
	switch {
	case strings.HasPrefix(inner, "salt://") && !strings.ContainsAny(inner, " \t"):
		m.lit(inner)
	case hasPrefixFold(inner, "http://") || hasPrefixFold(inner, "https://"):
		sub := masker{msg: inner, minion: m.minion}
		sub.run()
		m.lit(string(sub.out))
	default:
		m.lit(maskQuoted)
	}
	m.lit(s[end : end+1])
	return end + 1, true
}

// path masks an absolute path from i to the end of its token, keeping the
// punctuation that closes a sentence or a bracket after it.
func (m *masker) path(i int) int {
	j := tokenEnd(m.msg, i)
	m.lit(maskPath)
	return j // what tokenEnd left (a closing bracket, a full stop) the main loop reads
}

// tokenEnd returns where the value starting at i ends: at a blank, a quote
// or a closing bracket, less the punctuation that ends a sentence.
func tokenEnd(s string, i int) int {
	j := i
	for j < len(s) && !isSpace(s[j]) && s[j] != '\'' && s[j] != '"' && s[j] != ')' && s[j] != ']' && s[j] != '}' && s[j] != '>' && s[j] != '<' {
		j++
	}
	for j > i+1 && strings.IndexByte(".,;:!?", s[j-1]) >= 0 {
		j--
	}
	return j
}

// url writes a URL as its origin, and /<path> when it has more.
func (m *masker) url(i int) (int, bool) {
	s := m.msg
	rest := s[i:]
	var scheme string
	switch {
	case hasPrefixFold(rest, "https://"):
		scheme = "https://"
	case hasPrefixFold(rest, "http://"):
		scheme = "http://"
	default:
		return i, false
	}
	j := tokenEnd(s, i)
	u := s[i+len(scheme) : j]
	hostEnd := strings.IndexAny(u, "/?#")
	host, tail := u, ""
	if hostEnd >= 0 {
		host, tail = u[:hostEnd], u[hostEnd:]
	}
	if host == "" {
		return i, false
	}
	m.lit(scheme)
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		m.lit(maskUserinfo) // credentials never reach a template
		host = host[at+1:]
	}
	switch {
	case m.minion != "" && strings.Contains(host, m.minion):
		m.lit(strings.ToLower(replaceMinion(host, m.minion, maskMinion)))
	default:
		m.lit(strings.ToLower(host))
	}
	if tail != "" && tail != "/" {
		m.lit(maskURLPath)
	}
	return j, true
}

// isMinionAt reports whether the minion's id stands at i, not followed by
// a byte that would make it part of a longer name (web-1 in web-10).
func (m *masker) isMinionAt(i int) bool {
	id := m.minion
	if id == "" || !strings.HasPrefix(m.msg[i:], id) {
		return false
	}
	k := i + len(id)
	return k == len(m.msg) || !isWord(m.msg[k])
}

// holdsMinion reports whether the minion's id stands in s[i:k], as a
// word of its own.
func (m *masker) holdsMinion(i, k int) bool {
	if m.minion == "" {
		return false
	}
	for j := i; j < k; {
		n := strings.Index(m.msg[j:k], m.minion)
		if n < 0 {
			return false
		}
		j += n
		if (j == 0 || !isWord(m.msg[j-1])) && m.isMinionAt(j) {
			return true
		}
		j++
	}
	return false
}

// dateWord reports a month or weekday name followed by a number: part of
// a syslog or journal timestamp.
func (m *masker) dateWord(piece string, j int) bool {
	if len(piece) != 3 || piece[0] < 'A' || piece[0] > 'Z' {
		return false
	}
	switch piece {
	case "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
		"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
	default:
		return false
	}
	s := m.msg
	for j < len(s) && (isSpace(s[j]) || s[j] == ',') {
		j++
	}
	return j < len(s) && isDigit(s[j])
}

// allHex reports a piece of hex digits only.
func allHex(p string) bool {
	for k := 0; k < len(p); k++ {
		if !isHex(p[k]) {
			return false
		}
	}
	return true
}

// hostAt reports a host name at i: dot-separated lowercase labels of
// letters, digits and dashes, at least two, the last a top-level domain.
// Python module paths (salt.utils.http) and file names (nginx.conf) end in
// something else and stay.
func hostAt(s string, i int) (int, bool) {
	j := i
	dots, lastDot := 0, -1
	for j < len(s) {
		c := s[j]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-':
		case c == '.':
			if j == i || s[j-1] == '.' || j+1 >= len(s) || !(s[j+1] >= 'a' && s[j+1] <= 'z' || isDigit(s[j+1])) {
				goto done
			}
			dots++
			lastDot = j
		default:
			goto done
		}
		j++
	}
done:
	if dots == 0 || (j < len(s) && (isWord(s[j]) || s[j] == '.' && j+1 < len(s) && isWord(s[j+1]))) {
		return i, false
	}
	if !topLevelDomain(s[lastDot+1 : j]) {
		return i, false
	}
	return j, true
}

// topLevelDomain reports the last label of a host name: the generic
// domains hosts of a fleet live under, and two-letter country codes that
// are not also file extensions.
func topLevelDomain(l string) bool {
	switch l {
	case "com", "net", "org", "io", "local", "internal", "lan", "corp", "example", "test",
		"localdomain", "intra", "intranet", "cloud", "dev", "svc", "arpa", "info", "biz", "home", "priv", "prod", "int":
		return true
	case "py", "sh", "js", "rb", "pl", "so", "gz", "xz", "md", "ts", "go", "rs", "cc", "hh", "el", "mo", "po", "db", "fs":
		return false
	}
	return len(l) == 2 && l[0] >= 'a' && l[0] <= 'z' && l[1] >= 'a' && l[1] <= 'z'
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
