package triage

import (
	"context"
	"encoding/json"
)

// Target is one blame call: the minions of one datacenter on its master, or
// a list of validated minion ids.
type Target struct {
	// Master names the salt-api that serves the target.
	Master string
	// Datacenter is the datacenter being triaged; empty for a minion triage.
	Datacenter string
	// Expr is a compound target expression from configuration. It is used
	// only when Minions is empty.
	Expr string
	// Minions are minion ids, each checked by ValidateMinionID, sent as a
	// list target (never as a pattern).
	Minions []string
}

// MinionAnswer is what one minion answered to the blame call: its raw value
// in salt-api's return, unwrapped from full_return and from /jobs results.
// A minion that did not answer in time has Raw `false`.
type MinionAnswer struct {
	ID  string
	Raw json.RawMessage
}

// Sink receives what a blame call learns, as it learns it. Its methods may be
// called from the Blamer's goroutine only, never concurrently for one call.
type Sink interface {
	// Expected names the minions the master expects to answer. It may be
	// called more than once; the union counts.
	Expected(ids []string)
	// Answer hands over one minion's answer.
	Answer(a MinionAnswer)
	// Absent names expected minions the master will get no answer from, and
	// why: they are counted unreachable at once and not waited for.
	Absent(ids []string, why Absence)
	// Note records, once, something the report must say about how this
	// call went (e.g. that presence could not be asked and the call waited
	// out Salt's timeout).
	Note(note string)
}

// Absence says why a minion will not answer a blame call.
type Absence int

// The reasons a master gives for a minion that will not answer.
const (
	// NotConnected is an accepted minion that is not connected to the
	// master (manage.not_present).
	NotConnected Absence = iota + 1
	// NotAMinion is an id the master has no accepted key for.
	NotAMinion
)

// Blamer asks the minions of one target for their last failure.
//
// Blame returns when every expected minion has answered, or when ctx ends,
// or when the call fails. Answers already handed to the sink stay valid when
// it returns an error: a partial result is a result.
type Blamer interface {
	Blame(ctx context.Context, t Target, sink Sink) error
}

// The three functions of the blame module, called in one multi-function job.
const (
	FunFailedStates     = "blame.last_failed_states"
	FunHighstateFailure = "blame.last_highstate_failure"
	FunCompileErrors    = "blame.last_compile_errors"
)

// BlameFunctions lists the blame module's functions in the order they are
// sent to Salt.
var BlameFunctions = []string{FunFailedStates, FunHighstateFailure, FunCompileErrors}
