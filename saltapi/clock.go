package saltapi

import "time"

// Clock is the time the client reads and waits on while it polls a job:
// the job's deadline, the interval between polls and the backoff after a
// failed poll. The timeouts of single HTTP requests stay on the wall clock.
type Clock interface {
	Now() time.Time
	// After sends the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// After is time.After: an unfired timer is collected with its channel.
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
