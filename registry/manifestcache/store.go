package manifestcache

import (
	"container/list"
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stripes is the number of invalidation counters repositories are spread over. Invalidating a repository bumps its
// stripe, which drops the entries of every repository sharing it: an occasional extra miss, for a fixed 8 KiB
// instead of a counter per repository ever seen.
const stripes = 1024

// entryOverhead approximates what an entry costs besides its key, header values and body (list element, map slot,
// header map), so that many tiny entries still count against the byte bound.
const entryOverhead = 512

// key identifies one cacheable response: the method, the request path and the Accept header values, which are all
// distribution's manifest handler reads to choose its answer.
type key struct {
	method, path, accept string
}

// entry is one stored response.
type entry struct {
	key     key
	repo    string
	header  http.Header
	body    []byte
	size    int64
	expires time.Time // zero: no expiry
	// stamp is the repository stripe's counter and the cache's epoch when the response was read; the entry is valid
	// only while both are unchanged.
	stamp stamp
}

type stamp struct{ epoch, gen uint64 }

// store is the LRU of entries, bounded by maxBytes.
type store struct {
	maxBytes int64
	ttl      time.Duration
	now      func() time.Time
	seed     maphash.Seed

	epoch atomic.Uint64
	gens  [stripes]atomic.Uint64

	mu    sync.Mutex
	bytes int64
	lru   *list.List // of *entry, most recent first; allocated on the first put
	items map[key]*list.Element
}

func newStore(maxBytes int64, ttl time.Duration, now func() time.Time) *store {
	return &store{maxBytes: maxBytes, ttl: ttl, now: now, seed: maphash.MakeSeed()}
}

func (s *store) stripe(repo string) *atomic.Uint64 {
	return &s.gens[maphash.String(s.seed, repo)%stripes]
}

// begin returns the stamp to store a response read from now on under.
func (s *store) begin(repo string) stamp {
	return stamp{epoch: s.epoch.Load(), gen: s.stripe(repo).Load()}
}

func (s *store) current(e *entry) bool {
	return e.stamp == s.begin(e.repo) && (e.expires.IsZero() || s.now().Before(e.expires))
}

// get returns the entry for k if it is still valid.
func (s *store) get(k key) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !s.current(e) {
		s.removeLocked(el)
		return nil, false
	}
	s.lru.MoveToFront(el)
	return e, true
}

// put stores e unless its repository was invalidated since e.stamp was taken, or it alone exceeds the bound.
func (s *store) put(e *entry) bool {
	e.size = entryOverhead + int64(len(e.key.method)+len(e.key.path)+len(e.key.accept)+len(e.repo)+len(e.body))
	for k, vs := range e.header {
		e.size += int64(len(k))
		for _, v := range vs {
			e.size += int64(len(v))
		}
	}
	if e.size > s.maxBytes {
		return false
	}
	if s.ttl > 0 {
		e.expires = s.now().Add(s.ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the lock: an invalidation bumps the counters before it takes the lock to sweep.
	if e.stamp != s.begin(e.repo) {
		return false
	}
	if s.lru == nil {
		s.lru, s.items = list.New(), map[key]*list.Element{}
	}
	if old, ok := s.items[e.key]; ok {
		s.removeLocked(old)
	}
	s.items[e.key] = s.lru.PushFront(e)
	s.bytes += e.size
	for s.bytes > s.maxBytes {
		s.removeLocked(s.lru.Back())
	}
	return true
}

func (s *store) removeLocked(el *list.Element) {
	e := s.lru.Remove(el).(*entry)
	delete(s.items, e.key)
	s.bytes -= e.size
}

// invalidate drops every entry of repo, including responses being read at this moment.
func (s *store) invalidate(repo string) {
	s.stripe(repo).Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lru == nil {
		return
	}
	for el := s.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*entry).repo == repo {
			s.removeLocked(el)
		}
		el = next
	}
}

// invalidateAll drops every entry.
func (s *store) invalidateAll() {
	s.epoch.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lru != nil {
		s.lru.Init()
		clear(s.items)
		s.bytes = 0
	}
}

// usage is the bytes and entries held.
func (s *store) usage() (bytes int64, entries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, len(s.items)
}
