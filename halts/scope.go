package halts

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/triage"
)

// maxScopeName bounds a scope name from a source.
const maxScopeName = 255

// CheckScopeName says what is wrong with a scope name from a source, or "".
func CheckScopeName(name string) string {
	switch {
	case name == "":
		return "is missing"
	case len(name) > maxScopeName:
		return fmt.Sprintf("is longer than %d characters", maxScopeName)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("%q has spaces or control characters", clip(name, 80))
	}
	return ""
}

// ParseScope reads "dc ams01", "datacenter ams01", "group europe" or
// "minion web-01", and says what is wrong when it cannot.
func ParseScope(s string) (triage.Scope, string) {
	words := strings.Fields(s)
	if len(words) != 2 {
		return triage.Scope{}, fmt.Sprintf("%q: want KIND NAME, e.g. \"dc ams01\", \"group europe\" or \"minion web-01\"", clip(s, 80))
	}
	kind, ok := commands.Kind(words[0])
	if !ok {
		return triage.Scope{}, fmt.Sprintf("kind %q: want dc, datacenter, group or minion", clip(words[0], 40))
	}
	if msg := CheckScopeName(words[1]); msg != "" {
		return triage.Scope{}, "name " + msg
	}
	if kind == triage.ScopeMinion {
		if err := triage.ValidateMinionID(words[1]); err != nil {
			return triage.Scope{}, err.Error()
		}
	}
	return triage.Scope{Kind: kind, Name: words[1]}, ""
}

// scopeKinds are the kinds a source's configuration may name.
var scopeKinds = []triage.ScopeKind{triage.ScopeMinion, triage.ScopeDatacenter, triage.ScopeGroup}

// ValidKind reports whether a source may name scopes of kind k.
func ValidKind(k triage.ScopeKind) bool { return slices.Contains(scopeKinds, k) }

// OneLine joins the words of s with single spaces.
func OneLine(s string) string { return oneLine(s) }

// Clip cuts s to n runes, the last one an ellipsis when cut.
func Clip(s string, n int) string { return clip(s, n) }
