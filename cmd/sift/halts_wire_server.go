package main

import (
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/netutil"
)

// shedHeadroom is how many connections below the hard cap the shedding
// starts, so that a new connection is always accepted and can push out a
// slow one.
const shedHeadroom = 16

// shedListener sheds slow clients: when a new connection arrives and
// maxConns are open, it closes the connection that has waited longest
// without a request under way (one still sending its headers, or idle
// between requests). A client that sends a request at once, such as a
// health probe, is served whatever number of slow clients hold
// connections open. Under it, netutil.LimitListener caps the connections
// for good, should every one be busy with a request.
type shedListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	seq   uint64
	conns map[net.Conn]*connInfo
	// accepted counts every connection accepted, for tests.
	accepted int
}

// connInfo is what the listener knows of one connection.
type connInfo struct {
	waiting bool   // no request under way
	since   uint64 // when it started waiting, in accept order
}

// newShedListener caps ln at hardMax connections and sheds waiting ones
// past hardMax-shedHeadroom.
func newShedListener(ln net.Listener, hardMax int) *shedListener {
	return &shedListener{Listener: netutil.LimitListener(ln, hardMax), max: max(1, hardMax-shedHeadroom), conns: map[net.Conn]*connInfo{}}
}

// Accept implements net.Listener.
func (l *shedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	var victims []net.Conn
	for len(l.conns) >= l.max {
		v := l.oldestWaiting()
		if v == nil {
			break
		}
		delete(l.conns, v)
		victims = append(victims, v)
	}
	l.seq++
	l.conns[c] = &connInfo{waiting: true, since: l.seq}
	l.accepted++
	l.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	return c, nil
}

func (l *shedListener) oldestWaiting() net.Conn {
	var oldest net.Conn
	var at uint64
	for c, info := range l.conns {
		if info.waiting && (oldest == nil || info.since < at) {
			oldest, at = c, info.since
		}
	}
	return oldest
}

// connState follows the connections' states; it is the server's ConnState.
func (l *shedListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, ok := l.conns[c]
	switch {
	case s == http.StateClosed || s == http.StateHijacked:
		delete(l.conns, c)
	case !ok:
	case s == http.StateActive:
		info.waiting = false
	case s == http.StateIdle:
		l.seq++
		info.waiting, info.since = true, l.seq
	}
}

// open counts the connections open now and those accepted in all.
func (l *shedListener) open() (open, accepted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.accepted
}
