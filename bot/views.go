package bot

import (
	"regexp"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sift-chatops/sift/triage"
)

// Block and action ids of the shortcut's modal.
const (
	blockMinion      = "sift_minion"
	blockDatacenter  = "sift_datacenter"
	blockGroup       = "sift_group"
	actionMinion     = "minion"
	actionDatacenter = "datacenter"
	actionGroup      = "group"
)

// Slack's limits on select menus.
const (
	// maxStaticOptions: a static_select holds at most 100 options; a
	// longer inventory is searched with an external_select instead.
	maxStaticOptions = 100
	// maxSuggestions is how many options a type-ahead answers.
	maxSuggestions = 50
	// maxOptionValue, maxOptionText: an option's value is at most 150
	// characters, its text 75.
	maxOptionValue = 150
	maxOptionText  = 75
	// minQuery is how much a person types before the minion type-ahead asks.
	minQuery = 2
)

// shortcutModal is the modal of the "Triage with Sift" shortcut: pick one
// minion, datacenter or group; the report goes to the thread named in
// metadata.
func shortcutModal(inv triage.Inventory, metadata string) slack.ModalViewRequest {
	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
			"Pick *one* minion, datacenter or group. The report is posted in the thread of the message.", false, false), nil, nil),
	}
	minion := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, text("Type part of a minion id"), actionMinion)
	q := minQuery
	minion.MinQueryLength = &q
	blocks = append(blocks, slack.NewInputBlock(blockMinion, text("Minion"), nil, minion).WithOptional(true))

	dcs := make([]string, 0, len(inv.Datacenters))
	for _, dc := range inv.Datacenters {
		dcs = append(dcs, dc.Name)
	}
	if len(dcs) > 0 {
		blocks = append(blocks, slack.NewInputBlock(blockDatacenter, text("Datacenter"), nil, pickOne(dcs, actionDatacenter, "Pick a datacenter")).WithOptional(true))
	}
	groups := sortedGroups(inv)
	if len(groups) > 0 {
		blocks = append(blocks, slack.NewInputBlock(blockGroup, text("Group"), nil, pickOne(groups, actionGroup, "Pick a group")).WithOptional(true))
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           text("Triage with Sift"),
		Submit:          text("Triage"),
		Close:           text("Cancel"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		CallbackID:      ShortcutCallbackID,
		PrivateMetadata: metadata,
	}
}

// pickOne is a select of names: static when Slack allows that many
// options, a type-ahead otherwise.
func pickOne(names []string, actionID, placeholder string) *slack.SelectBlockElement {
	ph := slack.NewTextBlockObject(slack.PlainTextType, placeholder, false, false)
	if len(names) > maxStaticOptions {
		return slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, ph, actionID)
	}
	return slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, ph, actionID, options(names)...)
}

// options turns names into select options; names too long for an
// option's value are left out, since they could not be sent back.
func options(names []string) []*slack.OptionBlockObject {
	out := make([]*slack.OptionBlockObject, 0, len(names))
	for _, n := range names {
		if n == "" || len(n) > maxOptionValue {
			continue
		}
		label := n
		if r := []rune(label); len(r) > maxOptionText {
			label = string(r[:maxOptionText-1]) + "…"
		}
		out = append(out, slack.NewOptionBlockObject(n, slack.NewTextBlockObject(slack.PlainTextType, label, false, false), nil))
	}
	return out
}

func sortedGroups(inv triage.Inventory) []string {
	names := make([]string, 0, len(inv.Groups))
	for g := range inv.Groups {
		names = append(names, g)
	}
	slices.Sort(names)
	return names
}

// threadMeta is where a shortcut's report goes, kept in the modal's
// private_metadata as "channel/thread_ts".
type threadMeta struct{ channel, threadTS string }

var (
	channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,30}$`)
	tsPattern        = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,6}$`)
)

func (m threadMeta) String() string { return m.channel + "/" + m.threadTS }

// parseThreadMeta reads private_metadata back; it comes from Slack, so it
// is checked like anything else Slack sends.
func parseThreadMeta(s string) (threadMeta, bool) {
	ch, ts, ok := strings.Cut(s, "/")
	if !ok || !channelIDPattern.MatchString(ch) || !tsPattern.MatchString(ts) {
		return threadMeta{}, false
	}
	return threadMeta{channel: ch, threadTS: ts}, true
}
