package fakesalt

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
)

// breakAnswer answers r the broken way kind says.
func (s *Server) breakAnswer(w http.ResponseWriter, r *http.Request, kind FaultKind) {
	switch kind {
	case FaultStall:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	case FaultReset:
		conn, _, ok := hijack(w)
		if !ok {
			return
		}
		if tcp, isTCP := conn.(*net.TCPConn); isTCP {
			// Closing with unread data or no linger sends a reset, not a FIN.
			_ = tcp.SetLinger(0)
		}
		_ = conn.Close()
	case FaultTruncate:
		rec := httptest.NewRecorder()
		s.serve(rec, r)
		body := rec.Body.Bytes()
		conn, buf, ok := hijack(w)
		if !ok {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
		fmt.Fprintf(buf, "Content-Type: %s\r\nServer: CherryPy/18.8.0\r\nContent-Length: %d\r\n\r\n", rec.Header().Get("Content-Type"), len(body))
		_, _ = buf.Write(body[:len(body)/2])
		_ = buf.Flush()
	}
}

// hijack takes the connection over from the HTTP server.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	h, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, false
	}
	conn, buf, err := h.Hijack()
	if err != nil {
		return nil, nil, false
	}
	return conn, buf, true
}
