package bot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

func TestLiveMessagePanicReachesItsOwner(t *testing.T) {
	b := &Bot{cfg: Config{ProgressInterval: time.Millisecond}, clock: realClock{}}
	l := b.startLive(context.Background(), "C0INCIDENT", "1.000100", func(time.Time) formatters.SlackMessage {
		var pending []triage.PendingDatacenter
		_ = pending[0] // a formatter bug
		return formatters.SlackMessage{}
	})
	l.changed()
	<-l.done // the update goroutine ended on the panic, and Sift is still up

	var got any
	func() {
		defer func() { got = recover() }()
		_ = l.finish(context.Background(), formatters.SlackMessage{Text: "final"})
	}()
	var p *triage.PanicError
	if err, ok := got.(error); !ok || !errors.As(err, &p) || !strings.Contains(string(p.Stack), "TestLiveMessagePanicReachesItsOwner") {
		t.Fatalf("finish raised %v, want the update goroutine's panic with its stack", got)
	}
}
