package basic

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"time"
)

// credCache remembers credentials that passed bcrypt, keyed by HMAC-SHA256 under a random per-process key of
// user + "\x00" + password. Entries carry the generation of the htpasswd file they were verified against; reset
// moves to a new generation and drops everything, so a reloaded file never honours an older verification.
type credCache struct {
	key  [32]byte
	ttl  time.Duration
	max  int
	pool sync.Pool // of hash.Hash

	mu      sync.RWMutex
	gen     uint64
	entries map[[sha256.Size]byte]time.Time // -> expiry
}

func newCredCache(max int, ttl time.Duration) (*credCache, error) {
	c := &credCache{ttl: ttl, max: max, entries: make(map[[sha256.Size]byte]time.Time)}
	if _, err := rand.Read(c.key[:]); err != nil {
		return nil, err
	}
	c.pool.New = func() any { return hmac.New(sha256.New, c.key[:]) }
	return c, nil
}

// sum returns the cache key for a credential.
func (c *credCache) sum(user, password string) [sha256.Size]byte {
	h := c.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	c.pool.Put(h)
	return out
}

// hit reports whether k was verified against the current generation and has not expired.
func (c *credCache) hit(k [sha256.Size]byte, now time.Time) bool {
	c.mu.RLock()
	exp, ok := c.entries[k]
	c.mu.RUnlock()
	return ok && now.Before(exp)
}

// put remembers k if it was verified against generation gen, the current one.
func (c *credCache) put(k [sha256.Size]byte, gen uint64, now time.Time) {
	if c.max <= 0 || c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[k] = now.Add(c.ttl)
}

// evictLocked drops expired entries seen in a short scan, or failing that one arbitrary entry (Go's map iteration
// order is randomised, so this is random eviction).
func (c *credCache) evictLocked(now time.Time) {
	scanned, dropped := 0, 0
	var victim [sha256.Size]byte
	for k, exp := range c.entries {
		if scanned == 0 {
			victim = k
		}
		scanned++
		if !now.Before(exp) {
			delete(c.entries, k)
			dropped++
		}
		if scanned >= 64 {
			break
		}
	}
	if dropped == 0 {
		delete(c.entries, victim)
	}
}

// reset drops every entry and moves to generation gen.
func (c *credCache) reset(gen uint64) {
	c.mu.Lock()
	c.gen = gen
	clear(c.entries)
	c.mu.Unlock()
}

func (c *credCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
