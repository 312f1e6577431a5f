package bot

import "testing"

func TestSeenSetIsBounded(t *testing.T) {
	s := newSeenSet(3)
	steps := []struct {
		keys []string
		dup  bool
	}{
		{[]string{"envelope:1"}, false},
		{[]string{"envelope:2", "event:A"}, false},
		{[]string{"envelope:1"}, true},            // redelivered
		{[]string{"envelope:3", "event:A"}, true}, // same event, new envelope
		{[]string{"envelope:4"}, false},           // evicts envelope:1, the least recently seen
		{[]string{"envelope:1"}, false},           // forgotten; evicts envelope:3
		{[]string{"envelope:3"}, false},           // evicts event:A
		{[]string{"event:A"}, false},
	}
	for i, st := range steps {
		if got := s.add(st.keys...); got != st.dup {
			t.Errorf("step %d: add(%v) = %v, want %v", i, st.keys, got, st.dup)
		}
	}
	if n := s.order.Len(); n != 3 || len(s.keys) != 3 {
		t.Errorf("set holds %d keys (%d in the map), want 3", n, len(s.keys))
	}
}
