package fleetgen

import (
	"embed"
	"fmt"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"time"
)

// The corpus: real-world Salt failure comments and compile errors, one per
// file, written as templates with slots for what differs per minion.
//
// A file is a header of "key: value" lines, a blank line, and the message.
// Keys: kind (state or compile), fun, state (the state id, or the sls of a
// compile error), sls, error_types and urls (comma-separated). Slots in the
// message and in urls:
//
//	{minion} the minion's id         {fqdn} its fully qualified name
//	{ip} an IPv4 address             {port} a port
//	{pid} a process id               {jid} a Salt job id
//	{uuid} a UUID                    {hex:N} N hex digits
//	{tmp} a Python temp name         {int:A-B} an integer in [A, B]
//	{iso} an ISO 8601 time           {syslog} a syslog time (Dec  1 14:03:22)
//	{journal} a journal time (Tue 2026-12-01 14:03:22 UTC)
//	{time} a time of day
//
// Any other brace is text (Jinja, Python dicts).
//
//go:embed testdata/failures/*.txt
var corpusFiles embed.FS

// Failure is one failure of the corpus, before its slots are filled.
type Failure struct {
	// Name is the file's name without its number and extension.
	Name string
	// Compile is true for a compile error; false for a failed state.
	Compile    bool
	Fun        string
	StateID    string
	SLS        string
	ErrorTypes []string
	URLs       []string
	// Text is the message with its slots.
	Text string
}

// Corpus returns the failures of the corpus, in file order.
func Corpus() ([]Failure, error) {
	entries, err := corpusFiles.ReadDir("testdata/failures")
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	out := make([]Failure, 0, len(entries))
	for _, e := range entries {
		b, err := corpusFiles.ReadFile("testdata/failures/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		f, err := parseFailure(e.Name(), string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func parseFailure(file, text string) (Failure, error) {
	head, body, ok := strings.Cut(text, "\n\n")
	if !ok {
		return Failure{}, fmt.Errorf("corpus: %s: no blank line between header and message", file)
	}
	name := strings.TrimSuffix(file, path.Ext(file))
	if _, rest, ok := strings.Cut(name, "-"); ok {
		name = rest
	}
	f := Failure{Name: name, Text: strings.TrimRight(body, "\n")}
	for line := range strings.SplitSeq(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return Failure{}, fmt.Errorf("corpus: %s: header line %q is not key: value", file, line)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "kind":
			switch v {
			case "state":
			case "compile":
				f.Compile = true
			default:
				return Failure{}, fmt.Errorf("corpus: %s: kind %q (want state or compile)", file, v)
			}
		case "fun":
			f.Fun = v
		case "state":
			f.StateID = v
		case "sls":
			f.SLS = v
		case "error_types":
			f.ErrorTypes = strings.Split(v, ",")
		case "urls":
			f.URLs = strings.Split(v, ",")
		default:
			return Failure{}, fmt.Errorf("corpus: %s: unknown header key %q", file, k)
		}
	}
	if f.StateID == "" || (!f.Compile && (f.Fun == "" || f.SLS == "")) {
		return Failure{}, fmt.Errorf("corpus: %s: a state needs fun, state and sls; a compile error needs state", file)
	}
	return f, nil
}

// Values are the per-minion values slots are filled with.
type Values struct {
	Minion string
	// Domain is the minion's DNS domain: {fqdn} is Minion.Domain.
	Domain string
	Rand   *rand.Rand
	// Now is the time timestamps are drawn around.
	Now time.Time
}

// Fill returns s with its slots filled from v. Random slots draw from
// v.Rand, so two minions get different values.
func Fill(s string, v Values) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 64)
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		// The innermost brace pair: a slot inside a Python dict or Jinja
		// braces is still a slot.
		if k := strings.LastIndexByte(s[i:i+j], '{'); k > 0 {
			i, j = i+k, j-k
		}
		b.WriteString(s[:i])
		if !fillSlot(&b, s[i+1:i+j], v) {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

const tempChars = "abcdefghijklmnopqrstuvwxyz0123456789_"

func fillSlot(b *strings.Builder, slot string, v Values) bool {
	r := v.Rand
	name, arg, _ := strings.Cut(slot, ":")
	at := v.Now.Add(-time.Duration(r.IntN(3600)) * time.Second).Add(time.Duration(r.IntN(1e6)) * time.Microsecond)
	switch name {
	case "minion":
		b.WriteString(v.Minion)
	case "fqdn":
		b.WriteString(v.Minion + "." + v.Domain)
	case "ip":
		fmt.Fprintf(b, "10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
	case "port":
		b.WriteString(strconv.Itoa(1024 + r.IntN(64511)))
	case "pid":
		b.WriteString(strconv.Itoa(300 + r.IntN(4194000)))
	case "jid":
		b.WriteString(at.Format("20060102150405") + fmt.Sprintf("%06d", r.IntN(1e6)))
	case "uuid":
		h := hexString(r, 32)
		b.WriteString(h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:])
	case "hex":
		n, err := strconv.Atoi(arg)
		if err != nil || n <= 0 {
			return false
		}
		b.WriteString(hexString(r, n))
	case "tmp":
		b.WriteString("tmp")
		for range 8 {
			b.WriteByte(tempChars[r.IntN(len(tempChars))])
		}
	case "int":
		lo, hi, ok := strings.Cut(arg, "-")
		a, err1 := strconv.Atoi(lo)
		z, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || z < a {
			return false
		}
		b.WriteString(strconv.Itoa(a + r.IntN(z-a+1)))
	case "iso":
		b.WriteString(at.Format("2006-01-02T15:04:05.000000-07:00"))
	case "syslog":
		b.WriteString(at.Format(time.Stamp))
	case "journal":
		b.WriteString(at.Format("Mon 2006-01-02 15:04:05 MST"))
	case "time":
		b.WriteString(at.Format("15:04:05"))
	default:
		return false
	}
	return true
}

func hexString(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}
