package fakeslack

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// conversations.history's limit, as Slack applies it: 100 when absent,
// at most 999.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 999
)

// history answers conversations.history: the channel's top-level messages
// (thread replies are not in a channel's history) between oldest and
// latest, both excluded unless inclusive is set, newest first, limit at a
// time. Every channel of the fake is public, so the method needs
// channels:history, and the bot must be a member, as in Slack.
func (s *Server) history(form url.Values) map[string]any {
	if r := s.needScope("channels:history"); r != nil {
		return r
	}
	channel := form.Get("channel")
	if code := s.member(channel); code != "" {
		return errAnswer(code)
	}
	oldest, latest := int64(0), int64(math.MaxInt64)
	if v := form.Get("oldest"); v != "" {
		var ok bool
		if oldest, ok = parseTS(v); !ok {
			return errAnswer("invalid_ts_oldest")
		}
	}
	if v := form.Get("latest"); v != "" {
		var ok bool
		if latest, ok = parseTS(v); !ok {
			return errAnswer("invalid_ts_latest")
		}
	}
	inclusive := form.Get("inclusive") == "1" || form.Get("inclusive") == "true"
	limit := defaultHistoryLimit
	if v := form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errAnswer("invalid_limit")
		}
		if n > 0 {
			limit = min(n, maxHistoryLimit)
		}
	}
	// A page starts at the cursor's message: the newest one not yet sent.
	from := int64(math.MaxInt64)
	if c := form.Get("cursor"); c != "" {
		var ok bool
		if from, ok = decodeCursor(c); !ok {
			return errAnswer("invalid_cursor")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	page := []map[string]any{}
	next := ""
	// Messages are kept in posting order, which is timestamp order, so
	// walking them backwards gives newest first.
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if m.Channel != channel || (m.ThreadTS != "" && m.ThreadTS != m.TS) {
			continue
		}
		ts, _ := parseTS(m.TS)
		if ts > from || ts > latest || ts < oldest || !inclusive && (ts == latest || ts == oldest) {
			continue
		}
		if len(page) == limit {
			next = encodeCursor(ts)
			break
		}
		page = append(page, s.historyMessageLocked(m))
	}
	res := map[string]any{"ok": true, "messages": page, "has_more": next != "", "pin_count": 0}
	if next != "" {
		res["response_metadata"] = map[string]any{"next_cursor": next}
	}
	return res
}

// historyMessageLocked is m as conversations.history shows it; s.mu must
// be held.
func (s *Server) historyMessageLocked(m *Message) map[string]any {
	out := map[string]any{"type": "message", "user": m.User, "text": m.Text, "ts": m.TS}
	if m.User == s.opts.BotUserID {
		out["bot_id"] = "B0SIFT"
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	return out
}

// formatTS writes microseconds since the epoch as a Slack timestamp.
func formatTS(us int64) string {
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// parseTS reads a Slack timestamp, "1761127200.000100" or whole seconds,
// as microseconds since the epoch.
func parseTS(s string) (int64, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	if !digits(sec) || len(sec) > 12 || len(frac) > 6 || frac != "" && !digits(frac) {
		return 0, false
	}
	n, _ := strconv.ParseInt(sec, 10, 64)
	us := int64(0)
	if frac != "" {
		us, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return n*1_000_000 + us, true
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Cursors look like Slack's: base64 of "next_ts:" and the timestamp of the
// next message, in microseconds.
const cursorPrefix = "next_ts:"

func encodeCursor(us int64) string {
	return base64.StdEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(us, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok || !digits(v) || len(v) > 18 {
		return 0, false
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n, true
}
