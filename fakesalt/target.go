package fakesalt

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// matcher selects minions the way the master's CkMinions does, for the
// target types Sift uses and a few more.
type matcher func(m *Minion) bool

// listTarget reads a list target: a JSON list or a comma-separated string.
func listTarget(tgt any) ([]string, error) {
	switch t := tgt.(type) {
	case string:
		var ids []string
		for _, id := range strings.Split(t, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		return ids, nil
	case []any:
		ids := make([]string, 0, len(t))
		for _, v := range t {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("list target: %v is not a string", v)
			}
			ids = append(ids, s)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("list target: %T is neither a string nor a list", tgt)
}

// compile turns a target of any supported type into a matcher.
func compile(tgt any, tgtType string) (matcher, error) {
	if tgtType == "" {
		tgtType = "glob"
	}
	if tgtType == "list" {
		ids, err := listTarget(tgt)
		if err != nil {
			return nil, err
		}
		return func(m *Minion) bool { return slices.Contains(ids, m.ID) }, nil
	}
	expr, ok := tgt.(string)
	if !ok {
		return nil, fmt.Errorf("%s target: %T is not a string", tgtType, tgt)
	}
	switch tgtType {
	case "glob":
		return globMatcher(expr), nil
	case "grain":
		return grainMatcher(expr)
	case "pcre":
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		return func(m *Minion) bool { return re.MatchString(m.ID) }, nil
	case "compound":
		p := &compoundParser{words: strings.Fields(expr)}
		mt, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.pos != len(p.words) {
			return nil, fmt.Errorf("compound target: unexpected %q", p.words[p.pos])
		}
		return mt, nil
	}
	return nil, fmt.Errorf("target type %q: not supported", tgtType)
}

func globMatcher(pattern string) matcher {
	return func(m *Minion) bool {
		ok, err := path.Match(pattern, m.ID)
		return err == nil && ok
	}
}

// grainMatcher matches "key:value", the value a glob as in Salt.
func grainMatcher(expr string) (matcher, error) {
	key, pattern, ok := strings.Cut(expr, ":")
	if !ok || key == "" {
		return nil, fmt.Errorf("grain target %q: not key:value", expr)
	}
	return func(m *Minion) bool {
		v, ok := m.Grains[key]
		if !ok {
			return false
		}
		hit, err := path.Match(pattern, v)
		return err == nil && hit
	}, nil
}

// compoundParser reads Salt's compound expressions: words joined by and,
// or, not and parentheses (each a word of its own, as Salt requires), with
// not binding tighter than and, and tighter than or.
type compoundParser struct {
	words []string
	pos   int
}

var errEmpty = errors.New("compound target: expression ends too early")

func (p *compoundParser) peek() string {
	if p.pos < len(p.words) {
		return p.words[p.pos]
	}
	return ""
}

func (p *compoundParser) parseOr() (matcher, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.pos++
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(m *Minion) bool { return l(m) || right(m) }
	}
	return left, nil
}

func (p *compoundParser) parseAnd() (matcher, error) {
	left, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" {
		p.pos++
		right, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(m *Minion) bool { return l(m) && right(m) }
	}
	return left, nil
}

func (p *compoundParser) parseNot() (matcher, error) {
	switch w := p.peek(); w {
	case "":
		return nil, errEmpty
	case "not":
		p.pos++
		inner, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return func(m *Minion) bool { return !inner(m) }, nil
	case "(":
		p.pos++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("compound target: missing )")
		}
		p.pos++
		return inner, nil
	case "and", "or", ")":
		return nil, fmt.Errorf("compound target: unexpected %q", w)
	default:
		p.pos++
		return word(w)
	}
}

// word reads one matcher of a compound expression.
func word(w string) (matcher, error) {
	prefix, rest, ok := strings.Cut(w, "@")
	if !ok || len(prefix) != 1 {
		return globMatcher(w), nil
	}
	switch prefix {
	case "G":
		return grainMatcher(rest)
	case "L":
		return compile(rest, "list")
	case "E":
		return compile(rest, "pcre")
	}
	return nil, fmt.Errorf("compound target: matcher %q not supported", prefix+"@")
}
