package bot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

// errorCode is the short name of a Slack call's error, for logs and
// metrics: Slack's own code when it answered one.
func errorCode(err error) string {
	var own *SlackError
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &own):
		return own.Code
	case errors.As(err, &rl):
		return "ratelimited"
	case errors.As(err, &se):
		return se.Err
	case errors.As(err, &sc):
		return fmt.Sprintf("http_%d", sc.Code)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne):
		return "network"
	}
	// slack-go answers some failures (invalid_auth when opening a socket)
	// with a bare error whose text is Slack's code.
	if s := err.Error(); !strings.ContainsAny(s, " :") {
		return s
	}
	return "error"
}

// SlackError is a failed Web API call.
type SlackError struct {
	Method string
	// Code is Slack's error code, or ratelimited, http_NNN, network, ...
	Code string
	Err  error
}

// Error names the method and the code, never the request.
func (e *SlackError) Error() string { return "slack " + e.Method + ": " + e.Code }

// Unwrap returns slack-go's error, for errors.As.
func (e *SlackError) Unwrap() error { return e.Err }

// call runs one Web API call. A call Slack rate-limits is sent again after
// Retry-After, up to MaxAttempts sends; any other failure is logged with
// Slack's code and returned as a *SlackError. Codes in expectedCodes are
// answers the caller handles, neither logged nor counted.
func (b *Bot) call(ctx context.Context, method string, f func(ctx context.Context) error, expectedCodes ...string) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		code := errorCode(err)
		expected := slices.Contains(expectedCodes, code)
		if b.deps.OnSlackError != nil && !expected {
			b.deps.OnSlackError(method, code)
		}
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) && attempt < b.cfg.MaxAttempts {
			// Slack always asks for at least a second; a missing or zero
			// Retry-After must not turn into a burst of retries.
			wait := max(rl.RetryAfter, time.Second)
			b.log.WithFields(logrus.Fields{"method": method, "retry_after": wait.String(), "attempt": attempt}).Info("slack rate limit, waiting")
			if err := b.clock.Sleep(ctx, wait); err != nil {
				return &SlackError{Method: method, Code: errorCode(err), Err: err}
			}
			continue
		}
		if ctx.Err() == nil && !expected {
			b.log.WithFields(logrus.Fields{"method": method, "code": code}).Warn("slack call failed")
		}
		return &SlackError{Method: method, Code: code, Err: err}
	}
}

func msgOptions(m formatters.SlackMessage) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// Reply posts m to channel, in the thread threadTS when it is set, at the
// top of the channel otherwise, and returns the new message's ts.
func (b *Bot) Reply(ctx context.Context, channel, threadTS string, m formatters.SlackMessage) (string, error) {
	opts := msgOptions(m)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := b.call(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		_, ts, err = b.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// Update replaces the message of channel at ts with m.
func (b *Bot) Update(ctx context.Context, channel, ts string, m formatters.SlackMessage) error {
	return b.call(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
		return err
	})
}

// ephemeral shows text to user only, in channel (and thread threadTS).
func (b *Bot) ephemeral(ctx context.Context, channel, threadTS, user, text string) error {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	return b.call(ctx, "chat.postEphemeral", func(ctx context.Context) error {
		_, err := b.api.PostEphemeralContext(ctx, channel, user, opts...)
		return err
	})
}

// respond answers a slash command through its response_url, which works
// where the bot cannot post: a channel it was not invited to, a DM.
func (b *Bot) respond(ctx context.Context, responseURL, text string) error {
	return b.call(ctx, "response_url", func(ctx context.Context) error {
		return slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.deps.HTTPClient, &slack.WebhookMessage{
			ResponseType: slack.ResponseTypeEphemeral, Text: text,
		})
	})
}

// upload attaches f to the thread threadTS of channel, with files upload
// v2: each of its three steps is retried on its own when rate-limited.
func (b *Bot) upload(ctx context.Context, channel, threadTS string, f *formatters.SlackFile) error {
	var u *slack.GetUploadURLExternalResponse
	err := b.call(ctx, "files.getUploadURLExternal", func(ctx context.Context) error {
		var err error
		u, err = b.api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{
			FileName: f.Name, FileSize: len(f.Content), SnippetType: snippetType(f.Name),
		})
		return err
	})
	if err != nil {
		return err
	}
	err = b.call(ctx, "files.upload", func(ctx context.Context) error {
		return b.api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: u.UploadURL, Filename: f.Name, Content: f.Content})
	})
	if err != nil {
		return err
	}
	var c *slack.CompleteUploadExternalResponse
	err = b.call(ctx, "files.completeUploadExternal", func(ctx context.Context) error {
		var err error
		c, err = b.api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
			Files:   []slack.FileSummary{{ID: u.FileID, Title: f.Title}},
			Channel: channel, ThreadTimestamp: threadTS,
		})
		return err
	})
	if err != nil {
		return err
	}
	if len(c.Files) != 1 {
		return &SlackError{Method: "files.completeUploadExternal", Code: fmt.Sprintf("%d_files", len(c.Files))}
	}
	return nil
}

// PostReport posts r to channel: the summary (in the thread threadTS when
// set, at the top of the channel otherwise), the details in the summary's
// thread (or in threadTS), and the full JSON report as a file when the
// messages could not hold it. It returns the summary's ts. Commit authors
// are looked up to be mentioned unless o.AuthorMentions is set.
func (b *Bot) PostReport(ctx context.Context, channel, threadTS string, r *triage.Report, o formatters.SlackOptions) (string, error) {
	o = b.reportOptions(o, r)
	if o.AuthorMentions == nil {
		o.AuthorMentions = b.authorMentions(ctx, r)
	}
	sr := formatters.Slack(r, o)
	ts, err := b.Reply(ctx, channel, threadTS, sr.Summary)
	if err != nil {
		return "", err
	}
	root := threadTS
	if root == "" {
		root = ts
	}
	return ts, b.postDetails(ctx, channel, root, r, sr)
}

// postDetails posts a report's thread and file. A message Slack refuses
// does not stop the others; the JSON file then carries what was lost, and
// a last message says what went wrong.
func (b *Bot) postDetails(ctx context.Context, channel, root string, r *triage.Report, sr formatters.SlackReport) error {
	var failed []error
	for _, m := range sr.Thread {
		if _, err := b.Reply(ctx, channel, root, m); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, err)
		}
	}
	file := sr.File
	if len(failed) > 0 && file == nil {
		file = fullReport(r)
	}
	if file != nil {
		if err := b.upload(ctx, channel, root, file); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	err := errors.Join(failed...)
	note := fmt.Sprintf(":warning: Slack refused part of this report (%s).", codesOf(failed))
	if file != nil && len(failed) == 1 && !isUpload(failed[0]) {
		note += " The full report is attached as JSON."
	}
	if _, nerr := b.Reply(ctx, channel, root, formatters.SlackMessage{Text: note}); nerr != nil {
		return errors.Join(err, nerr)
	}
	return err
}

func isUpload(err error) bool {
	var se *SlackError
	return errors.As(err, &se) && strings.HasPrefix(se.Method, "files.")
}

// codesOf lists the distinct Slack codes of errs.
func codesOf(errs []error) string {
	var codes []string
	for _, err := range errs {
		code := errorCode(err)
		var se *SlackError
		if errors.As(err, &se) {
			code = se.Method + ": " + se.Code
		}
		if !slices.Contains(codes, code) {
			codes = append(codes, code)
		}
	}
	return strings.Join(codes, ", ")
}

// fullReport is the whole report as a JSON file, for when its thread
// messages did not all make it.
func fullReport(r *triage.Report) *formatters.SlackFile {
	content, err := formatters.JSON(r)
	name := "sift-report-" + r.StartedAt.UTC().Format("20060102T150405Z")
	if err != nil {
		return &formatters.SlackFile{Name: name + ".txt", Title: "Sift report: " + r.Scope.String(), Content: formatters.Text(r)}
	}
	return &formatters.SlackFile{Name: name + ".json", Title: "Sift report: " + r.Scope.String(), Content: string(content)}
}

// emailCache remembers which Slack user has an email, and that none has:
// commit authors come back in every report of an incident.
type emailCache struct {
	mu     sync.Mutex
	users  map[string]string // email → user id, "" for none
	flight singleflight.Group
	// off is set once Slack says the scope is missing: asking again
	// would only fail again.
	off bool
}

// maxCachedEmails bounds the cache; it is emptied when full.
const maxCachedEmails = 10000

func newEmailCache() *emailCache { return &emailCache{users: map[string]string{}} }

// maxAuthorLookups bounds the lookups of one report: the thread shows the
// first causes only.
const maxAuthorLookups = 10

// authorMentions maps the commit authors of r's first causes to their
// Slack users. Lookups are cached; without the users:read.email scope they
// are skipped, silently after the first time.
func (b *Bot) authorMentions(ctx context.Context, r *triage.Report) map[string]string {
	out := map[string]string{}
	looked := 0
	for _, c := range r.Causes {
		email := strings.ToLower(c.Evidence.AuthorEmail)
		if c.Kind != triage.CauseCommit || email == "" {
			continue
		}
		if _, done := out[email]; done {
			continue
		}
		if looked == maxAuthorLookups {
			break
		}
		looked++
		if id := b.lookupEmail(ctx, email); id != "" {
			out[email] = id
		}
	}
	return out
}

func (b *Bot) lookupEmail(ctx context.Context, email string) string {
	c := b.emails
	c.mu.Lock()
	id, cached := c.users[email]
	off := c.off
	c.mu.Unlock()
	if cached || off {
		return id
	}
	// Concurrent reports of one incident name the same authors: one
	// lookup answers them all.
	v, _, _ := c.flight.Do(email, func() (any, error) {
		c.mu.Lock()
		id, cached := c.users[email]
		c.mu.Unlock()
		if cached {
			return id, nil // looked up since the check above
		}
		var u *slack.User
		// An unknown email is an answer; a missing scope turns lookups off.
		err := b.call(ctx, "users.lookupByEmail", func(ctx context.Context) error {
			var err error
			u, err = b.api.GetUserByEmailContext(ctx, email)
			return err
		}, "users_not_found", "missing_scope")
		c.mu.Lock()
		defer c.mu.Unlock()
		switch code := errorCode(err); {
		case err == nil:
			id = u.ID
		case code == "users_not_found":
		case code == "missing_scope":
			if !c.off {
				b.log.Info("slack users:read.email scope missing, commit authors will not be mentioned")
			}
			c.off = true
			return "", nil
		default:
			return "", nil // not cached: the next report asks again
		}
		if len(c.users) >= maxCachedEmails {
			clear(c.users)
		}
		c.users[email] = id
		return id, nil
	})
	return v.(string)
}
