package fakesalt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// jobCacheError is what the master's jobs runner says of a jid it does not know.
const jobCacheError = "Cannot contact returner or no job with this jid"

// noResponse is what a synchronous list call answers for an id with no key.
const noResponse = "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid "

// chunk is one lowstate of POST /.
type chunk struct {
	Client           string `json:"client"`
	Tgt              any    `json:"tgt"`
	TgtType          string `json:"tgt_type"`
	Fun              any    `json:"fun"`
	Arg              any    `json:"arg"`
	Kwarg            any    `json:"kwarg"`
	JID              string `json:"jid"`
	Timeout          any    `json:"timeout"`
	GatherJobTimeout any    `json:"gather_job_timeout"`
	FullReturn       bool   `json:"full_return"`
}

// job is a job the fake master published: its answers are fixed when it
// starts and show up in GET /jobs/<jid> as each minion's delay passes.
type job struct {
	jid     string
	start   time.Time
	c       chunk
	user    string
	minions []string // expected: matched minions with a key
	answers map[string]json.RawMessage
	// results are the minions' entries of info[0].Result, encoded once.
	results map[string][]byte
	delays  map[string]time.Duration
	silent  map[string]bool
}

// run answers POST /: each lowstate in turn.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	var chunks []chunk
	if err := json.Unmarshal(body, &chunks); err != nil {
		var one chunk
		if err := json.Unmarshal(body, &one); err != nil {
			replyHTML(w, http.StatusBadRequest, page(400, "Bad Request", "Invalid JSON document"))
			return
		}
		chunks = []chunk{one}
	}
	s.mu.Lock()
	disabled := s.master.DisabledClients
	malformedMode := s.master.Malformed
	runnerRefused, runnerDelay := s.master.RunnerRefused, s.master.RunnerDelay
	user := s.master.Username
	s.mu.Unlock()

	results := make([]any, 0, len(chunks))
	for _, c := range chunks {
		switch {
		case c.Client == "":
			replyHTML(w, http.StatusBadRequest, page(400, "Bad Request", "No client specified"))
			return
		case slices.Contains(disabled, c.Client) || !slices.Contains([]string{"local", "local_async", "runner"}, c.Client):
			replyHTML(w, http.StatusBadRequest, pageClientDisabled(c.Client))
			return
		}
		var res any
		switch c.Client {
		case "local":
			res = s.local(r, c)
		case "local_async":
			res = s.localAsync(c)
		case "runner":
			if runnerRefused {
				replyHTML(w, http.StatusUnauthorized, pageRunnerRefused(user))
				return
			}
			if !wait(r, runnerDelay) {
				return
			}
			res = s.runner(c)
		}
		results = append(results, res)
	}
	if malformedMode {
		reply(w, http.StatusOK, "application/json", malformed)
		return
	}
	replyJSON(w, object{{"return", results}})
}

// target is what a lowstate's target selects.
type target struct {
	matched []*Minion // minions with a key, in the master's order
	missing []string  // ids of a list target that have no key
}

// resolve selects the minions of c's target; s.mu must be held. A target
// that does not parse matches nothing, as on a real master.
func (s *Server) resolve(c chunk) target {
	var t target
	mt, err := compile(c.Tgt, c.TgtType)
	if err != nil {
		return t
	}
	for _, m := range s.master.Minions {
		if !m.NotAccepted && mt(m) {
			t.matched = append(t.matched, m)
		}
	}
	if c.TgtType == "list" {
		ids, _ := listTarget(c.Tgt)
		for _, id := range ids {
			if !slices.ContainsFunc(t.matched, func(m *Minion) bool { return m.ID == id }) && !slices.Contains(t.missing, id) {
				t.missing = append(t.missing, id)
			}
		}
	}
	return t
}

// newJID returns a 20-digit jid (UTC time to the microsecond), unique on
// this master; s.mu must be held.
func (s *Server) newJID() (string, time.Time) {
	now := s.now().UTC().Truncate(time.Microsecond)
	if !now.After(s.lastJob) {
		now = s.lastJob.Add(time.Microsecond)
	}
	s.lastJob = now
	return now.Format("20060102150405") + fmt.Sprintf("%06d", now.Nanosecond()/1000), now
}

// local answers a synchronous call: it waits for the minions' delays (or,
// for silent ones, the request's scaled timeouts) and returns every answer.
func (s *Server) local(r *http.Request, c chunk) any {
	s.mu.Lock()
	t := s.resolve(c)
	if len(t.matched) == 0 {
		s.mu.Unlock()
		return object{}
	}
	jid, _ := s.newJID()
	limit := time.Duration(float64(seconds(c.Timeout, 5)+seconds(c.GatherJobTimeout, 10)) * float64(time.Second) * s.master.TimeScale)
	type pending struct {
		id     string
		delay  time.Duration
		silent bool
		answer json.RawMessage
	}
	var ps []pending
	longest := time.Duration(0)
	for _, m := range t.matched {
		p := pending{id: m.ID, delay: m.Delay, silent: m.Unreachable || m.Disconnected}
		if s.master.TimeScale > 0 && m.Delay > limit {
			p.silent = true
		}
		if p.silent {
			if s.master.TimeScale > 0 {
				longest = max(longest, limit)
			}
		} else {
			p.answer = m.answer(c.Fun, c.Arg)
			longest = max(longest, m.Delay)
		}
		ps = append(ps, p)
	}
	s.mu.Unlock()

	wait(r, longest)
	out := object{}
	for _, p := range ps {
		switch {
		case p.silent:
			out = append(out, field{p.id, false})
		case c.FullReturn:
			out = append(out, field{p.id, object{{"ret", p.answer}, {"retcode", retcode(c.Fun, p.answer)}, {"jid", jid}}})
		default:
			out = append(out, field{p.id, p.answer})
		}
	}
	for _, id := range t.missing {
		out = append(out, field{id, noResponse + jid})
	}
	return out
}

// localAsync publishes a job and answers its jid and expected minions.
func (s *Server) localAsync(c chunk) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.resolve(c)
	if len(t.matched) == 0 {
		// Salt sends no job, and salt-api answers an empty dict.
		return object{}
	}
	jid, start := s.newJID()
	j := &job{jid: jid, start: start, c: c, user: s.master.Username,
		answers: map[string]json.RawMessage{}, results: map[string][]byte{},
		delays: map[string]time.Duration{}, silent: map[string]bool{}}
	key := string(mustPyJSON(object{{"fun", c.Fun}, {"arg", c.Arg}}))
	for _, m := range t.matched {
		j.minions = append(j.minions, m.ID)
		j.delays[m.ID] = m.Delay
		j.silent[m.ID] = m.Unreachable || m.Disconnected
		if j.silent[m.ID] {
			continue
		}
		enc, ok := s.encoded[encodedKey{m, key}]
		if !ok {
			enc = encodeResult(m, c)
			s.encoded[encodedKey{m, key}] = enc
		}
		j.answers[m.ID], j.results[m.ID] = enc.answer, enc.result
	}
	s.jobs[jid] = j
	return object{{"jid", jid}, {"minions", j.minions}}
}

// encodedKey names a minion's answer to one call: a fleet of thousands of
// minions is asked the same many times, and encoding its answers costs more
// than serving them.
type encodedKey struct {
	m   *Minion
	fun string
}

// encodedResult is a minion's answer to a job, as GET /jobs/<jid> shows it.
type encodedResult struct {
	answer json.RawMessage
	// result is the minion's entry of info[0].Result.
	result []byte
}

func encodeResult(m *Minion, c chunk) encodedResult {
	ans := m.answer(c.Fun, c.Arg)
	if bytes.IndexByte(ans, '\n') >= 0 {
		// A scripted answer written over several lines is served as Salt
		// writes it.
		ans = mustPyJSON(ans)
	}
	var rc, success any = 0, true
	if isList(c.Fun) {
		// A multi-function job's cached result has an empty retcode and
		// a success per function.
		rc, success = object{}, successes(c.Fun, ans)
	}
	result := append([]byte(`{"return": `), ans...)
	result = append(result, `, "retcode": `...)
	result = append(result, mustPyJSON(rc)...)
	result = append(result, `, "success": `...)
	result = append(result, mustPyJSON(success)...)
	return encodedResult{answer: ans, result: append(result, '}')}
}

// wait waits d, or until the client gives up; it reports whether the
// client still waits for the answer.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// runner answers the few runner functions Sift might call.
func (s *Server) runner(c chunk) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	fun, _ := c.Fun.(string)
	switch fun {
	case "cache.grains":
		tgt := c.Tgt
		if tgt == nil {
			tgt = "*"
		}
		out := object{}
		for _, m := range s.resolve(chunk{Tgt: tgt, TgtType: c.TgtType}).matched {
			out = append(out, field{m.ID, grainsObject(m.Grains)})
		}
		return out
	case "manage.status":
		up, down := []string{}, []string{}
		for _, m := range s.master.Minions {
			switch {
			case m.NotAccepted:
			case m.Unreachable || m.Disconnected:
				down = append(down, m.ID)
			default:
				up = append(up, m.ID)
			}
		}
		return object{{"up", up}, {"down", down}}
	case "manage.present", "manage.alived", "manage.not_present", "manage.list_not_state":
		// Presence reads connections, not answers: a hung minion is present.
		want := fun == "manage.present" || fun == "manage.alived"
		ids := []string{}
		for _, m := range s.master.Minions {
			connected := !m.Disconnected && !s.master.NoMinionDataCache
			if !m.NotAccepted && connected == want {
				ids = append(ids, m.ID)
			}
		}
		slices.Sort(ids)
		return ids
	case "jobs.lookup_jid":
		j, ok := s.jobs[c.JID]
		if !ok {
			return object{}
		}
		out := object{}
		for _, id := range j.back(s.now()) {
			out = append(out, field{id, j.answers[id]})
		}
		return out
	}
	return fmt.Sprintf("'%s' is not available.", fun)
}

// back lists the minions of the job that answered by now.
func (j *job) back(now time.Time) []string {
	var ids []string
	for _, id := range j.minions {
		if !j.silent[id] && now.Sub(j.start) >= j.delays[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// serveJobs answers GET /jobs and GET /jobs/<jid>.
func (s *Server) serveJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	malformedMode := s.master.Malformed
	s.mu.Unlock()
	if malformedMode {
		reply(w, http.StatusOK, "application/json", malformed)
		return
	}
	jid := strings.Trim(strings.TrimPrefix(r.URL.Path, "/jobs"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if jid == "" {
		list := object{}
		for _, j := range s.jobs {
			list = append(list, field{j.jid, append(j.description(), field{"StartTime", j.startTime()})})
		}
		slices.SortFunc(list, func(a, b field) int { return strings.Compare(a.Key, b.Key) })
		replyJSON(w, object{{"return", []any{list}}})
		return
	}
	j, ok := s.jobs[jid]
	if !ok {
		replyJSON(w, object{
			{"info", []any{object{{"jid", jid}, {"Error", jobCacheError}, {"StartTime", jidTime(jid)}, {"Result", object{}}}}},
			{"return", []any{object{}}},
		})
		return
	}
	reply(w, http.StatusOK, "application/json", j.document(s.now()))
}

// document is GET /jobs/<jid>'s answer at now. The answers are written
// from their encoding at the job's start: a job of thousands of minions
// is polled many times.
func (j *job) document(now time.Time) []byte {
	back := j.back(now)
	minions := slices.Clone(j.minions)
	slices.Sort(minions)
	info := append(object{{"jid", j.jid}}, j.description()...)
	info = append(info, field{"Minions", minions}, field{"StartTime", j.startTime()})
	head := mustPyJSON(info)
	size := len(head) + 64
	for _, id := range back {
		size += 2*len(id) + len(j.results[id]) + len(j.answers[id]) + 16
	}
	b := make([]byte, 0, size)
	b = append(b, `{"info": [`...)
	b = append(b, head[:len(head)-1]...)
	b = append(b, `, "Result": {`...)
	for i, id := range back {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, mustPyJSON(id)...)
		b = append(b, ": "...)
		b = append(b, j.results[id]...)
	}
	b = append(b, `}}], "return": [{`...)
	for i, id := range back {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, mustPyJSON(id)...)
		b = append(b, ": "...)
		b = append(b, j.answers[id]...)
	}
	return append(b, "}]}"...)
}

// description is the job's entry in the master's job list.
func (j *job) description() object {
	args := j.c.Arg
	if args == nil {
		args = []any{}
	}
	tt := j.c.TgtType
	if tt == "" {
		tt = "glob"
	}
	return object{{"Function", j.c.Fun}, {"Arguments", args}, {"Target", j.c.Tgt}, {"Target-type", tt}, {"User", j.user}}
}

func (j *job) startTime() string { return j.start.Format("2006, Jan 02 15:04:05.000000") }

// jidTime is Salt's jid_to_time: "" for what is not a jid.
func jidTime(jid string) string {
	if len(jid) != 20 {
		return ""
	}
	t, err := time.Parse("20060102150405.000000", jid[:14]+"."+jid[14:])
	if err != nil {
		return ""
	}
	return t.Format("2006, Jan 02 15:04:05.000000")
}

func isList(fun any) bool {
	_, ok := fun.([]any)
	return ok
}

// successes is a multi-function job's success per function: false where
// the function answered a traceback string.
func successes(fun any, ans json.RawMessage) object {
	var values map[string]json.RawMessage
	_ = json.Unmarshal(ans, &values)
	out := object{}
	for _, f := range funcs(fun) {
		v := bytes.TrimSpace(values[f])
		out = append(out, field{f, len(v) > 0 && v[0] != '"'})
	}
	return out
}

// retcode is a full_return's retcode: a dict per function for a
// multi-function call.
func retcode(fun any, ans json.RawMessage) any {
	if !isList(fun) {
		if bytes.HasPrefix(bytes.TrimSpace(ans), []byte(`"`)) {
			return 1
		}
		return 0
	}
	out := object{}
	for _, f := range successes(fun, ans) {
		rc := 0
		if ok, _ := f.Value.(bool); !ok {
			rc = 1
		}
		out = append(out, field{f.Key, rc})
	}
	return out
}

func funcs(fun any) []string {
	switch f := fun.(type) {
	case string:
		return []string{f}
	case []any:
		out := make([]string, 0, len(f))
		for _, v := range f {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// seconds reads a timeout of a lowstate (a number or a numeric string).
func seconds(v any, def float64) float64 {
	switch t := v.(type) {
	case float64:
		return t
	case string:
		var f float64
		if _, err := fmt.Sscan(t, &f); err == nil {
			return f
		}
	}
	return def
}

func grainsObject(g map[string]string) object {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(object, 0, len(keys))
	for _, k := range keys {
		out = append(out, field{k, g[k]})
	}
	return out
}

// answer is what m answers to fun (a function name or a list of them).
func (m *Minion) answer(fun any, arg any) json.RawMessage {
	ans := m.Answer
	switch {
	case ans == nil:
		ans = Healthy()
	case !json.Valid(ans):
		// A scripted answer that is not JSON is served as the string it is.
		ans = mustPyJSON(string(ans))
	}
	var dict map[string]json.RawMessage
	isDict := json.Unmarshal(ans, &dict) == nil && dict != nil
	names := funcs(fun)
	if !isList(fun) {
		if len(names) == 0 {
			return json.RawMessage(`"Passed invalid function"`)
		}
		if v, ok := m.builtin(names[0], arg); ok {
			return v
		}
		if isDict {
			if v, ok := dict[names[0]]; ok {
				return v
			}
			return mustPyJSON(fmt.Sprintf("'%s' is not available.", names[0]))
		}
		return ans
	}
	if !isDict {
		return ans
	}
	if len(dict) == len(names) && !slices.ContainsFunc(names, func(n string) bool { _, ok := dict[n]; return !ok }) {
		// The scripted answer covers the call exactly: served verbatim.
		return ans
	}
	args, _ := arg.([]any)
	out := object{}
	for i, name := range names {
		var a any
		if i < len(args) {
			a = args[i]
		}
		if v, ok := m.builtin(name, a); ok {
			out = append(out, field{name, v})
		} else if v, ok := dict[name]; ok {
			out = append(out, field{name, v})
		} else {
			out = append(out, field{name, moduleMissingTraceback()})
		}
	}
	return mustPyJSON(out)
}

// builtin answers the few Salt functions every minion has.
func (m *Minion) builtin(fun string, arg any) (json.RawMessage, bool) {
	switch fun {
	case "test.ping":
		return json.RawMessage("true"), true
	case "grains.items":
		return mustPyJSON(grainsObject(m.Grains)), true
	case "grains.item":
		keys, _ := arg.([]any)
		out := object{}
		for _, k := range keys {
			if ks, ok := k.(string); ok {
				if v, ok := m.Grains[ks]; ok {
					out = append(out, field{ks, v})
				}
			}
		}
		return mustPyJSON(out), true
	}
	return nil, false
}
