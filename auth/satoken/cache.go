package satoken

import (
	"crypto/sha256"
	"sync"
	"time"
)

// resultCache remembers verified tokens by their SHA-256 (a token is long and random: its hash is as unique), each
// until a deadline. It holds at most max entries: when full, expired entries go first, then arbitrary ones.
type resultCache struct {
	max     int
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cached
}

type cached struct {
	id    Identity
	until time.Time
}

func newResultCache(max int) *resultCache {
	return &resultCache{max: max, entries: make(map[[sha256.Size]byte]cached)}
}

func (c *resultCache) get(key [sha256.Size]byte, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		return Identity{}, false
	}
	return e.id, true
}

func (c *resultCache) put(key [sha256.Size]byte, id Identity, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cached{id: id, until: until}
}

func (c *resultCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
