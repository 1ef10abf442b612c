package proxy

import "sync/atomic"

// inFlight reports whether the server owes the client a reply. With a
// policy the tracker knows (the server-side check's own replies do not
// count as the client's); without one, the relay counts.
func (s *session) inFlight(f *flight) bool {
	if s.trk != nil {
		return s.trk.Owed()
	}
	return f.owed()
}

// flight follows what the server owes a session without a policy: a
// ReadyForQuery per Sync, Query or FunctionCall, and the replies to
// requests a Flush covers (until the next ReadyForQuery). Requests not
// yet synced or flushed are not owed: the server waits for the client.
type flight struct {
	owedZ     atomic.Int64
	flushOwed atomic.Bool
	unflushed int // requests since the last Sync or Flush (client goroutine)
}

// sent notes a client message (client goroutine).
func (f *flight) sent(typ byte) {
	switch typ {
	case 'S', 'Q', 'F':
		f.owedZ.Add(1)
		f.unflushed = 0
	case 'H':
		if f.unflushed > 0 {
			f.flushOwed.Store(true)
		}
		f.unflushed = 0
	case 'P', 'B', 'D', 'E', 'C':
		f.unflushed++
	}
}

// received notes a server message (upstream goroutine).
func (f *flight) received(typ byte) {
	if typ == 'Z' {
		if f.owedZ.Add(-1) < 0 {
			f.owedZ.Store(0)
		}
		f.flushOwed.Store(false)
	}
}

func (f *flight) owed() bool { return f.owedZ.Load() > 0 || f.flushOwed.Load() }
