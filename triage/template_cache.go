package triage

import (
	"hash/maphash"
	"strings"
	"sync"
)

// The template cache holds the templates of messages seen before, by exact
// message: in an incident most minions send one of a few messages, and
// masking them once each is enough. It is bounded in bytes, not entries:
// messages can be long tracebacks.
const (
	templateShards     = 16
	templateShardBytes = 128 << 10 // 2 MiB for all shards
	maxCachedMessage   = 4 << 10   // longer messages are masked every time
)

type templateShard struct {
	mu    sync.Mutex
	m     map[string]string
	bytes int
}

var (
	templateSeed  = maphash.MakeSeed()
	templateCache [templateShards]templateShard
)

// TemplateOf returns Mask(msg, minionID), from the cache when the same
// message was masked before. It is safe for concurrent use; the decoding
// workers call it, so that no template is made under the aggregator's lock.
func TemplateOf(msg, minionID string) string {
	if msg == "" {
		return ""
	}
	key := msg
	if minionID != "" && strings.Contains(msg, minionID) {
		// The same failure on another minion holds another id: the cache
		// is keyed by the message with the id marked, and the template
		// does not depend on which id it was.
		key = markMinion(msg, minionID)
	}
	if len(key) > maxCachedMessage {
		return Mask(msg, minionID)
	}
	sh := &templateCache[maphash.String(templateSeed, key)%templateShards]
	sh.mu.Lock()
	t, ok := sh.m[key]
	sh.mu.Unlock()
	if ok {
		return t
	}
	t = Mask(msg, minionID)
	size := len(key) + len(t)
	sh.mu.Lock()
	if sh.m == nil || sh.bytes+size > templateShardBytes {
		// Full: start over rather than keep the first messages forever; a
		// new incident's messages then find room.
		sh.m, sh.bytes = make(map[string]string, 256), 0
	}
	sh.m[key] = t
	sh.bytes += size
	sh.mu.Unlock()
	return t
}

// minionMark stands for the minion's id in a cache key. A message that
// holds it literally is masked the same way either way.
const minionMark = "\x00minion\x00"

// markMinion replaces the minion's id where Mask would mask it: where it is
// not part of a longer word.
func markMinion(msg, id string) string {
	var b strings.Builder
	b.Grow(len(msg))
	for i := 0; i < len(msg); {
		k := strings.Index(msg[i:], id)
		if k < 0 {
			b.WriteString(msg[i:])
			break
		}
		k += i
		end := k + len(id)
		if (k == 0 || !isWord(msg[k-1])) && (end == len(msg) || !isWord(msg[end])) {
			b.WriteString(msg[i:k])
			b.WriteString(minionMark)
		} else {
			b.WriteString(msg[i:end])
		}
		i = end
	}
	return b.String()
}
