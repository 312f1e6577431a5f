package triage

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Bounds that keep a report's memory flat however many minions answer.
const (
	maxDistinctMessages = 1000 // per cause, distinct messages counted
	maxEvidenceMessages = 5    // per cause, shown
	maxEvidencePaths    = 20   // per commit, shown
	maxNormalizeCache   = 20000
	maxEvidenceText     = 1000 // a comment or message kept as evidence
)

// Aggregator folds classified minions into counts and ranked causes. It is
// safe for concurrent use; decode minions outside it and Add them.
type Aggregator struct {
	mu        sync.Mutex
	commitURL string
	dcs       map[string]*dcTally
	dcOrder   []string
	causes    map[causeID]*causeAcc
	normCache map[string]string
}

type causeID struct {
	kind CauseKind
	key  string
}

type dcTally struct {
	counts   Counts
	expected map[string]struct{}
	answered map[string]struct{}
}

type causeAcc struct {
	id       causeID
	ids      []string
	dcs      map[string]struct{}
	ev       Evidence
	paths    map[string]struct{}
	messages map[string]int
	states   map[string]int
}

// NewAggregator returns an empty aggregator. commitURL is a link template in
// which {commit} stands for the full commit id; empty for no links.
func NewAggregator(commitURL string) *Aggregator {
	return &Aggregator{
		commitURL: commitURL,
		dcs:       map[string]*dcTally{},
		causes:    map[causeID]*causeAcc{},
		normCache: map[string]string{},
	}
}

func (a *Aggregator) tally(dc string) *dcTally {
	t, ok := a.dcs[dc]
	if !ok {
		t = &dcTally{expected: map[string]struct{}{}, answered: map[string]struct{}{}}
		a.dcs[dc] = t
		a.dcOrder = append(a.dcOrder, dc)
	}
	return t
}

// Expect records minions that datacenter dc should hear from. Those that
// never answer are counted unreachable by Finish.
func (a *Aggregator) Expect(dc string, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tally(dc)
	for _, id := range ids {
		t.expected[id] = struct{}{}
	}
}

// Add counts one classified minion. A second answer from the same minion in
// the same datacenter is ignored.
func (a *Aggregator) Add(m Minion) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tally(m.Datacenter)
	if _, dup := t.answered[m.ID]; dup {
		return false
	}
	t.answered[m.ID] = struct{}{}
	t.expected[m.ID] = struct{}{}
	t.counts.add(m.Status)
	switch m.Status {
	case StatusFailing:
		a.addFailing(m)
	case StatusUnreachable:
		a.addPlain(CauseUnreachable, m)
	case StatusModuleMissing:
		a.addPlain(CauseModuleMissing, m)
	case StatusBlameError:
		a.addPlain(CauseBlameError, m)
	}
	return true
}

// Answered returns how many minions of dc have been added so far.
func (a *Aggregator) Answered(dc string) (answered, expected int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.dcs[dc]
	if !ok {
		return 0, 0
	}
	return len(t.answered), len(t.expected)
}

func (a *Aggregator) cause(kind CauseKind, key string) *causeAcc {
	id := causeID{kind, key}
	c, ok := a.causes[id]
	if !ok {
		c = &causeAcc{id: id, dcs: map[string]struct{}{}}
		a.causes[id] = c
	}
	return c
}

func (c *causeAcc) add(m Minion) {
	c.ids = append(c.ids, m.ID)
	if m.Datacenter != "" {
		c.dcs[m.Datacenter] = struct{}{}
	}
}

func (c *causeAcc) message(s string) {
	if s == "" {
		return
	}
	s = truncate(s, maxEvidenceText)
	if c.messages == nil {
		c.messages = map[string]int{}
	}
	if _, ok := c.messages[s]; ok || len(c.messages) < maxDistinctMessages {
		c.messages[s]++
	}
}

func (c *causeAcc) state(sig string) {
	if c.states == nil {
		c.states = map[string]int{}
	}
	if _, ok := c.states[sig]; ok || len(c.states) < maxDistinctMessages {
		c.states[sig]++
	}
}

func (c *causeAcc) window(m Minion) {
	if m.FailedJob != nil && m.FailedJob.Time != "" && (c.ev.FirstFailure == "" || m.FailedJob.Time < c.ev.FirstFailure) {
		c.ev.FirstFailure = m.FailedJob.Time
	}
	if m.LastSuccessJob != nil && m.LastSuccessJob.Time > c.ev.LastSuccess {
		c.ev.LastSuccess = m.LastSuccessJob.Time
	}
}

func (a *Aggregator) addPlain(kind CauseKind, m Minion) {
	c := a.cause(kind, string(kind))
	c.add(m)
	c.message(m.Detail)
}

// failure is one failed state or compile error of a minion, by signature.
type failure struct {
	sig     string
	fun     string
	id      string
	sls     string
	comment string
	compile bool
}

func (a *Aggregator) normalize(msg, minionID string) string {
	if minionID != "" && strings.Contains(msg, minionID) {
		msg = strings.ReplaceAll(msg, minionID, "<minion>")
	}
	if n, ok := a.normCache[msg]; ok {
		return n
	}
	n := Normalize(msg, "")
	if len(a.normCache) < maxNormalizeCache {
		a.normCache[msg] = n
	}
	return n
}

func (a *Aggregator) failures(m Minion) []failure {
	out := make([]failure, 0, len(m.FailedStates)+len(m.CompileErrors))
	for _, s := range m.FailedStates {
		out = append(out, failure{
			sig: s.Fun + "|" + s.ID + "|" + a.normalize(s.Comment, m.ID),
			fun: s.Fun, id: s.ID, sls: s.SLS, comment: s.Comment,
		})
	}
	for _, e := range m.CompileErrors {
		out = append(out, failure{
			sig: "compile_error|" + e.State + "|" + a.normalize(e.Message, m.ID),
			sls: e.State, comment: e.Message, compile: true,
		})
	}
	return out
}

func (a *Aggregator) addFailing(m Minion) {
	fails := a.failures(m)
	explained := false
	var seen []string

	for _, cm := range m.Commits {
		if slices.Contains(seen, cm.ID) {
			a.causes[causeID{CauseCommit, cm.ID}].paths[cm.Path] = struct{}{}
			continue
		}
		seen = append(seen, cm.ID)
		c := a.cause(CauseCommit, cm.ID)
		if c.paths == nil {
			c.paths = map[string]struct{}{}
			c.ev.CommitID, c.ev.AuthorName, c.ev.AuthorEmail, c.ev.CommitDatetime = cm.ID, cm.AuthorName, cm.AuthorEmail, cm.Datetime
			if a.commitURL != "" {
				c.ev.CommitURL = strings.NewReplacer("{commit}", cm.ID, "{short}", shortCommit(cm.ID)).Replace(a.commitURL)
			}
		}
		if cm.Path != "" {
			c.paths[cm.Path] = struct{}{}
		}
		c.add(m)
		c.window(m)
		for _, f := range fails {
			c.state(f.sig)
		}
		explained = true
	}

	if len(m.Commits) == 0 && m.FailedJob != nil && m.LastSuccessJob != nil &&
		m.FailedJob.CodebaseVersion != "" && m.FailedJob.CodebaseVersion != m.LastSuccessJob.CodebaseVersion {
		c := a.cause(CauseRelease, m.FailedJob.CodebaseVersion)
		c.ev.Version = m.FailedJob.CodebaseVersion
		c.message(m.LastSuccessJob.CodebaseVersion) // previous versions, most frequent wins
		c.add(m)
		c.window(m)
		for _, f := range fails {
			c.state(f.sig)
		}
		explained = true
	}

	seen = seen[:0]
	service := func(raw, example string) {
		origin, ok := ServiceOrigin(raw)
		if !ok || slices.Contains(seen, origin) {
			return
		}
		seen = append(seen, origin)
		c := a.cause(CauseExternalService, origin)
		c.ev.ServiceURL = origin
		c.add(m)
		c.window(m)
		c.message(a.normalize(example, m.ID))
		explained = true
	}
	for _, e := range m.CompileErrors {
		for _, u := range e.URLs {
			service(u, e.Message)
		}
	}
	for _, s := range m.FailedStates {
		for _, u := range URLsIn(s.Comment) {
			service(u, s.Comment)
		}
	}
	for _, e := range m.CompileErrors {
		for _, u := range URLsIn(e.Message) {
			service(u, e.Message)
		}
	}

	if explained {
		return
	}
	// Nothing above explains the minion: its failed states themselves are
	// the cause, grouped by signature.
	seen = seen[:0]
	for _, f := range fails {
		if slices.Contains(seen, f.sig) {
			continue
		}
		seen = append(seen, f.sig)
		c := a.cause(CauseFailedState, f.sig)
		if c.ev.Comment == "" {
			c.ev.Comment = truncate(f.comment, maxEvidenceText)
			if f.compile {
				c.ev.CompileState = f.sls
			} else {
				c.ev.Fun, c.ev.StateID, c.ev.SLS = f.fun, f.id, f.sls
			}
		}
		c.add(m)
		c.window(m)
	}
}

// Finish counts expected minions that never answered as unreachable and
// returns the ranked causes and per-datacenter tallies (in the order the
// datacenters were first seen).
func (a *Aggregator) Finish() (Counts, []Cause, map[string]Counts) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, dc := range a.dcOrder {
		t := a.dcs[dc]
		for id := range t.expected {
			if _, ok := t.answered[id]; !ok {
				t.answered[id] = struct{}{}
				t.counts.add(StatusUnreachable)
				a.addPlain(CauseUnreachable, Minion{ID: id, Datacenter: dc, Status: StatusUnreachable, Detail: "expected, never answered"})
			}
		}
	}
	var total Counts
	perDC := make(map[string]Counts, len(a.dcs))
	for _, dc := range a.dcOrder {
		t := a.dcs[dc]
		t.counts.Expected = len(t.expected)
		perDC[dc] = t.counts
		total = total.Plus(t.counts)
	}
	causes := make([]Cause, 0, len(a.causes))
	for _, c := range a.causes {
		causes = append(causes, c.build())
	}
	slices.SortFunc(causes, compareCauses)
	return total, causes, perDC
}

func compareCauses(x, y Cause) int {
	if c := cmp.Compare(y.Minions, x.Minions); c != 0 {
		return c
	}
	if c := cmp.Compare(slices.Index(CauseKinds, x.Kind), slices.Index(CauseKinds, y.Kind)); c != 0 {
		return c
	}
	return strings.Compare(x.Key, y.Key)
}

func (c *causeAcc) build() Cause {
	ids := slices.Clone(c.ids)
	slices.Sort(ids)
	ev := c.ev
	ev.Paths = firstN(slices.Sorted(maps.Keys(c.paths)), maxEvidencePaths)
	msgs := topKeys(c.messages, maxEvidenceMessages)
	if c.id.kind == CauseRelease {
		if len(msgs) > 0 {
			ev.PreviousVersion = msgs[0]
		}
	} else {
		ev.Messages = msgs
	}
	ev.FailedStates = topKeys(c.states, 3)
	out := Cause{
		Kind:        c.id.kind,
		Key:         c.id.key,
		Minions:     len(ids),
		MinionIDs:   ids,
		Datacenters: slices.Sorted(maps.Keys(c.dcs)),
		Evidence:    ev,
	}
	out.Summary = summary(out)
	return out
}

// topKeys returns the n most frequent keys, ties broken by key.
func topKeys(m map[string]int, n int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return firstN(keys, n)
}

func shortCommit(id string) string { return id[:min(7, len(id))] }

// label names a cause in a sentence: "commit e4a91b2 by John Doe".
func label(c Cause) string {
	ev := c.Evidence
	switch c.Kind {
	case CauseCommit:
		s := "commit " + shortCommit(c.Key)
		if ev.AuthorName != "" {
			s += " by " + ev.AuthorName
		}
		return s
	case CauseRelease:
		return "release " + c.Key
	case CauseExternalService:
		return "external service " + c.Key
	case CauseFailedState:
		if ev.Fun == "" {
			return "compile error in " + nonEmpty(ev.CompileState, "an unnamed sls")
		}
		return "failed state " + ev.Fun + " " + ev.StateID
	}
	return string(c.Kind)
}

func summary(c Cause) string {
	ev := c.Evidence
	switch c.Kind {
	case CauseCommit:
		s := label(c)
		if len(ev.Paths) > 0 {
			s += " touching " + ev.Paths[0]
			if n := len(ev.Paths) - 1; n > 0 {
				s += fmt.Sprintf(" and %d more path%s", n, plural(n))
			}
		}
		return s
	case CauseRelease:
		if ev.PreviousVersion != "" {
			return fmt.Sprintf("release %s (from %s) with no commit touching the failed states", c.Key, ev.PreviousVersion)
		}
		return label(c)
	case CauseExternalService:
		return label(c) + " named in compile errors or failed states"
	case CauseFailedState:
		s := label(c)
		if ev.SLS != "" {
			s += " (sls " + ev.SLS + ")"
		}
		if ev.Comment != "" {
			s += ": " + truncate(firstLine(ev.Comment), 200)
		}
		return s
	case CauseUnreachable:
		return fmt.Sprintf("%d minion%s did not answer the blame call", c.Minions, plural(c.Minions))
	case CauseModuleMissing:
		return fmt.Sprintf("blame module missing on %d minion%s (sync it with saltutil.sync_modules or a highstate)", c.Minions, plural(c.Minions))
	case CauseBlameError:
		return fmt.Sprintf("blame module could not answer on %d minion%s", c.Minions, plural(c.Minions))
	}
	return string(c.Kind)
}

// Headline is the one sentence a report leads with: the top cause and how
// much of the failure it explains, or that nothing fails.
func Headline(counts Counts, causes []Cause) string {
	checked := counts.Expected
	if len(causes) == 0 || (counts.Failing == 0 && !hasNonFailingCause(causes)) {
		switch {
		case counts.Failing > 0:
			return fmt.Sprintf("%d failing minion%s, no common cause found among %d checked", counts.Failing, plural(counts.Failing), checked)
		case checked == 0:
			return "no minions matched: nothing to triage"
		case counts.NoJobs > 0:
			return fmt.Sprintf("no failing highstates: %d minion%s checked, %d with no cached highstate yet", checked, plural(checked), counts.NoJobs)
		default:
			return fmt.Sprintf("no failing highstates: %d minion%s checked, all healthy", checked, plural(checked))
		}
	}
	top := causes[0]
	in := ""
	if n := len(top.Datacenters); n > 0 {
		in = fmt.Sprintf(" in %d datacenter%s", n, plural(n))
	}
	if top.Kind.Explains() {
		return fmt.Sprintf("%s explains %d of %d failing minion%s%s", label(top), top.Minions, counts.Failing, plural(counts.Failing), in)
	}
	var s string
	switch top.Kind {
	case CauseUnreachable:
		s = fmt.Sprintf("%d of %d minion%s unreachable%s", top.Minions, checked, plural(checked), in)
	case CauseModuleMissing:
		s = fmt.Sprintf("blame module missing on %d of %d minion%s%s", top.Minions, checked, plural(checked), in)
	default:
		s = fmt.Sprintf("blame module errors on %d of %d minion%s%s", top.Minions, checked, plural(checked), in)
	}
	if counts.Failing > 0 {
		return s + fmt.Sprintf("; %d failing", counts.Failing)
	}
	return s + "; no failing highstates among the others"
}

func hasNonFailingCause(causes []Cause) bool {
	for _, c := range causes {
		if !c.Kind.Explains() {
			return true
		}
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
