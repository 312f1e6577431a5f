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
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/triage"
)

var _ triage.Blamer = (*Client)(nil)

// ErrUnknownJob is salt-api not knowing a job it just started: the master's
// job cache lost it (a restart with an in-memory cache, a cleanup).
var ErrUnknownJob = errors.New("unknown job")

// maxPollFailures is how many polls of a job in a row may fail (salt-api
// restarting, a proxy's 502) before the job is given up. A GET starts
// nothing, so asking again is safe.
const maxPollFailures = 3

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
// timeouts passed. Minions that never answer are not delivered: the domain
// counts them unreachable.
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

// blameList asks the listed minions, synchronously.
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
	// salt-api waits timeout + gather_job_timeout for silent minions; the
	// margin covers the master's own work.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout+c.cfg.GatherJobTimeout+callMargin)
	defer cancel()
	ex := exchange{method: http.MethodPost, path: "/", endpoint: "local", body: []lowstate{c.lowstate("local", ids, "list")}}
	var ans returnAnswer
	if err := c.call(ctx, ex, &ans); err != nil {
		return err
	}
	returns, err := c.firstReturn(ex, ans)
	if err != nil {
		return err
	}
	c.log.WithFields(logrus.Fields{"client": "local", "asked": len(ids), "answered": len(returns)}).Debug("blame call answered")
	sink.Expected(ids)
	for _, id := range sortedKeys(returns) {
		sink.Answer(triage.MinionAnswer{ID: id, Raw: unwrapFullReturn(returns[id])})
	}
	return nil
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

// blameExpr starts a local_async job on a compound expression and polls it.
func (c *Client) blameExpr(ctx context.Context, expr string, sink triage.Sink) error {
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
	return c.poll(ctx, job, sink, log)
}

// poll reads GET /jobs/<jid> every PollInterval and delivers the minions
// that answered since the last poll. It stops when every expected minion
// answered or when Salt's own timeouts (and a poll or two) passed; the
// silent minions are then the domain's unreachable ones.
func (c *Client) poll(ctx context.Context, job asyncAnswer, sink triage.Sink, log logrus.FieldLogger) error {
	expected := map[string]bool{}
	answered := map[string]bool{}
	expect := func(ids []string) {
		var fresh []string
		for _, id := range ids {
			if !expected[id] {
				expected[id] = true
				fresh = append(fresh, id)
			}
		}
		if fresh != nil {
			sink.Expected(fresh)
		}
	}
	expect(job.Minions)
	if job.Minions == nil {
		sink.Expected([]string{})
	}

	deadline := time.Now().Add(c.cfg.Timeout + c.cfg.GatherJobTimeout + 2*c.cfg.PollInterval)
	pollCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ticker := time.NewTicker(c.cfg.PollInterval)
	defer ticker.Stop()
	ex := exchange{method: http.MethodGet, path: "/jobs/" + url.PathEscape(job.JID), endpoint: "jobs", label: "jobs " + job.JID}
	failures, polls := 0, 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-pollCtx.Done():
			// pollCtx ends with ctx too: only its own deadline is a normal end.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.WithFields(logrus.Fields{"polls": polls, "answered": len(answered), "expected": len(expected)}).Debug("job deadline passed")
			return nil
		case <-ticker.C:
		}
		polls++
		var ans jobAnswer
		err := c.call(pollCtx, ex, &ans)
		var st jobStatus
		if err == nil {
			st, err = parseJob(ans)
			var pe *ProtocolError
			if errors.As(err, &pe) {
				pe.Master = c.cfg.Name
			}
			if err != nil {
				err = c.wrap(ex, err)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pollCtx.Err() != nil {
				continue // the select above reports the deadline
			}
			if failures++; transient(err) && failures < maxPollFailures {
				log.WithError(err).WithField("failures", failures).Warn("job poll failed")
				continue
			}
			return err
		}
		failures = 0
		expect(st.Minions)
		fresh := 0
		for _, id := range sortedKeys(st.Returns) {
			if answered[id] {
				continue
			}
			answered[id] = true
			expect([]string{id})
			fresh++
			sink.Answer(triage.MinionAnswer{ID: id, Raw: st.Returns[id]})
		}
		log.WithFields(logrus.Fields{"poll": polls, "new": fresh, "answered": len(answered), "expected": len(expected)}).Debug("job polled")
		if len(answered) >= len(expected) {
			return nil
		}
	}
}

// transient tells the poll failures worth another poll: salt-api
// unreachable for a moment, or a proxy in front of it answering 5xx.
func transient(err error) bool {
	var ue *UnreachableError
	var he *HTTPError
	switch {
	case errors.As(err, &ue):
		return !ue.TLS
	case errors.As(err, &he):
		return he.Status >= 500
	}
	return false
}

// jobAnswer is GET /jobs/<jid>'s answer.
type jobAnswer struct {
	Info []jobInfo `json:"info"`
}

type jobInfo struct {
	Minions []string                   `json:"Minions"`
	Result  map[string]json.RawMessage `json:"Result"`
	Error   json.RawMessage            `json:"Error"`
}

// jobStatus is what a poll learned of a job.
type jobStatus struct {
	// Minions are the minions the master expects (info[0].Minions).
	Minions []string
	// Returns are the answers of the minions back so far, unwrapped.
	Returns map[string]json.RawMessage
}

// parseJob reads GET /jobs/<jid>. Job results read back from the master's
// cache carry extra keys (retcode a dict for multi-function jobs, success
// per function): only the return is kept.
func parseJob(ans jobAnswer) (jobStatus, error) {
	if len(ans.Info) == 0 {
		return jobStatus{}, &ProtocolError{Endpoint: "jobs", Reason: "no info in the answer", Excerpt: `{"info": []}`}
	}
	info := ans.Info[0]
	if len(info.Error) > 0 && !bytes.Equal(info.Error, []byte("null")) {
		var msg string
		if json.Unmarshal(info.Error, &msg) != nil {
			msg = string(info.Error)
		}
		return jobStatus{}, fmt.Errorf("%w: %s", ErrUnknownJob, shorten(msg, maxExcerpt))
	}
	st := jobStatus{Minions: info.Minions, Returns: make(map[string]json.RawMessage, len(info.Result))}
	for id, raw := range info.Result {
		var entry struct {
			Return json.RawMessage `json:"return"`
		}
		if err := json.Unmarshal(raw, &entry); err != nil || entry.Return == nil {
			// A result without a return is not an answer yet.
			continue
		}
		st.Returns[id] = unwrapFullReturn(entry.Return)
	}
	return st, nil
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
