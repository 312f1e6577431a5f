package bot

import (
	"context"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// shortcutName names the shortcut in the audit log and to people.
const shortcutName = "Triage with Sift"

// shortcutUsed opens the shortcut's modal for a message, in a channel
// where Sift takes commands. The report goes to the message's thread:
// slash commands carry no thread, the shortcut does.
func (b *Bot) shortcutUsed(ctx context.Context, cb slack.InteractionCallback) {
	cmd := interactionCommand(cb, viaShortcut, shortcutName, "")
	cmd.received = b.clock.Now()
	log := b.log.WithFields(logrus.Fields{"via": viaShortcut, "user": cmd.user, "channel": cmd.channel})
	meta := threadMeta{channel: cmd.channel, threadTS: cmd.threadTS}
	refuse := func(outcome, reason, text string) {
		id := newID()
		rec := AuditRecord{
			Time: cmd.received.UTC(), ID: id, Via: viaShortcut, User: cmd.user, Channel: cmd.channel, ThreadTS: cmd.threadTS,
			Command: shortcutName, Outcome: outcome, Reason: reason,
		}
		b.tell(ctx, cmd, text)
		b.finishAudit(&rec, cmd, log.WithField("id", id))
	}
	if !b.authz.channelAllowed(cmd.channel) {
		r := b.authz.channelRefusal()
		refuse(OutcomeRefused, r.audit, r.user)
		return
	}
	if _, ok := parseThreadMeta(meta.String()); !ok {
		refuse(OutcomeFailed, "no thread to post in", "Sift could not tell which thread this message is in.")
		return
	}
	err := b.call(ctx, "views.open", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, cb.TriggerID, shortcutModal(b.deps.Parser.Inventory, meta.String()))
		return err
	})
	if err != nil {
		refuse(OutcomeFailed, err.Error(), "Sift could not open its form (Slack said "+errorCode(err)+"). Try again, or use `@sift` in the thread.")
	}
}

// selected is the value chosen in one select of a submitted view.
func selected(cb slack.InteractionCallback, blockID, actionID string) string {
	byAction, ok := cb.View.State.Values[blockID]
	if !ok {
		return ""
	}
	return strings.TrimSpace(byAction[actionID].SelectedOption.Value)
}

// submittedScope reads the scope a person picked in the modal, or the
// errors to show next to its inputs. It reads memory only: it runs before
// the submission is acknowledged.
func (b *Bot) submittedScope(cb slack.InteractionCallback) (triage.Scope, map[string]string) {
	picks := []struct {
		block string
		scope triage.Scope
	}{
		{blockMinion, triage.Scope{Kind: triage.ScopeMinion, Name: selected(cb, blockMinion, actionMinion)}},
		{blockDatacenter, triage.Scope{Kind: triage.ScopeDatacenter, Name: selected(cb, blockDatacenter, actionDatacenter)}},
		{blockGroup, triage.Scope{Kind: triage.ScopeGroup, Name: selected(cb, blockGroup, actionGroup)}},
	}
	var chosen []int
	for i, p := range picks {
		if p.scope.Name != "" {
			chosen = append(chosen, i)
		}
	}
	switch len(chosen) {
	case 0:
		return triage.Scope{}, map[string]string{blockMinion: "Pick a minion, a datacenter or a group."}
	case 1:
	default:
		errs := map[string]string{}
		for _, i := range chosen[1:] {
			errs[picks[i].block] = "Pick only one of minion, datacenter and group."
		}
		return triage.Scope{}, errs
	}
	p := picks[chosen[0]]
	if _, err := b.deps.Parser.Inventory.Resolve(p.scope); err != nil {
		return triage.Scope{}, map[string]string{p.block: truncate(err.Error(), 150)}
	}
	if _, ok := parseThreadMeta(cb.View.PrivateMetadata); !ok {
		return triage.Scope{}, map[string]string{p.block: "Sift lost track of the thread: close this form and use the shortcut again."}
	}
	return p.scope, nil
}

// viewSubmitted runs the triage picked in the modal and posts it in the
// thread of the message the shortcut was used on.
func (b *Bot) viewSubmitted(life lifetimes, cb slack.InteractionCallback) {
	scope, errs := b.submittedScope(cb)
	meta, ok := parseThreadMeta(cb.View.PrivateMetadata)
	if len(errs) > 0 || !ok {
		return
	}
	cmd := &command{
		via: viaShortcut, name: shortcutName, text: scope.String(), user: cb.User.ID,
		channel: meta.channel, threadTS: meta.threadTS, received: b.clock.Now(),
	}
	id := newID()
	log := b.log.WithFields(logrus.Fields{"id": id, "via": viaShortcut, "user": cmd.user, "channel": cmd.channel})
	rec := AuditRecord{
		Time: cmd.received.UTC(), ID: id, Via: viaShortcut, User: cmd.user, Channel: cmd.channel, ThreadTS: cmd.threadTS,
		Command: shortcutName, Text: truncate(scope.String(), maxAuditText),
	}
	defer b.finishAudit(&rec, cmd, log)
	if !b.authz.channelAllowed(cmd.channel) {
		r := b.authz.channelRefusal()
		rec.Outcome, rec.Reason = OutcomeRefused, r.audit
		b.tell(life.post, cmd, r.user)
		return
	}
	b.runScope(life, cmd, scope, id, log, &rec)
}

// suggestions answers a type-ahead of the modal: minions whose id holds
// what was typed, from the inventory and the reports Sift holds, and what
// was typed itself when it is a valid minion id; or datacenters of an
// inventory too large for a static menu.
func (b *Bot) suggestions(cb slack.InteractionCallback) slack.OptionsResponse {
	typed := strings.TrimSpace(cb.Value)
	lower := lowerASCII(typed)
	match := func(s string) bool { return strings.Contains(lowerASCII(s), lower) }
	inv := b.deps.Parser.Inventory
	var names []string
	switch cb.ActionID {
	case actionMinion:
		seen := map[string]bool{}
		add := func(id string) {
			if !seen[id] && len(names) < maxSuggestions {
				seen[id] = true
				names = append(names, id)
			}
		}
		if triage.ValidateMinionID(typed) == nil {
			add(typed)
		}
		for _, dc := range inv.Datacenters {
			for _, id := range dc.Minions {
				if match(id) {
					add(id)
				}
			}
		}
		if lower != "" && !strings.Contains(lower, "\n") {
			for _, id := range b.reports.search(lower, maxSuggestions) {
				add(id)
			}
		}
	case actionDatacenter:
		for _, dc := range inv.Datacenters {
			if match(dc.Name) && len(names) < maxSuggestions {
				names = append(names, dc.Name)
			}
		}
	case actionGroup:
		for _, g := range sortedGroups(inv) {
			if match(g) && len(names) < maxSuggestions {
				names = append(names, g)
			}
		}
	}
	return slack.OptionsResponse{Options: options(names)}
}
