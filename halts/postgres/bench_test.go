package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sift-chatops/sift/halts"
	"github.com/sift-chatops/sift/halts/postgres"
	"github.com/sift-chatops/sift/internal/pgtest"
)

// BenchmarkReplicasRecordAndClaim is what each halt costs the shared
// store when its notice reaches two replicas twice each, at once, and both
// replicas then try to claim it: four Fire calls and two Claim calls per
// op. It reports the new halts and the claims won per halt, which must be
// exactly 1 each.
func BenchmarkReplicasRecordAndClaim(b *testing.B) {
	srv := pgtest.Start(b)
	db := srv.CreateDB(b)
	ctx := context.Background()
	var stores []*postgres.Store
	for _, name := range []string{"a", "b"} {
		s, err := postgres.Open(ctx, srv.URL(db)+"&application_name="+name, postgres.Options{Password: pgtest.Password})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var created, claimed atomic.Int64
	b.ResetTimer()
	for i := range b.N {
		e := event(fmt.Sprintf("bench/%d", i), fmt.Sprintf("dc%d", i))
		fps := make(chan string, 4)
		var wg sync.WaitGroup
		for j := range 4 {
			wg.Go(func() {
				got, err := stores[j%2].Fire(ctx, []halts.Event{e}, t0, t0)
				if err != nil {
					b.Error(err)
					return
				}
				if got[0].Result == halts.FireNew {
					created.Add(1)
				}
				fps <- got[0].Halt.Fingerprint
			})
		}
		wg.Wait()
		fp := <-fps
		for j := range 2 {
			wg.Go(func() {
				_, ok, err := stores[j].Claim(ctx, fp, fmt.Sprint("replica-", j), t0, time.Minute)
				if err != nil {
					b.Error(err)
				}
				if ok {
					claimed.Add(1)
				}
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(created.Load())/float64(b.N), "new/halt")
	b.ReportMetric(float64(claimed.Load())/float64(b.N), "claims/halt")
	if created.Load() != int64(b.N) || claimed.Load() != int64(b.N) {
		b.Errorf("%d new halts and %d claims won for %d halts, want one each", created.Load(), claimed.Load(), b.N)
	}
}
