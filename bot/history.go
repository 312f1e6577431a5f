package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Bounds of a FindPost search. A halt channel sees a few messages an hour
// and the search starts shortly before the halt fired, so one page is the
// rule; the bound keeps a busy channel from costing more than a few
// conversations.history calls (Tier 3, about 50 a minute).
const (
	historyPageSize = 200
	maxHistoryPages = 5
)

// identity is who the bot is in Slack, from auth.test.
type identity struct{ userID, botID string }

// self returns the bot's identity, asking Slack the first time.
func (b *Bot) self(ctx context.Context) (identity, error) {
	if me := b.me.Load(); me != nil {
		return *me, nil
	}
	var resp *slack.AuthTestResponse
	err := b.call(ctx, "auth.test", func(ctx context.Context) error {
		var err error
		resp, err = b.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		return identity{}, err
	}
	me := &identity{userID: resp.UserID, botID: resp.BotID}
	b.me.Store(me)
	return *me, nil
}

// FindPost returns the ts of the bot's own top-level message in channel,
// posted since since, whose text or blocks contain marker, or "" when
// there is none. It reads the channel's history (conversations.history),
// newest first, at most maxHistoryPages pages of historyPageSize; a
// rate-limited page is asked again like any call of the bot. Messages of
// anyone else are passed over: a person quoting a post carries its marker
// too, and the bot could not edit their message later.
//
// The search needs the channels:history scope (groups:history for a
// private channel) and the bot in the channel; without them the error says
// so. A search that reaches its bound before since is an error as well:
// not finding the post there does not mean it is absent.
func (b *Bot) FindPost(ctx context.Context, channel, marker string, since time.Time) (string, error) {
	me, err := b.self(ctx)
	if err != nil {
		return "", fmt.Errorf("history of %s: %w", channel, err)
	}
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: historyPageSize}
	if !since.IsZero() {
		params.Oldest = fmt.Sprintf("%d.%06d", since.Unix(), since.Nanosecond()/1000)
	}
	for range maxHistoryPages {
		var resp *slack.GetConversationHistoryResponse
		err := b.call(ctx, "conversations.history", func(ctx context.Context) error {
			var err error
			resp, err = b.api.GetConversationHistoryContext(ctx, params)
			return err
		})
		if err != nil {
			return "", historyError(channel, err)
		}
		for _, m := range resp.Messages {
			if me.wrote(m) && carries(m, marker) {
				return m.Timestamp, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", fmt.Errorf("history of %s: not in the newest %d messages since %s, and older ones remain",
		channel, maxHistoryPages*historyPageSize, since.UTC().Format(time.RFC3339))
}

// historyError says what a failed conversations.history call needs.
func historyError(channel string, err error) error {
	switch errorCode(err) {
	case "missing_scope":
		return fmt.Errorf("history of %s: %w: the bot token needs the channels:history scope (groups:history for a private channel); add it to the app and reinstall it", channel, err)
	case "not_in_channel", "channel_not_found":
		return fmt.Errorf("history of %s: %w: invite the bot to the channel", channel, err)
	}
	return fmt.Errorf("history of %s: %w", channel, err)
}

// wrote reports whether m is a top-level message the bot posted.
func (me identity) wrote(m slack.Message) bool {
	if m.ThreadTimestamp != "" && m.ThreadTimestamp != m.Timestamp {
		return false // a reply sent to the channel too
	}
	return (m.User != "" && m.User == me.userID) || (m.BotID != "" && m.BotID == me.botID)
}

// carries reports whether m's text or blocks contain marker.
func carries(m slack.Message, marker string) bool {
	if strings.Contains(m.Text, marker) {
		return true
	}
	if len(m.Blocks.BlockSet) == 0 {
		return false
	}
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		return false
	}
	// Compared as JSON on both sides, so that characters JSON escapes
	// (quotes, <, >, &) match as well.
	quoted, _ := json.Marshal(marker)
	return strings.Contains(string(blocks), string(quoted[1:len(quoted)-1]))
}
