package saltapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/triage"
)

var _ triage.Blamer = (*Client)(nil)

// ErrUnknownJob is salt-api not knowing a job it just started: the master's
// job cache lost it (a restart with an in-memory cache, a cleanup).
var ErrUnknownJob = errors.New("unknown job")

// lowstate is one call in salt-api's POST / body.
type lowstate struct {
	Client           string   `json:"client"`
	Tgt              any      `json:"tgt"`
	TgtType          string   `json:"tgt_type"`
	Fun              []string `json:"fun"`
	Arg              [][]any  `json:"arg"`
	Timeout          int      `json:"timeout"`
	GatherJobTimeout int      `json:"gather_job_timeout"`
}

// returnAnswer is the answer of POST /: one element per lowstate.
type returnAnswer struct {
	Return []json.RawMessage `json:"return"`
}

// Blame runs the blame module's three functions on the minions of t and
// hands each minion's answer to sink as it arrives.
//
// A list of minions is one synchronous local call; an expression is a
// local_async job polled until every expected minion answered or Salt's
// timeouts passed. Either way the master is asked which minions are
// connected: those it lists as not connected are handed to sink as absent
// and not waited for. Minions that never answer are not delivered: the
// domain counts them unreachable.
func (c *Client) Blame(ctx context.Context, t triage.Target, sink triage.Sink) error {
	if t.Master != "" && t.Master != c.cfg.Name {
		return fmt.Errorf("salt-api %s: target is for master %q", c.cfg.Name, t.Master)
	}
	var err error
	switch {
	case len(t.Minions) > 0:
		err = c.blameList(ctx, t.Minions, sink)
	case strings.TrimSpace(t.Expr) != "":
		err = c.blameExpr(ctx, t.Expr, sink)
	default:
		err = fmt.Errorf("salt-api %s: empty target (neither minions nor an expression)", c.cfg.Name)
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// blameList asks the listed minions, synchronously, after asking the
// master which of them it can reach: an id it lists as not connected, or
// does not list at all (no accepted key), is not asked.
func (c *Client) blameList(ctx context.Context, minions []string, sink triage.Sink) error {
	// The ids were validated where they were typed; checking again here keeps
	// a glob or a comma from reaching Salt whatever the caller did.
	ids := make([]string, 0, len(minions))
	for _, id := range minions {
		if err := triage.ValidateMinionID(id); err != nil {
			return fmt.Errorf("salt-api %s: %w", c.cfg.Name, err)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	// A master that refuses the login refuses everything: say so once.
	if _, err := c.tokenFor(ctx, ""); err != nil {
		return err
	}
	sink.Expected(ids)
	p := c.askPresence(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if p.problem != "" {
		sink.Note(p.problem)
	}
	var ask, notConnected, notMinion []string
	for _, id := range ids {
		switch {
		case !p.listed || p.connected[id]:
			ask = append(ask, id)
		case p.notConnected[id]:
			if p.known() {
				notConnected = append(notConnected, id)
			} else {
				ask = append(ask, id)
			}
		default:
			notMinion = append(notMinion, id)
		}
	}
	if notConnected != nil {
		sink.Absent(notConnected, triage.NotConnected)
	}
	if notMinion != nil {
		sink.Absent(notMinion, triage.NotAMinion)
	}
	log := c.log.WithFields(logrus.Fields{"client": "local", "asked": len(ask), "not_connected": len(notConnected), "not_a_minion": len(notMinion)})
	if len(ask) == 0 {
		log.Debug("no minion to ask")
		return nil
	}
	// salt-api waits timeout + gather_job_timeout for silent minions; the
	// margin covers the master's own work.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout+c.cfg.GatherJobTimeout+callMargin)
	defer cancel()
	ex := exchange{method: http.MethodPost, path: "/", endpoint: "local", body: []lowstate{c.lowstate("local", ask, "list")}}
	var ans returnAnswer
	if err := c.call(ctx, ex, &ans); err != nil {
		return err
	}
	returns, err := c.firstReturn(ex, ans)
	if err != nil {
		return err
	}
	log.WithField("answered", len(returns)).Debug("blame call answered")
	for _, id := range sortedKeys(returns) {
		raw := unwrapFullReturn(returns[id])
		if noResponse(raw) {
			// What a list target answers for an id with no accepted key.
			sink.Absent([]string{id}, triage.NotAMinion)
			continue
		}
		sink.Answer(triage.MinionAnswer{ID: id, Raw: raw})
	}
	return nil
}

// noResponse reports whether raw is the string Salt answers, in a
// synchronous call, for a listed id that has no accepted key ("Minion did
// not return. [No response]…"). A known minion that does not answer is
// false instead.
func noResponse(raw json.RawMessage) bool {
	const prefix = `"Minion did not return. [No response]`
	return bytes.HasPrefix(bytes.TrimSpace(raw), []byte(prefix))
}

// firstReturn reads the per-minion map of a POST / answer.
func (c *Client) firstReturn(ex exchange, ans returnAnswer) (map[string]json.RawMessage, error) {
	if len(ans.Return) == 0 {
		return nil, c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "empty return list", Excerpt: `{"return": []}`})
	}
	var returns map[string]json.RawMessage
	if err := json.Unmarshal(ans.Return[0], &returns); err != nil {
		// salt-api reports some failures as a bare string in the list.
		return nil, c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "return is not a map of minions", Excerpt: shorten(string(ans.Return[0]), 80)})
	}
	return returns, nil
}

func (c *Client) lowstate(client string, tgt any, tgtType string) lowstate {
	args := make([][]any, len(triage.BlameFunctions))
	for i := range args {
		args[i] = []any{}
	}
	return lowstate{
		Client: client, Tgt: tgt, TgtType: tgtType,
		Fun: triage.BlameFunctions, Arg: args,
		Timeout:          seconds(c.cfg.Timeout),
		GatherJobTimeout: seconds(c.cfg.GatherJobTimeout),
	}
}

// seconds rounds d up to whole seconds, at least one: Salt reads integers.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

type asyncAnswer struct {
	JID     string   `json:"jid"`
	Minions []string `json:"minions"`
}

// blameExpr starts a local_async job on a compound expression and polls it,
// while it asks the master which minions are connected.
func (c *Client) blameExpr(ctx context.Context, expr string, sink triage.Sink) error {
	if _, err := c.tokenFor(ctx, ""); err != nil {
		return err
	}
	pctx, stopPresence := context.WithCancel(ctx)
	presences := make(chan presence, 1)
	var wg sync.WaitGroup
	wg.Go(func() { presences <- c.askPresence(pctx) })
	defer func() {
		stopPresence()
		wg.Wait()
	}()

	ex := exchange{method: http.MethodPost, path: "/", endpoint: "local_async", body: []lowstate{c.lowstate("local_async", expr, "compound")}}
	var ans returnAnswer
	if err := c.call(ctx, ex, &ans); err != nil {
		return err
	}
	if len(ans.Return) == 0 {
		return c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "empty return list", Excerpt: `{"return": []}`})
	}
	var job asyncAnswer
	if err := json.Unmarshal(ans.Return[0], &job); err != nil {
		return c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "no jid in the answer", Excerpt: shorten(string(ans.Return[0]), 80)})
	}
	log := c.log.WithFields(logrus.Fields{"jid": job.JID, "target": expr})
	if job.JID == "" {
		// Salt sends no job when the target matches no minion.
		log.Debug("target matched no minion")
		sink.Expected([]string{})
		return nil
	}
	log.WithField("expected", len(job.Minions)).Debug("blame job started")
	p := &jobPoll{c: c, jid: job.JID, sink: sink, log: log, presences: presences,
		expected: map[string]bool{}, answered: map[string]bool{}, absent: map[string]bool{}}
	p.expect(job.Minions)
	if job.Minions == nil {
		sink.Expected([]string{})
	}
	return p.run(ctx)
}

// Backoff after failed polls: the poll interval, doubled after each failure
// in a row, at most maxBackoff (or the interval when that is longer).
const maxBackoff = 5 * time.Second

// lastReadTimeout bounds the read made once the job's deadline passed.
const lastReadTimeout = 5 * time.Second

// jobPoll is the polling of one job.
type jobPoll struct {
	c    *Client
	jid  string
	sink triage.Sink
	log  logrus.FieldLogger
	// presences delivers the master's presence once; nil after.
	presences <-chan presence
	presence  *presence

	expected, answered, absent map[string]bool
	// order keeps expected minions in the order the master named them.
	order []string
	polls int
}

// run reads GET /jobs/<jid> every PollInterval and delivers the minions
// that answered since the last poll. It stops when every expected minion
// answered or was found absent, or when Salt's own timeouts passed; the
// silent minions are then the domain's unreachable ones.
//
// A poll that fails (salt-api restarting, a proxy's 5xx, a body cut short
// or not JSON, a reset connection, a poll past PollTimeout) is made again
// after a backoff: a GET starts nothing. The job is given up with an error
// only when the polls still fail at its deadline.
func (p *jobPoll) run(ctx context.Context) error {
	clock := p.c.cfg.Clock
	deadline := clock.Now().Add(p.c.cfg.Timeout + p.c.cfg.GatherJobTimeout + p.c.cfg.PollInterval)
	wait := clock.After(p.c.cfg.PollInterval)
	failures := 0
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return p.cut(ctx)
		case pr := <-p.presences:
			p.learn(pr)
			if p.done() {
				return nil
			}
			continue
		case <-wait:
		}
		if !clock.Now().Before(deadline) {
			return p.finish(ctx, lastErr)
		}
		err := p.poll(ctx, p.c.cfg.PollTimeout)
		switch {
		case ctx.Err() != nil:
			return p.cut(ctx)
		case err == nil:
			failures, lastErr = 0, nil
			if p.done() {
				return nil
			}
			wait = clock.After(p.c.cfg.PollInterval)
			continue
		case !transient(err):
			return err
		}
		failures++
		lastErr = err
		backoff := min(p.c.cfg.PollInterval<<min(failures-1, 16), max(maxBackoff, p.c.cfg.PollInterval))
		if left := deadline.Sub(clock.Now()); backoff > left {
			backoff = max(left, 0)
		}
		p.log.WithError(err).WithFields(logrus.Fields{"failures": failures, "backoff": backoff}).Warn("job poll failed")
		wait = clock.After(backoff)
	}
}

// finish ends the job at its deadline: presence, when it is still being
// asked, is waited for (it is bounded by its own timeout), then the job is
// read one last time so that answers already on the master count.
func (p *jobPoll) finish(ctx context.Context, lastErr error) error {
	if p.presence == nil {
		select {
		case pr := <-p.presences:
			p.learn(pr)
		case <-ctx.Done():
			return p.cut(ctx)
		}
	}
	if p.done() {
		return nil
	}
	err := p.poll(ctx, min(lastReadTimeout, p.c.cfg.PollTimeout))
	fields := logrus.Fields{"polls": p.polls, "answered": len(p.answered), "expected": len(p.expected), "absent": len(p.absent)}
	switch {
	case err == nil:
		p.log.WithFields(fields).Debug("job deadline passed")
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case lastErr != nil || !transient(err):
		// The polls were failing when the deadline came, and still do.
		return err
	}
	// The polls before went through: what they read is the answer.
	p.log.WithError(err).WithFields(fields).Warn("last job read failed")
	return nil
}

// cut ends the polling when ctx ends. A deadline (the triage's own) still
// gets one last read, outside ctx, so that answers already on the master
// count; a cancellation does not.
func (p *jobPoll) cut(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && !p.done() {
		if err := p.poll(context.WithoutCancel(ctx), min(lastReadTimeout, p.c.cfg.PollTimeout)); err != nil {
			p.log.WithError(err).Debug("last job read failed")
		}
	}
	return ctx.Err()
}

// poll reads the job once and delivers the new answers; answers read
// before the body broke off are delivered too.
func (p *jobPoll) poll(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p.polls++
	fresh := 0
	jr := jobReader{
		known:   func(id string) bool { return p.answered[id] },
		minions: p.expect,
		answer: func(id string, raw json.RawMessage) {
			p.answered[id] = true
			p.expect([]string{id})
			fresh++
			p.sink.Answer(triage.MinionAnswer{ID: id, Raw: raw})
		},
	}
	ex := exchange{method: http.MethodGet, path: "/jobs/" + url.PathEscape(p.jid), endpoint: "jobs", label: "jobs " + p.jid}
	err := p.c.stream(ctx, ex, jr.read)
	var pe *ProtocolError
	if errors.As(err, &pe) {
		pe.Master = p.c.cfg.Name
	}
	p.log.WithFields(logrus.Fields{"poll": p.polls, "new": fresh, "answered": len(p.answered), "expected": len(p.expected)}).Debug("job polled")
	return err
}

// expect adds the minions the master expects; those it said are not
// connected are handed over as absent at once.
func (p *jobPoll) expect(ids []string) {
	var fresh []string
	for _, id := range ids {
		if !p.expected[id] {
			p.expected[id] = true
			p.order = append(p.order, id)
			fresh = append(fresh, id)
		}
	}
	if fresh != nil {
		p.sink.Expected(fresh)
		p.markAbsent(fresh)
	}
}

// learn takes the master's presence in.
func (p *jobPoll) learn(pr presence) {
	p.presence = &pr
	p.presences = nil
	if pr.problem != "" {
		p.sink.Note(pr.problem)
	}
	n := len(p.absent)
	p.markAbsent(p.order)
	logPresence(p.log, pr, len(p.absent)-n)
}

// markAbsent hands over, as absent, the minions of ids that the master
// lists as not connected and that have not answered.
func (p *jobPoll) markAbsent(ids []string) {
	if p.presence == nil || !p.presence.known() {
		return
	}
	var absent []string
	for _, id := range ids {
		if p.presence.notConnected[id] && !p.answered[id] && !p.absent[id] {
			p.absent[id] = true
			absent = append(absent, id)
		}
	}
	if absent != nil {
		p.sink.Absent(absent, triage.NotConnected)
	}
}

// done reports whether every expected minion answered or is absent.
func (p *jobPoll) done() bool {
	for id := range p.expected {
		if !p.answered[id] && !p.absent[id] {
			return false
		}
	}
	return true
}

// transient tells the poll failures worth another poll: salt-api
// unreachable for a moment, a proxy in front of it answering 5xx, a body
// cut short or garbled, a poll past its timeout.
func transient(err error) bool {
	var ue *UnreachableError
	var he *HTTPError
	var pe *ProtocolError
	switch {
	case errors.Is(err, ErrUnknownJob):
		return false
	case errors.As(err, &ue):
		return !ue.TLS
	case errors.As(err, &he):
		return he.Status >= 500
	case errors.As(err, &pe):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// unwrapFullReturn returns the "ret" of a full_return wrapping
// ({"ret": …, "retcode": N, "jid": …}); any other value is returned as is.
// A blame answer is keyed by function names, so it never has all three keys.
func unwrapFullReturn(v json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '{' {
		return v
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(t, &m) != nil {
		return v
	}
	ret, hasRet := m["ret"]
	_, hasJID := m["jid"]
	_, hasRetcode := m["retcode"]
	if hasRet && hasJID && hasRetcode {
		return ret
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
