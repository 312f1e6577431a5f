package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/triage"
)

// authorizer decides where commands are taken and who may run each kind.
type authorizer struct {
	b        *Bot
	channels []string
	access   map[triage.ScopeKind]config.Access

	mu     sync.Mutex
	groups map[string]members // user group id → its members, cached
}

type members struct {
	users   []string
	fetched time.Time
}

// refusal says why a command was refused: to the person, in mrkdwn, and
// to the audit log.
type refusal struct {
	user, audit string
}

func (a *authorizer) channelAllowed(channel string) bool {
	return len(a.channels) == 0 || slices.Contains(a.channels, channel)
}

func (a *authorizer) channelRefusal() refusal {
	links := make([]string, len(a.channels))
	for i, ch := range a.channels {
		links[i] = "<#" + ch + ">"
	}
	return refusal{
		user:  "Sift takes commands only in " + joinAnd(links) + ". Run it there.",
		audit: "channel not allowed",
	}
}

// allowed reports whether user may run a command of kind; what names the
// command for the refusal ("/blame-group", "@sift group").
func (a *authorizer) allowed(ctx context.Context, kind triage.ScopeKind, user, what string) (bool, refusal) {
	acc := a.access[kind]
	if acc.Open() || slices.Contains(acc.Users, user) {
		return true, refusal{}
	}
	var failed, codes []string
	for _, g := range acc.Usergroups {
		in, err := a.member(ctx, g, user)
		if err != nil {
			failed = append(failed, "<!subteam^"+g+">")
			codes = append(codes, g+": "+errorCode(err))
			continue
		}
		if in {
			return true, refusal{}
		}
	}
	var who []string
	for _, u := range acc.Users {
		who = append(who, "<@"+u+">")
	}
	if len(acc.Usergroups) > 0 {
		groups := make([]string, len(acc.Usergroups))
		for i, g := range acc.Usergroups {
			groups[i] = "<!subteam^" + g + ">"
		}
		who = append(who, "members of "+joinAnd(groups))
	}
	r := refusal{
		user:  fmt.Sprintf("`%s` is limited to %s. Ask one of them to run it.", escapeText(what), joinAnd(who)),
		audit: "user not allowed",
	}
	if len(failed) > 0 {
		// Fail closed, and say it is Sift's problem, not the person's.
		r.user += fmt.Sprintf(" (Sift could not read the members of %s: ask whoever runs Sift to check its usergroups:read scope.)", joinAnd(failed))
		r.audit += "; user group check failed: " + strings.Join(codes, ", ")
	}
	return false, r
}

// member reports whether user is in the user group, from a cache kept
// MembersTTL.
func (a *authorizer) member(ctx context.Context, group, user string) (bool, error) {
	now := a.b.clock.Now()
	a.mu.Lock()
	m, ok := a.groups[group]
	a.mu.Unlock()
	if !ok || now.Sub(m.fetched) > a.b.cfg.MembersTTL {
		var users []string
		err := a.b.call(ctx, "usergroups.users.list", func(ctx context.Context) error {
			var err error
			users, err = a.b.api.GetUserGroupMembersContext(ctx, group)
			return err
		})
		if err != nil {
			return false, err
		}
		m = members{users: users, fetched: now}
		a.mu.Lock()
		a.groups[group] = m
		a.mu.Unlock()
	}
	return slices.Contains(m.users, user), nil
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return "nobody"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// escapeText makes text safe for mrkdwn: '&', '<' and '>' are Slack's
// control characters (links, mentions, @channel).
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
