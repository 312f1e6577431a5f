package triage

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Bounds that keep a report's memory flat however many minions answer.
const (
	maxDistinctMessages = 1000 // per cause, distinct messages counted
	maxEvidenceMessages = 5    // per cause, shown
	maxEvidencePaths    = 20   // per commit, shown
	maxEvidenceText     = 1000 // a comment or message kept as evidence
	maxEvidenceStates   = 3    // per cause, failed states shown
	maxRemovedCommits   = 20   // per rollback, shown
)

// Aggregator folds classified minions into counts and ranked causes. It is
// safe for concurrent use; decode minions outside it and Add them.
//
// Two locks, always taken in this order: ids guards the datacenters and
// which minions each expects and has heard from; mu guards the counts and
// causes. Add lets go of ids once it holds mu, so that one minion's answer
// is checked while another's is counted, and Finish never sees a minion
// checked but not counted.
type Aggregator struct {
	commitURL string

	ids     sync.Mutex
	dcs     map[string]*dcTally
	dcOrder []string
	// last is the tally of the datacenter last seen: minions come
	// datacenter by datacenter.
	last *dcTally

	mu     sync.Mutex
	causes map[causeID]*causeAcc
	// states are the failed-state causes, by signature: the key a person
	// reads is derived from it only when the report is built.
	states hashMap[Signature, *causeAcc]
}

type causeID struct {
	kind CauseKind
	key  string
}

type dcTally struct {
	name string
	// bit is the datacenter's place in the aggregator's order (dcSet), -1
	// for the unnamed one, which no cause lists.
	bit      int
	counts   Counts // under the aggregator's mu; the rest under ids
	expected idSet
	answered idSet
	// unlisted counts the answered minions not in expected: a minion that
	// answers is expected, without a second set of every id.
	unlisted int
}

// expectedCount is how many minions dc should hear from: those listed and
// those that answered unlisted.
func (t *dcTally) expectedCount() int { return t.expected.len() + t.unlisted }

type causeAcc struct {
	id       causeID
	sig      Signature // failed-state causes only
	ids      []string
	dcs      dcSet
	ev       Evidence
	paths    map[string]struct{}
	messages map[string]int
	states   hashMap[Signature, int]
	examples hashMap[Signature, *exampleAcc]
	// dependents are the states that failed only because this cause's
	// state failed, by identity (their comments name the root).
	dependents map[stateRef]struct{}
	requisites map[string]struct{}
	// Rollbacks: the commits served before, and the commits taken out.
	from    map[string]int
	removed map[string]*removedAcc
}

// stateRef names a state without how it failed.
type stateRef struct{ fun, id, sls string }

// exampleAcc counts the real messages of one template among a cause's
// minions.
type exampleAcc struct {
	minions int
	texts   textMap
	// first is the smallest text seen with the smallest minion that sent
	// it: the example when every text is different (each minion's own
	// values), whatever order the minions arrived in.
	first    Example
	firstCut bool
}

type textCount struct {
	n      int
	minion string
	cut    bool // the message was longer than its key
}

type removedAcc struct {
	c     RemovedCommit
	paths map[string]struct{}
}

// NewAggregator returns an empty aggregator. commitURL is a link template in
// which {commit} stands for the full commit id; empty for no links.
func NewAggregator(commitURL string) *Aggregator {
	return &Aggregator{
		commitURL: commitURL,
		dcs:       map[string]*dcTally{},
		causes:    map[causeID]*causeAcc{},
	}
}

func (a *Aggregator) tally(dc string) *dcTally {
	if a.last != nil && a.last.name == dc {
		return a.last
	}
	t, ok := a.dcs[dc]
	if !ok {
		t = &dcTally{name: dc, bit: len(a.dcOrder)}
		if dc == "" {
			t.bit = -1
		}
		a.dcs[dc] = t
		a.dcOrder = append(a.dcOrder, dc)
	}
	a.last = t
	return t
}

// Expect records minions that datacenter dc should hear from. Those that
// never answer are counted unreachable by Finish.
func (a *Aggregator) Expect(dc string, ids []string) {
	a.ids.Lock()
	defer a.ids.Unlock()
	t := a.tally(dc)
	for _, id := range ids {
		h := hashString(id)
		if t.expected.add(h, id) && t.answered.has(h, id) {
			t.unlisted--
		}
	}
}

// Add counts one classified minion. A second answer from the same minion in
// the same datacenter is ignored. It is AddPrepared(Prepare(m)), worked out
// on the caller's stack.
func (a *Aggregator) Add(m Minion) bool {
	var fail preparedFailure
	if m.Status == StatusFailing {
		var buf prepareBuf // cleared only for a failing minion
		var fold *foldScratch
		if slices.ContainsFunc(m.FailedStates, isRequisiteFailure) {
			fold = foldScratches.Get().(*foldScratch)
			defer foldScratches.Put(fold) // after counting: the failures hold its lists
		}
		fail = prepareFailure(m, &buf, fold)
	}
	// The minion goes apart from its failures, which are in buf: what
	// counting keeps of a Prepared would take buf off the stack.
	return a.add(m, hashString(m.ID), jobWindowOf(m), &fail)
}

// Prepared is a minion with what counting it goes by worked out: its
// failures, the services they name, and the hashes of its id, signatures
// and evidence. It holds nothing of the call that made it.
type Prepared struct {
	m    Minion
	id   uint64
	win  jobWindow
	fail preparedFailure
}

// jobWindow is when a minion failed and last succeeded, read out of its
// jobs before the lock: every cause the minion counts in reads them.
type jobWindow struct{ failed, succeeded string }

func jobWindowOf(m Minion) jobWindow {
	var w jobWindow
	if m.FailedJob != nil {
		w.failed = m.FailedJob.Time
	}
	if m.LastSuccessJob != nil {
		w.succeeded = m.LastSuccessJob.Time
	}
	return w
}

// Prepare works out what counting m goes by without touching the
// aggregator: it is safe for concurrent use and takes no lock, so decoding
// workers prepare minions in parallel and AddPrepared only counts them.
func (a *Aggregator) Prepare(m Minion) Prepared { return prepareIn(m, nil) }

// prepareIn is Prepare, its lists in arena (nil for lists of their own):
// the result is valid until arena is reset.
func prepareIn(m Minion, arena *batchArena) Prepared {
	p := Prepared{m: m, id: hashString(m.ID), win: jobWindowOf(m)}
	if m.Status != StatusFailing {
		return p
	}
	var buf prepareBuf
	var fold *foldScratch
	if slices.ContainsFunc(m.FailedStates, isRequisiteFailure) {
		fold = foldScratches.Get().(*foldScratch)
		defer foldScratches.Put(fold)
	}
	p.fail = prepareFailure(m, &buf, fold).owned(arena)
	return p
}

// AddPrepared counts a minion Prepare worked out, as Add would count it.
func (a *Aggregator) AddPrepared(p Prepared) bool { return a.add(p.m, p.id, p.win, &p.fail) }

// add checks and counts minion m of hash id: only this is under the locks.
func (a *Aggregator) add(m Minion, id uint64, win jobWindow, fail *preparedFailure) bool {
	a.ids.Lock()
	t := a.tally(m.Datacenter)
	if !t.answered.add(id, m.ID) {
		a.ids.Unlock()
		return false
	}
	if !t.expected.has(id, m.ID) {
		t.unlisted++
	}
	a.mu.Lock()
	a.ids.Unlock()
	defer a.mu.Unlock()
	t.counts.add(m.Status)
	switch m.Status {
	case StatusFailing:
		a.addFailing(m, &win, fail, t.bit)
	case StatusUnreachable:
		a.addPlain(CauseUnreachable, m, t.bit)
	case StatusModuleMissing:
		a.addPlain(CauseModuleMissing, m, t.bit)
	case StatusBlameError:
		a.addPlain(CauseBlameError, m, t.bit)
	}
	return true
}

// Answered returns how many minions of dc have been added so far.
func (a *Aggregator) Answered(dc string) (answered, expected int) {
	a.ids.Lock()
	defer a.ids.Unlock()
	t, ok := a.dcs[dc]
	if !ok {
		return 0, 0
	}
	return t.answered.len(), t.expectedCount()
}

func (a *Aggregator) cause(kind CauseKind, key string) *causeAcc {
	id := causeID{kind, key}
	c, ok := a.causes[id]
	if !ok {
		// The key may be part of a long message: keep only the key.
		id.key = strings.Clone(key)
		c = &causeAcc{id: id}
		a.causes[id] = c
	}
	return c
}

func (a *Aggregator) stateCause(sig Signature, h uint64) *causeAcc {
	c, ok := a.states.get(h, sig)
	if !ok {
		c = &causeAcc{id: causeID{kind: CauseFailedState}, sig: sig}
		a.states.insert(h, sig, c)
	}
	return c
}

// add counts minion id of the datacenter at bit (dcTally.bit).
func (c *causeAcc) add(id string, bit int) {
	c.ids = append(c.ids, id)
	if bit >= 0 {
		c.dcs.add(bit)
	}
}

// evidenceKey is the part of a message kept as evidence: its first
// maxEvidenceText bytes, cut at a rune, without copying. A message is
// counted under its key and copied only when the key is new: under the
// aggregator's lock, most messages are ones seen before.
func evidenceKey(s string) (key string, cut bool) {
	if len(s) <= maxEvidenceText {
		return s, false
	}
	i := maxEvidenceText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// evidenceText is what a person is shown of a key.
func evidenceText(key string, cut bool) string {
	key = strings.ToValidUTF8(key, "\uFFFD")
	if cut {
		return key + "…"
	}
	return key
}

func (c *causeAcc) message(s string) {
	if s == "" {
		return
	}
	key, cut := evidenceKey(s)
	if c.messages == nil {
		c.messages = map[string]int{}
	}
	if _, ok := c.messages[key]; ok {
		c.messages[key]++
	} else if len(c.messages) < maxDistinctMessages {
		c.messages[strings.Clone(evidenceText(key, cut))]++
	}
}

func (c *causeAcc) state(sig Signature, h uint64) {
	if n := c.states.ref(h, sig); n != nil {
		*n++
	} else if c.states.len() < maxDistinctMessages {
		c.states.insert(h, sig, 1)
	}
}

// evidence is a message as it is counted: its key (evidenceKey) and the
// key's hash, worked out before the aggregator's lock.
type evidence struct {
	key  string
	cut  bool
	hash uint64
}

func evidenceOf(text string) evidence {
	if text == "" {
		return evidence{}
	}
	key, cut := evidenceKey(text)
	return evidence{key: key, cut: cut, hash: hashString(key)}
}

// example counts one minion's message of template sig (of hash h).
func (c *causeAcc) example(sig Signature, h uint64, text evidence, minion string) {
	if text.key == "" && !text.cut {
		return // no message
	}
	e, ok := c.examples.get(h, sig)
	if !ok {
		if c.examples.len() >= maxDistinctMessages {
			return
		}
		e = &exampleAcc{}
		c.examples.insert(h, sig, e)
	}
	e.minions++
	key := text.key
	if tc := e.texts.ref(text.hash, key); tc != nil {
		tc.n++
		tc.minion = min(tc.minion, minion)
		return
	}
	first := e.first.Text == "" || key < e.first.Text || key == e.first.Text && minion < e.first.Minion
	kept := e.texts.len() < maxDistinctMessages
	if !first && !kept {
		return // counted; the text is neither kept nor the example
	}
	key = strings.Clone(key)
	if first {
		e.first, e.firstCut = Example{Text: key, Minion: minion}, text.cut
	}
	if kept {
		e.texts.insert(text.hash, key, textCount{n: 1, minion: minion, cut: text.cut})
	}
}

func (c *causeAcc) dependent(s stateRef) {
	if c.dependents == nil {
		c.dependents = map[stateRef]struct{}{}
	}
	if len(c.dependents) < maxDistinctMessages {
		c.dependents[s] = struct{}{}
	}
}

func (c *causeAcc) window(w *jobWindow) {
	if w.failed != "" && (c.ev.FirstFailure == "" || w.failed < c.ev.FirstFailure) {
		c.ev.FirstFailure = w.failed
	}
	if w.succeeded > c.ev.LastSuccess {
		c.ev.LastSuccess = w.succeeded
	}
}

func (a *Aggregator) addPlain(kind CauseKind, m Minion, bit int) {
	c := a.cause(kind, string(kind))
	c.add(m.ID, bit)
	c.message(m.Detail)
}

// stateFailure is one failed state or compile error of a minion.
type stateFailure struct {
	sig     Signature
	sigHash uint64
	text    evidence
	// again is set when an earlier failure of the minion has the same
	// signature: its failed-state cause counts the minion once.
	again bool
	// dependents are the states that failed only because this one did.
	dependents []stateRef
	// requisites are what a requisite failure named when none of it is
	// among the minion's failures.
	requisites []string
}

// template is a message's template: made by the decoding worker
// (DecodeMinion), or here for a Minion built some other way.
func template(t, msg, minionID string) string {
	if t != "" || msg == "" {
		return t
	}
	return TemplateOf(msg, minionID)
}

// failures appends to out the minion's failures by signature, each state
// that failed only because a requisite failed folded into the state it
// names, in sc (nil when no state is a requisite failure).
func failures(m Minion, out []stateFailure, sc *foldScratch) []stateFailure {
	var dependents [][]int
	var folds []*requisiteFold
	if sc != nil {
		dependents, folds = foldRequisites(m.FailedStates, sc)
	}
	for i, s := range m.FailedStates {
		var fold *requisiteFold
		if folds != nil {
			fold = folds[i]
		}
		if fold != nil && len(fold.roots) > 0 {
			continue // evidence of its roots, not a failure of its own
		}
		f := stateFailure{
			sig:  Signature{Fun: s.Fun, StateID: s.ID, SLS: s.SLS, Template: template(s.Template, s.Comment, m.ID)},
			text: evidenceOf(s.Comment),
		}
		if fold != nil {
			f.requisites = fold.unknown
		}
		if dependents != nil && len(dependents[i]) > 0 {
			from := len(sc.refs)
			for _, d := range dependents[i] {
				d := m.FailedStates[d]
				sc.refs = append(sc.refs, stateRef{d.Fun, d.ID, d.SLS})
			}
			f.dependents = sc.refs[from:]
		}
		out = append(out, f)
	}
	for _, e := range m.CompileErrors {
		out = append(out, stateFailure{
			sig:  Signature{SLS: e.State, Template: template(e.Template, e.Message, m.ID)},
			text: evidenceOf(e.Message),
		})
	}
	var seen map[Signature]struct{} // for a minion failing many states
	if len(out) > maxFailuresCompared {
		seen = make(map[Signature]struct{}, len(out))
	}
	for i := range out {
		f := &out[i]
		f.sigHash = hashSignature(f.sig)
		if seen == nil {
			f.again = slices.ContainsFunc(out[:i], func(g stateFailure) bool { return g.sigHash == f.sigHash && g.sig == f.sig })
			continue
		}
		_, f.again = seen[f.sig]
		seen[f.sig] = struct{}{}
	}
	return out
}

// maxFailuresCompared is how many failures of a minion are compared with
// one another to find a signature twice; more go through a map.
const maxFailuresCompared = 32

// preparedFailure is what Add works out of a failing minion before it
// takes the locks.
type preparedFailure struct {
	fails    []stateFailure
	services []serviceHit
}

// prepareBuf is where prepareFailure works, on Add's stack: a minion fails
// a few states, and most name no more than a few URLs.
type prepareBuf struct {
	fails    [4]stateFailure
	services [2]serviceHit
	urls     [4]string
}

// serviceHit is an external service a minion's failure names, once per
// origin, with the message that named it.
type serviceHit struct {
	origin  string
	example evidence
	sig     Signature
	sigHash uint64
}

// prepareFailure works out a failing minion's failures and the services
// they name, in buf, and its requisites in fold (nil when no state is a
// requisite failure): the result holds them.
func prepareFailure(m Minion, buf *prepareBuf, fold *foldScratch) preparedFailure {
	var p preparedFailure
	p.fails = failures(m, buf.fails[:0], fold)
	p.services = buf.services[:0]
	service := func(raw, example, tmpl string) {
		origin, ok := serviceOrigin(raw)
		if !ok || slices.ContainsFunc(p.services, func(h serviceHit) bool { return h.origin == origin }) {
			return
		}
		sig := Signature{Template: template(tmpl, example, m.ID)}
		p.services = append(p.services, serviceHit{origin, p.evidenceOf(example), sig, hashSignature(sig)})
	}
	for _, e := range m.CompileErrors {
		for _, u := range e.URLs {
			service(u, e.Message, e.Template)
		}
	}
	for _, s := range m.FailedStates {
		for _, u := range appendURLs(buf.urls[:0], s.Comment) {
			service(u, s.Comment, s.Template)
		}
	}
	for _, e := range m.CompileErrors {
		for _, u := range appendURLs(buf.urls[:0], e.Message) {
			service(u, e.Message, e.Template)
		}
	}
	return p
}

// owned returns p in lists of its own, not in the buffers prepareFailure
// worked in: in arena when it is set, else one allocation for the
// failures and their folds, one for the services.
func (p preparedFailure) owned(arena *batchArena) preparedFailure {
	var out preparedFailure
	n := 0
	for _, f := range p.fails {
		n += len(f.dependents)
	}
	out.fails = arena.stateFailures(len(p.fails))
	copy(out.fails, p.fails)
	var refs []stateRef
	if n > 0 {
		refs = arena.stateRefs(n)[:0]
	}
	for i := range out.fails {
		f := &out.fails[i]
		if f.dependents != nil {
			from := len(refs)
			refs = append(refs, f.dependents...)
			f.dependents = refs[from:len(refs):len(refs)]
		}
		if f.requisites != nil {
			l := arena.strings(len(f.requisites))
			copy(l, f.requisites)
			f.requisites = l
		}
	}
	if len(p.services) > 0 {
		out.services = arena.serviceHits(len(p.services))
		copy(out.services, p.services)
	}
	return out
}

// evidenceOf is evidenceOf(text), its hash taken from the failure of the
// same text when there is one: a service's message is a failure's.
func (p *preparedFailure) evidenceOf(text string) evidence {
	key, cut := evidenceKey(text)
	for i := range p.fails {
		if f := &p.fails[i]; f.text.key == key && f.text.cut == cut {
			return f.text
		}
	}
	return evidenceOf(text)
}

func (a *Aggregator) addFailing(m Minion, win *jobWindow, p *preparedFailure, bit int) {
	fails := p.fails
	explained := false
	var seenBuf [4]*causeAcc
	seen := seenBuf[:0] // the minion's commits' causes

	// The failure's own states, for the causes that explain it.
	states := func(c *causeAcc) {
		for i := range fails {
			f := &fails[i]
			c.state(f.sig, f.sigHash)
			c.example(f.sig, f.sigHash, f.text, m.ID)
		}
	}

	var removed []Commit
	for _, cm := range m.Commits {
		if cm.Change == ChangeRemoved {
			removed = append(removed, cm)
			continue
		}
		if i := slices.IndexFunc(seen, func(c *causeAcc) bool { return c.id.key == cm.ID }); i >= 0 {
			seen[i].paths[cm.Path] = struct{}{}
			continue
		}
		c := a.cause(CauseCommit, cm.ID)
		seen = append(seen, c)
		if c.paths == nil {
			c.paths = map[string]struct{}{}
			c.ev.CommitID, c.ev.AuthorName, c.ev.AuthorEmail, c.ev.CommitDatetime = cm.ID, cm.AuthorName, cm.AuthorEmail, cm.Datetime
			c.ev.CommitURL = a.link(cm.ID)
		}
		if cm.Path != "" {
			c.paths[cm.Path] = struct{}{}
		}
		c.add(m.ID, bit)
		c.window(win)
		states(c)
		explained = true
	}

	// A rollback explains the minion whether or not a commit it took out
	// touched the failed states' files: the codebase went back to code that
	// no longer works here. On diverged branches only the commits taken out
	// that touched those files make it a cause.
	if m.FailedJob != nil && m.FailedJob.Commit != "" &&
		(m.Window == WindowRollback || m.Window == WindowDiverged && len(removed) > 0) {
		served := m.FailedJob.Commit
		c := a.cause(CauseRollback, served)
		if c.from == nil {
			c.from = map[string]int{}
			c.removed = map[string]*removedAcc{}
			c.ev.CommitID = served
			c.ev.CommitURL = a.link(served)
		}
		if m.LastSuccessJob != nil && m.LastSuccessJob.Commit != "" {
			if _, ok := c.from[m.LastSuccessJob.Commit]; ok || len(c.from) < maxDistinctMessages {
				c.from[m.LastSuccessJob.Commit]++
			}
		}
		for _, cm := range removed {
			r, ok := c.removed[cm.ID]
			if !ok {
				if len(c.removed) >= maxDistinctMessages {
					continue
				}
				r = &removedAcc{c: RemovedCommit{ID: cm.ID, AuthorName: cm.AuthorName, AuthorEmail: cm.AuthorEmail, Datetime: cm.Datetime}, paths: map[string]struct{}{}}
				c.removed[cm.ID] = r
			}
			if cm.Path != "" && len(r.paths) < maxDistinctMessages {
				r.paths[cm.Path] = struct{}{}
			}
		}
		c.add(m.ID, bit)
		c.window(win)
		states(c)
		explained = true
	}

	if len(m.Commits) == 0 && m.Window != WindowRollback && m.FailedJob != nil && m.LastSuccessJob != nil &&
		m.FailedJob.CodebaseVersion != "" && m.FailedJob.CodebaseVersion != m.LastSuccessJob.CodebaseVersion {
		c := a.cause(CauseRelease, m.FailedJob.CodebaseVersion)
		c.ev.Version = m.FailedJob.CodebaseVersion
		c.message(m.LastSuccessJob.CodebaseVersion) // previous versions, most frequent wins
		c.add(m.ID, bit)
		c.window(win)
		states(c)
		explained = true
	}

	for i := range p.services {
		h := &p.services[i]
		c := a.cause(CauseExternalService, h.origin)
		c.ev.ServiceURL = c.id.key
		c.add(m.ID, bit)
		c.window(win)
		c.example(h.sig, h.sigHash, h.example, m.ID)
		explained = true
	}

	if explained {
		return
	}
	// Nothing above explains the minion: its failed states themselves are
	// the cause, grouped by signature; each counts the minion once.
	for i := range fails {
		f := &fails[i]
		if f.again {
			continue
		}
		c := a.stateCause(f.sig, f.sigHash)
		for _, d := range f.dependents {
			c.dependent(d)
		}
		for _, r := range f.requisites {
			if c.requisites == nil {
				c.requisites = map[string]struct{}{}
			}
			if _, ok := c.requisites[r]; !ok && len(c.requisites) < maxDistinctMessages {
				// r is part of a comment: keep only r.
				c.requisites[strings.Clone(r)] = struct{}{}
			}
		}
		c.example(f.sig, f.sigHash, f.text, m.ID)
		c.add(m.ID, bit)
		c.window(win)
	}
}

func (a *Aggregator) link(commit string) string {
	if a.commitURL == "" {
		return ""
	}
	return strings.NewReplacer("{commit}", commit, "{short}", shortCommit(commit)).Replace(a.commitURL)
}

// Finish counts expected minions that never answered as unreachable and
// returns the ranked causes and per-datacenter tallies (in the order the
// datacenters were first seen).
func (a *Aggregator) Finish() (Counts, []Cause, map[string]Counts) {
	a.ids.Lock()
	defer a.ids.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, dc := range a.dcOrder {
		t := a.dcs[dc]
		t.expected.all(func(id string) {
			if t.answered.add(hashString(id), id) {
				t.counts.add(StatusUnreachable)
				a.addPlain(CauseUnreachable, Minion{ID: id, Datacenter: dc, Status: StatusUnreachable, Detail: "expected, never answered"}, t.bit)
			}
		})
	}
	var total Counts
	perDC := make(map[string]Counts, len(a.dcs))
	for _, dc := range a.dcOrder {
		t := a.dcs[dc]
		t.counts.Expected = t.expectedCount()
		perDC[dc] = t.counts
		total = total.Plus(t.counts)
	}
	a.clusterStates()
	accs := make([]*causeAcc, 0, len(a.causes)+a.states.len())
	for _, c := range a.causes {
		accs = append(accs, c)
	}
	a.states.each(func(_ uint64, _ Signature, c *causeAcc) { accs = append(accs, c) })
	ids := sortCauseIDs(accs)
	causes := make([]Cause, len(accs))
	for i, c := range accs {
		causes[i] = c.build(a.dcOrder, ids[i])
	}
	slices.SortFunc(causes, compareCauses)
	return total, causes, perDC
}

// clusterStates merges the failed-state causes of one state whose templates
// cluster (ClusterTemplates): the same failure with values Mask did not
// see is one cause. Merging goes by template order, so the result does not
// depend on the order the minions arrived in.
func (a *Aggregator) clusterStates() {
	byCause := make(map[Signature]*causeAcc, a.states.len())
	a.states.each(func(_ uint64, sig Signature, c *causeAcc) { byCause[sig] = c })
	sigs := slices.Collect(maps.Keys(byCause))
	to := clusterOf(sigs)
	slices.SortFunc(sigs, compareSignatures)
	var merged hashMap[Signature, *causeAcc]
	for _, sig := range sigs {
		c, into := byCause[sig], to[sig]
		h := hashSignature(into)
		if dst, ok := merged.get(h, into); ok {
			dst.merge(c)
			continue
		}
		c.sig = into
		merged.insert(h, into, c)
	}
	a.states = merged
}

// clusterOf maps each signature to its cluster's: the templates of one
// state (or of one sls's compile errors) are clustered together, never
// with another state's.
func clusterOf(sigs []Signature) map[Signature]Signature {
	byState := map[stateRef][]string{}
	for _, s := range sigs {
		ref := stateRef{s.Fun, s.StateID, s.SLS}
		byState[ref] = append(byState[ref], s.Template)
	}
	out := make(map[Signature]Signature, len(sigs))
	for ref, templates := range byState {
		var cl map[string]string
		if len(templates) > 1 {
			cl = ClusterTemplates(templates)
		}
		for _, t := range templates {
			into := t
			if c, ok := cl[t]; ok {
				into = c
			}
			out[Signature{ref.fun, ref.id, ref.sls, t}] = Signature{ref.fun, ref.id, ref.sls, into}
		}
	}
	return out
}

// merge adds the failed-state cause o of the same cluster to c.
func (c *causeAcc) merge(o *causeAcc) {
	c.ids = append(c.ids, o.ids...)
	c.dcs.merge(o.dcs)
	o.examples.each(func(h uint64, sig Signature, e *exampleAcc) { c.mergeExample(sig, h, e) })
	for d := range o.dependents {
		c.dependent(d)
	}
	for r := range o.requisites {
		if c.requisites == nil {
			c.requisites = map[string]struct{}{}
		}
		c.requisites[r] = struct{}{}
	}
	if o.ev.FirstFailure != "" && (c.ev.FirstFailure == "" || o.ev.FirstFailure < c.ev.FirstFailure) {
		c.ev.FirstFailure = o.ev.FirstFailure
	}
	c.ev.LastSuccess = max(c.ev.LastSuccess, o.ev.LastSuccess)
}

// mergeExample adds the examples o of template sig (of hash h) to c's.
func (c *causeAcc) mergeExample(sig Signature, h uint64, o *exampleAcc) {
	e, ok := c.examples.get(h, sig)
	if !ok {
		cp := *o
		cp.texts = o.texts.clone()
		c.examples.insert(h, sig, &cp)
		return
	}
	e.minions += o.minions
	if e.first.Text == "" || o.first.Text < e.first.Text || o.first.Text == e.first.Text && o.first.Minion < e.first.Minion {
		e.first, e.firstCut = o.first, o.firstCut
	}
	o.texts.each(func(th uint64, text string, tc textCount) {
		if mine := e.texts.ref(th, text); mine != nil {
			mine.n += tc.n
			mine.minion = min(mine.minion, tc.minion)
		} else if e.texts.len() < maxDistinctMessages {
			e.texts.insert(th, text, tc)
		}
	})
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

// Key returns the key of the failed-state cause of s: the state (or the
// compile error's sls) a person recognises, and a digest of the whole
// signature, so that the same failure has the same key in every triage
// whatever the order the minions answered in.
func (s Signature) Key() string {
	h := sha256.New()
	for _, f := range []string{s.Fun, s.StateID, s.SLS, s.Template} {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	digest := hex.EncodeToString(h.Sum(nil))[:12]
	if s.Fun == "" {
		return "compile_error " + s.SLS + " " + digest
	}
	return s.Fun + " " + s.StateID + " " + digest
}

func compareSignatures(x, y Signature) int {
	return cmp.Or(strings.Compare(x.Fun, y.Fun), strings.Compare(x.StateID, y.StateID),
		strings.Compare(x.SLS, y.SLS), strings.Compare(x.Template, y.Template))
}

// build returns the cause, its minions ids, sorted and each once.
func (c *causeAcc) build(dcOrder []string, ids []string) Cause {
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
	states := make(map[Signature]int, c.states.len())
	c.states.each(func(_ uint64, sig Signature, n int) { states[sig] = n })
	ev.FailedStates = topSignatures(clusterCounts(states), maxEvidenceStates)
	ev.Examples = c.buildExamples()
	if c.id.kind == CauseExternalService {
		// What the minions said of the service: one real message per
		// template, never the template.
		for _, ex := range ev.Examples {
			ev.Messages = append(ev.Messages, ex.Text)
		}
	}
	key := c.id.key
	if c.id.kind == CauseFailedState {
		key = c.sig.Key()
		if c.sig.Fun == "" {
			ev.CompileState = c.sig.SLS
		} else {
			ev.Fun, ev.StateID, ev.SLS = c.sig.Fun, c.sig.StateID, c.sig.SLS
		}
		if len(ev.Examples) > 0 {
			ev.Comment = ev.Examples[0].Text
		}
		ev.Dependents = len(c.dependents)
		ev.Requisites = slices.Sorted(maps.Keys(c.requisites))
	}
	if c.id.kind == CauseRollback {
		if from := topKeys(c.from, 1); len(from) > 0 {
			ev.RolledBackFrom = from[0]
		}
		ev.RemovedCommits = c.buildRemoved()
		for _, r := range ev.RemovedCommits {
			ev.Paths = append(ev.Paths, r.Paths...)
		}
		slices.Sort(ev.Paths)
		ev.Paths = firstN(slices.Compact(ev.Paths), maxEvidencePaths)
	}
	out := Cause{
		Kind:        c.id.kind,
		Key:         key,
		Minions:     len(ids),
		MinionIDs:   ids,
		Datacenters: c.dcs.names(dcOrder),
		Evidence:    ev,
	}
	out.Summary = summary(out)
	return out
}

// buildExamples returns one real message per template, the templates most
// common among the cause's minions first.
func (c *causeAcc) buildExamples() []Example {
	bySig := make(map[Signature]*exampleAcc, c.examples.len())
	c.examples.each(func(_ uint64, sig Signature, e *exampleAcc) { bySig[sig] = e })
	sigs := slices.Collect(maps.Keys(bySig))
	to := clusterOf(sigs)
	slices.SortFunc(sigs, compareSignatures)
	clustered := &causeAcc{}
	for _, sig := range sigs {
		clustered.mergeExample(to[sig], hashSignature(to[sig]), bySig[sig])
	}
	out := make([]Example, 0, clustered.examples.len())
	clustered.examples.each(func(_ uint64, _ Signature, e *exampleAcc) {
		ex, cut := e.first, e.firstCut
		best := 1
		e.texts.each(func(_ uint64, text string, tc textCount) {
			if tc.n > best || tc.n == best && best > 1 && text < ex.Text {
				ex, cut, best = Example{Text: text, Minion: tc.minion}, tc.cut, tc.n
			}
		})
		ex.Text = evidenceText(ex.Text, cut)
		ex.Count = e.minions
		out = append(out, ex)
	})
	slices.SortFunc(out, func(x, y Example) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), strings.Compare(x.Text, y.Text), strings.Compare(x.Minion, y.Minion))
	})
	return firstN(out, maxEvidenceMessages)
}

func (c *causeAcc) buildRemoved() []RemovedCommit {
	out := make([]RemovedCommit, 0, len(c.removed))
	for _, r := range c.removed {
		rc := r.c
		rc.Paths = firstN(slices.Sorted(maps.Keys(r.paths)), maxEvidencePaths)
		out = append(out, rc)
	}
	slices.SortFunc(out, func(x, y RemovedCommit) int {
		return cmp.Or(strings.Compare(y.Datetime, x.Datetime), strings.Compare(x.ID, y.ID))
	})
	return firstN(out, maxRemovedCommits)
}

// clusterCounts adds up the counts of signatures of one cluster.
func clusterCounts(m map[Signature]int) map[Signature]int {
	to := clusterOf(slices.Collect(maps.Keys(m)))
	out := make(map[Signature]int, len(m))
	for sig, n := range m {
		out[to[sig]] += n
	}
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

// topSignatures returns the n most frequent signatures, ties broken by
// signature.
func topSignatures(m map[Signature]int, n int) []Signature {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b Signature) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), compareSignatures(a, b))
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
	case CauseRollback:
		s := "rollback to " + shortCommit(c.Key)
		if ev.RolledBackFrom != "" {
			s += " from " + shortCommit(ev.RolledBackFrom)
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
	case CauseRollback:
		s := label(c)
		switch n := len(ev.RemovedCommits); {
		case n == 0:
			s += ", taking out no commit that touched the failed states"
		case len(ev.Paths) > 0:
			s += fmt.Sprintf(", taking out %d commit%s touching %s", n, plural(n), ev.Paths[0])
			if n := len(ev.Paths) - 1; n > 0 {
				s += fmt.Sprintf(" and %d more path%s", n, plural(n))
			}
		default:
			s += fmt.Sprintf(", taking out %d commit%s", n, plural(n))
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
		if n := len(ev.Requisites); n > 0 {
			s += fmt.Sprintf(": requisite failure; %s failed but %s not among the failed states the minions sent",
				strings.Join(firstN(ev.Requisites, 3), ", "), map[bool]string{true: "is", false: "are"}[n == 1])
			return s
		}
		if ev.Comment != "" {
			s += ": " + truncate(firstLine(ev.Comment), 200)
		}
		if ev.Dependents > 0 {
			s += fmt.Sprintf("; also broke %d dependent state%s", ev.Dependents, plural(ev.Dependents))
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
