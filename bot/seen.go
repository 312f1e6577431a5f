package bot

import "container/list"

// seenSet remembers the last n envelope and event ids, so that a
// redelivered envelope is handled once. Only the event loop uses it.
type seenSet struct {
	n     int
	order *list.List // of string, oldest first
	keys  map[string]*list.Element
}

func newSeenSet(n int) *seenSet {
	return &seenSet{n: n, order: list.New(), keys: make(map[string]*list.Element, n)}
}

// add records keys and reports whether any of them was already there.
func (s *seenSet) add(keys ...string) bool {
	dup := false
	for _, k := range keys {
		if e, ok := s.keys[k]; ok {
			dup = true
			s.order.MoveToBack(e)
			continue
		}
		s.keys[k] = s.order.PushBack(k)
		if s.order.Len() > s.n {
			oldest := s.order.Front()
			s.order.Remove(oldest)
			delete(s.keys, oldest.Value.(string))
		}
	}
	return dup
}
