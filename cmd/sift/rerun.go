package main

import (
	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/triage"
)

// slackRerun says, in the headline of a stopped triage, how to run it
// again with the configured slash commands.
func slackRerun(names commands.SlashNames) func(triage.Scope) string {
	return func(s triage.Scope) string {
		slash := map[triage.ScopeKind]string{triage.ScopeMinion: names.Minion, triage.ScopeDatacenter: names.Datacenter, triage.ScopeGroup: names.Group}[s.Kind]
		return "`" + slash + " " + s.Name + "`"
	}
}
