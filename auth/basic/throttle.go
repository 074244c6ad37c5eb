package basic

import (
	"context"
	"sync"
	"time"
)

// Limit is a failure budget: Burst failures at once, one more regained every Every.
type Limit struct {
	Burst int
	Every time.Duration
}

// bucket is a token bucket of remaining failures.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter tracks recent failures per key (client address, user name). A key whose bucket is empty is throttled:
// its requests get no bcrypt at all. A key with any recent failure is suspect: its bcrypt runs in the failure lane,
// a small semaphore, so failing clients together can keep at most that many cores busy.
type limiter struct {
	limit Limit
	max   int

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(l Limit, max int) *limiter {
	return &limiter{limit: l, max: max, buckets: make(map[string]*bucket)}
}

// tokensLocked refills and returns k's bucket, or nil if k has no failures on record.
func (l *limiter) tokensLocked(k string, now time.Time) *bucket {
	b := l.buckets[k]
	if b == nil {
		return nil
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.limit.Every)
	b.last = now
	if b.tokens >= float64(l.limit.Burst) {
		delete(l.buckets, k) // fully recovered: forget it
		return nil
	}
	return b
}

// state reports whether k is throttled (no failures left) and whether it is suspect (some failure on record).
func (l *limiter) state(k string, now time.Time) (throttled, suspect bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.tokensLocked(k, now)
	if b == nil {
		return false, false
	}
	return b.tokens < 1, true
}

// fail spends one failure of k's budget and reports whether k just became throttled.
func (l *limiter) fail(k string, now time.Time) (nowThrottled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.tokensLocked(k, now)
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evictLocked(now)
		}
		b = &bucket{tokens: float64(l.limit.Burst), last: now}
		l.buckets[k] = b
	}
	before := b.tokens
	b.tokens--
	return before >= 1 && b.tokens < 1
}

// evictLocked forgets recovered keys seen in a short scan, or failing that one arbitrary key (map iteration
// order is randomised).
func (l *limiter) evictLocked(now time.Time) {
	before, n := len(l.buckets), 0
	var first string
	for k := range l.buckets {
		if n == 0 {
			first = k
		}
		l.tokensLocked(k, now) // deletes k if it has recovered
		if n++; n >= 64 {
			break
		}
	}
	if len(l.buckets) == before {
		delete(l.buckets, first)
	}
}

// semaphore bounds concurrent bcrypt work of suspect requests.
type semaphore chan struct{}

// acquire waits up to wait for a slot.
func (s semaphore) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s semaphore) release() { <-s }
