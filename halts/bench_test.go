package halts_test

import (
	"context"
	"io"
	"testing"

	"github.com/sift-chatops/sift/halts/haltstest"
)

// BenchmarkNotifyAgain is the cost of a repeated firing notice, the common
// case: Alertmanager and rules repeat a firing halt until it clears.
func BenchmarkNotifyAgain(b *testing.B) {
	r := newRigB(b)
	ctx := context.Background()
	if _, err := r.Svc.Notify(ctx, haltstest.Firing("pipeline/bench", "ams01")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Svc.Notify(ctx, haltstest.Firing("pipeline/bench", "ams01")); err != nil {
			b.Fatal(err)
		}
	}
}

// newRigB is a rig for benchmarks: a store in a temporary directory and
// a service that logs nothing.
func newRigB(b *testing.B) *haltstest.Rig {
	b.Helper()
	r := haltstest.NewRig(b, haltstest.NewPoster())
	r.Log.SetOutput(io.Discard)
	return r
}
