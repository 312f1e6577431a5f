package saltapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// The runner functions that tell which minions are connected. They read the
// master's key list, its minion data cache and its open connections; no
// command reaches the minions, so they answer in about a second.
const (
	funPresent    = "manage.present"
	funNotPresent = "manage.not_present"
)

// presenceTimeout bounds the runner calls that ask for presence: it is sent
// as the runner client's own deadline (salt-api answers 504 past it), and
// the HTTP request gets a margin on top.
const (
	presenceTimeout = 10 * time.Second
	presenceMargin  = 5 * time.Second
)

// presenceFix is what an operator grants so that presence can be asked.
const presenceFix = "grant @runner: [manage.present, manage.not_present] (see salt/README.md)"

// presence is what the master says of its minions' connections.
type presence struct {
	// connected lists manage.present: accepted minions with a connection
	// to the master's publish port.
	connected map[string]bool
	// notConnected lists manage.not_present: the other accepted minions.
	notConnected map[string]bool
	// listed is set when both lists came back, so that an id in neither has
	// no accepted key.
	listed bool
	// problem says why presence is unknown, for the report; empty when the
	// master's not-connected list can be trusted.
	problem string
	// err is the failure behind problem, for the log.
	err error
}

// known reports whether a minion the master lists as not connected can be
// counted unreachable without waiting for it.
func (p presence) known() bool { return p.listed && p.problem == "" }

// runnerLowstate is one runner call in salt-api's POST / body. Its top-level
// timeout is the runner client's deadline.
type runnerLowstate struct {
	Client  string `json:"client"`
	Fun     string `json:"fun"`
	Timeout int    `json:"timeout"`
}

// askPresence asks the master which minions are connected. It never fails:
// what went wrong is in the answer's problem, and the caller waits for
// every minion as it would without presence.
//
// The lists are the master's, not a target's: the calls of the datacenters
// a master serves, made at the same time, share one question.
func (c *Client) askPresence(ctx context.Context) presence {
	ch := c.presence.DoChan("presence", func() (any, error) {
		// The question outlives a caller that gives up, for the others
		// that wait on it; its timeout bounds it.
		return c.presenceOf(context.WithoutCancel(ctx)), nil
	})
	select {
	case res := <-ch:
		return res.Val.(presence)
	case <-ctx.Done():
		return presence{problem: "presence unknown: " + ctx.Err().Error(), err: ctx.Err()}
	}
}

// presenceOf asks manage.present and manage.not_present, at once.
func (c *Client) presenceOf(ctx context.Context) presence {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout+presenceMargin)
	defer cancel()
	var (
		lists [2][]string
		errs  [2]error
		wg    sync.WaitGroup
	)
	for i, fun := range []string{funPresent, funNotPresent} {
		wg.Go(func() { lists[i], errs[i] = c.runnerList(ctx, fun) })
	}
	wg.Wait()
	p := presence{connected: set(lists[0]), notConnected: set(lists[1])}
	err := errors.Join(errs[0], errs[1])
	switch {
	case err != nil:
		p.problem, p.err = c.presenceProblem(errs[0], errs[1]), err
	case len(lists[0]) == 0 && len(lists[1]) > 0:
		// manage.present reads the minion data cache and the master's
		// connections: empty while minions are listed at all means the
		// master cannot tell, not that every minion is down.
		p.listed = true
		p.problem = fmt.Sprintf("presence unknown: %s lists none of its %d minions as connected (manage.present is empty; is minion_data_cache off?), so minions that do not answer are waited for until Salt's timeout",
			c.cfg.Name, len(lists[1]))
	default:
		p.listed = true
	}
	if p.problem != "" {
		c.log.WithError(p.err).WithField("problem", p.problem).Debug("presence unknown")
	}
	return p
}

// runnerList calls a runner function that answers a list of minion ids.
func (c *Client) runnerList(ctx context.Context, fun string) ([]string, error) {
	ex := exchange{method: http.MethodPost, path: "/", endpoint: "runner", label: "runner " + fun,
		body: []runnerLowstate{{Client: "runner", Fun: fun, Timeout: seconds(presenceTimeout)}}}
	var ans returnAnswer
	if err := c.call(ctx, ex, &ans); err != nil {
		return nil, err
	}
	if len(ans.Return) == 0 {
		return nil, c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "empty return list", Excerpt: `{"return": []}`})
	}
	var ids []string
	if err := json.Unmarshal(ans.Return[0], &ids); err != nil || ids == nil {
		return nil, c.wrap(ex, &ProtocolError{Master: c.cfg.Name, Endpoint: ex.endpoint, Reason: "not a list of minion ids", Excerpt: shorten(string(ans.Return[0]), 80)})
	}
	return ids, nil
}

// presenceProblem words, for an SRE, why presence could not be asked and
// what would fix it.
func (c *Client) presenceProblem(errs ...error) string {
	var err error
	for _, e := range errs {
		if e != nil {
			err = e
			break
		}
	}
	var (
		cd *ClientDisabledError
		he *HTTPError
		pe *ProtocolError
		ue *UnreachableError
	)
	why, fix := fmt.Sprintf("did not answer the manage runner (%v)", err), ""
	switch {
	case errors.As(err, &cd):
		why, fix = "has the runner client disabled (HTTP 400)", "add runner to netapi_enable_clients in the master config"
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		why, fix = "refused the manage runner (HTTP 401)", presenceFix
	case errors.As(err, &he) && he.Status == http.StatusGatewayTimeout:
		why = fmt.Sprintf("did not answer the manage runner within %s (HTTP 504)", presenceTimeout)
	case errors.As(err, &he):
		why = fmt.Sprintf("answered the manage runner with HTTP %d", he.Status)
	case errors.As(err, &pe):
		why = fmt.Sprintf("answered the manage runner with something other than a list of minion ids (%s), as a master without manage.present and manage.not_present does", pe.Excerpt)
	case errors.As(err, &ue):
		why = "could not be reached for presence"
	case errors.Is(err, context.DeadlineExceeded):
		why = fmt.Sprintf("did not answer the manage runner within %s", presenceTimeout+presenceMargin)
	}
	note := fmt.Sprintf("presence unknown: %s %s, so minions that do not answer are waited for until Salt's timeout", c.cfg.Name, why)
	if fix != "" {
		note += "; " + fix
	}
	return note
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// logPresence records what presence told of a job's minions.
func logPresence(log logrus.FieldLogger, p presence, absent int) {
	if p.known() {
		log.WithFields(logrus.Fields{"connected": len(p.connected), "not_connected": len(p.notConnected), "absent": absent}).Debug("presence known")
	}
}
