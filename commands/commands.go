// Package commands turns what a person typed (a slash command, an @sift
// mention, the CLI's arguments) into a triage request or a usage error that
// says how to fix it. It knows nothing of Slack's transport or of Salt.
package commands

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sift-chatops/sift/triage"
)

// Request is a parsed command: a scope to triage, or a request for help.
type Request struct {
	Help  bool
	Scope triage.Scope
}

// UsageError is a command the person must correct; its text says how.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// SlashNames are the configured slash command names, e.g. /blame-dc.
type SlashNames struct {
	Minion     string
	Datacenter string
	Group      string
}

// DefaultSlashNames are the slash commands of the shipped Slack app manifest.
var DefaultSlashNames = SlashNames{Minion: "/blame-minion", Datacenter: "/blame-dc", Group: "/blame-group"}

// Parser validates commands against the inventory.
type Parser struct {
	Inventory triage.Inventory
	Names     SlashNames
}

// kindWords maps the words of a mention or of the CLI to a scope kind.
var kindWords = map[string]triage.ScopeKind{
	"minion": triage.ScopeMinion, "dc": triage.ScopeDatacenter, "datacenter": triage.ScopeDatacenter,
	"group": triage.ScopeGroup,
}

// Kind returns the scope kind a word names: minion, dc, datacenter or group.
func Kind(word string) (triage.ScopeKind, bool) {
	k, ok := kindWords[strings.ToLower(word)]
	return k, ok
}

var (
	mentionToken = regexp.MustCompile(`<@[A-Z0-9]+(?:\|[^>]*)?>`)
	// Slack turns a minion id that looks like a host name into a link:
	// <http://web-1.example.com|web-1.example.com>.
	slackLink = regexp.MustCompile(`<(?:https?://|mailto:)?[^|>]*\|([^>]*)>|<(?:https?://)([^|>]*)>`)
)

// clean undoes Slack's formatting of what a person typed.
func clean(text string) []string {
	text = mentionToken.ReplaceAllString(text, " ")
	text = slackLink.ReplaceAllString(text, "$1$2")
	text = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "\u00a0", " ").Replace(text)
	return strings.Fields(text)
}

// Slash parses a slash command (its name and the text after it).
func (p Parser) Slash(command, text string) (Request, error) {
	var kind triage.ScopeKind
	switch command {
	case p.Names.Minion:
		kind = triage.ScopeMinion
	case p.Names.Datacenter:
		kind = triage.ScopeDatacenter
	case p.Names.Group:
		kind = triage.ScopeGroup
	default:
		return Request{}, &UsageError{Msg: fmt.Sprintf("unknown command %s. %s", command, p.usageLine())}
	}
	words := clean(text)
	if len(words) == 1 && strings.EqualFold(words[0], "help") {
		return Request{Help: true}, nil
	}
	return p.scope(kind, words, command)
}

// Mention parses the text of an @sift mention: "dc ams01", "help", …
func (p Parser) Mention(text string) (Request, error) {
	words := clean(text)
	if len(words) == 0 || strings.EqualFold(words[0], "help") {
		return Request{Help: true}, nil
	}
	kind, ok := Kind(words[0])
	if !ok {
		return Request{}, &UsageError{Msg: fmt.Sprintf("I don't know %q. %s", truncate(words[0], 40), p.usageLine())}
	}
	return p.scope(kind, words[1:], "@sift "+strings.ToLower(words[0]))
}

// Args parses the CLI's `KIND NAME` arguments.
func (p Parser) Args(args []string) (Request, error) {
	if len(args) == 0 {
		return Request{}, &UsageError{Msg: "missing scope: use minion ID, dc NAME or group NAME"}
	}
	kind, ok := Kind(args[0])
	if !ok {
		return Request{}, &UsageError{Msg: fmt.Sprintf("unknown scope %q: use minion ID, dc NAME or group NAME", truncate(args[0], 40))}
	}
	return p.scope(kind, args[1:], strings.ToLower(args[0]))
}

func (p Parser) scope(kind triage.ScopeKind, words []string, how string) (Request, error) {
	what := map[triage.ScopeKind]string{triage.ScopeMinion: "MINION-ID", triage.ScopeDatacenter: "DATACENTER", triage.ScopeGroup: "GROUP"}[kind]
	switch {
	case len(words) == 0:
		return Request{}, &UsageError{Msg: fmt.Sprintf("missing %s: %s %s%s", strings.ToLower(what), how, what, p.known(kind))}
	case len(words) > 1:
		return Request{}, &UsageError{Msg: fmt.Sprintf("one %s at a time: %s %s (got %d words)", strings.ToLower(what), how, what, len(words))}
	}
	s := triage.Scope{Kind: kind, Name: words[0]}
	if _, err := p.Inventory.Resolve(s); err != nil {
		// Every resolution error is the person's to fix: an unknown name
		// (with the closest known ones) or a minion id Salt could misread.
		return Request{}, &UsageError{Msg: err.Error()}
	}
	return Request{Scope: s}, nil
}

func (p Parser) known(kind triage.ScopeKind) string {
	var names []string
	switch kind {
	case triage.ScopeDatacenter:
		names = p.datacenters()
	case triage.ScopeGroup:
		names = p.groups()
	default:
		return ""
	}
	if len(names) == 0 {
		return ""
	}
	return " (known: " + strings.Join(firstN(names, 20), ", ") + ")"
}

func (p Parser) datacenters() []string {
	out := make([]string, 0, len(p.Inventory.Datacenters))
	for _, dc := range p.Inventory.Datacenters {
		out = append(out, dc.Name)
	}
	slices.Sort(out)
	return out
}

func (p Parser) groups() []string {
	out := make([]string, 0, len(p.Inventory.Groups))
	for g := range p.Inventory.Groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (p Parser) usageLine() string {
	return "Try `@sift dc NAME`, `@sift group NAME`, `@sift minion ID` or `@sift help`."
}

// Help is the help text: the commands and the configured scopes.
func (p Parser) Help() string {
	var b strings.Builder
	b.WriteString("Sift finds the root cause of failing highstates.\n\n")
	fmt.Fprintf(&b, "• `%s MINION-ID` or `@sift minion MINION-ID`: one minion\n", p.Names.Minion)
	fmt.Fprintf(&b, "• `%s DATACENTER` or `@sift dc DATACENTER`: every minion of a datacenter\n", p.Names.Datacenter)
	fmt.Fprintf(&b, "• `%s GROUP` or `@sift group GROUP`: every datacenter of a group, in parallel\n", p.Names.Group)
	b.WriteString("• `@sift help`: this text\n\n")
	b.WriteString("Datacenters: " + orNone(p.datacenters()) + "\n")
	b.WriteString("Groups: " + orNone(p.groups()) + "\n")
	b.WriteString("Minion ids: " + triage.MinionIDRule + ".\n")
	return b.String()
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none configured"
	}
	if len(names) > 50 {
		return strings.Join(names[:50], ", ") + fmt.Sprintf(" and %d more", len(names)-50)
	}
	return strings.Join(names, ", ")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
