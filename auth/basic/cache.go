package basic

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// credCache remembers credentials that passed bcrypt, keyed by HMAC-SHA256 under a random per-process key of
// user + "\x00" + password. Each entry records the user's password hash it was verified against: a hit needs the
// file in effect to hold that same hash for the user, so a reload that removes a user or changes their password
// ends their cached logins at once, while every other user's stay valid. An entry lives ttl after its last use,
// and never longer than maxAge after the bcrypt check that created it.
type credCache struct {
	*keyedHash
	ttl, maxAge time.Duration
	max         int

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*credEntry
}

type credEntry struct {
	user, hash string
	deadline   time.Time    // verified + maxAge: the latest expiry use can earn
	expires    atomic.Int64 // unix nanoseconds; pushed towards deadline by use
}

func newCredCache(max int, ttl, maxAge time.Duration) (*credCache, error) {
	kh, err := newKeyedHash()
	if err != nil {
		return nil, err
	}
	return &credCache{keyedHash: kh, ttl: ttl, maxAge: maxAge, max: max, entries: make(map[[sha256.Size]byte]*credEntry)}, nil
}

// keyedHash is HMAC-SHA256 under a random per-process key.
type keyedHash struct {
	key  [32]byte
	pool sync.Pool // of hash.Hash
}

func newKeyedHash() (*keyedHash, error) {
	k := &keyedHash{}
	if _, err := rand.Read(k.key[:]); err != nil {
		return nil, err
	}
	k.pool.New = func() any { return hmac.New(sha256.New, k.key[:]) }
	return k, nil
}

// sum returns the keyed hash of a + "\x00" + b (for the cache: user and password).
func (k *keyedHash) sum(a, b string) [sha256.Size]byte {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	k.pool.Put(h)
	return out
}

// hit reports whether k was verified against the hash f holds for its user now and has not expired; a hit extends
// the entry's life by ttl, up to its maximum age.
func (c *credCache) hit(k [sha256.Size]byte, f *htpasswd.File, now time.Time) bool {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.expires.Load() {
		return false
	}
	if h, ok := f.Hash(e.user); !ok || h != e.hash {
		return false
	}
	// Refresh at most every ttl/16, so concurrent hits on one entry do not all write it.
	if next := min(now.Add(c.ttl).UnixNano(), e.deadline.UnixNano()); next-e.expires.Load() > int64(c.ttl/16) {
		e.expires.Store(next)
	}
	return true
}

// put remembers that k, a credential of user, matched hash at now.
func (c *credCache) put(k [sha256.Size]byte, user, hash string, now time.Time) {
	if c.max <= 0 || c.ttl <= 0 || c.maxAge <= 0 {
		return
	}
	e := &credEntry{user: user, hash: hash, deadline: now.Add(c.maxAge)}
	e.expires.Store(min(now.Add(c.ttl).UnixNano(), e.deadline.UnixNano()))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[k] = e
}

// evictLocked drops expired entries seen in a short scan, or failing that one arbitrary entry (Go's map iteration
// order is randomised, so this is random eviction).
func (c *credCache) evictLocked(now time.Time) {
	scanned, dropped := 0, 0
	var victim [sha256.Size]byte
	for k, e := range c.entries {
		if scanned == 0 {
			victim = k
		}
		scanned++
		if now.UnixNano() >= e.expires.Load() {
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

// prune drops the entries whose user f no longer holds with the same hash, and reports how many remain. Hits check
// the hash anyway; pruning only frees the memory.
func (c *credCache) prune(f *htpasswd.File) (kept int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if h, ok := f.Hash(e.user); !ok || h != e.hash {
			delete(c.entries, k)
		}
	}
	return len(c.entries)
}

func (c *credCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
