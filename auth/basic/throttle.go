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

// limiter tracks recent failures per key (client address, or client address and user name). A key whose bucket is
// empty is throttled; a key with any recent failure is suspect. decide turns both into a route.
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

// standing is a key's record in a limiter.
type standing struct {
	throttled bool // no failures left
	suspect   bool // some failure on record
}

// state reports k's standing.
func (l *limiter) state(k string, now time.Time) standing {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.tokensLocked(k, now)
	if b == nil {
		return standing{}
	}
	return standing{throttled: b.tokens < 1, suspect: true}
}

// route is how a credential the cache does not know is checked.
type route int

const (
	// routeFree runs bcrypt at once: neither the address nor this user from it has failed lately.
	routeFree route = iota
	// routeSuspect runs bcrypt in the failure lane, a small semaphore, so failing clients together keep at most
	// that many cores busy; a request that cannot get a slot in time is throttled.
	routeSuspect
	// routeFlood is a clean request while the global failure budget is spent: bcrypt in the failure lane too, but
	// it waits for its turn as long as its client does, and is never refused for others' failures.
	routeFlood
	// routeRefuse answers 401 without bcrypt: the address, or this user from it, has no failures left.
	routeRefuse
)

// decide routes a request by the standing of its address, of its (address, user) pair, and whether a flood from
// many addresses has spent the global budget. A user's failures from other addresses never count: wrong guesses
// for "admin" from one client cannot lock admin out anywhere else (bcrypt's cost and the lane are the brake).
// Clients sharing an address (behind a NAT or proxy) share its budget.
func decide(addr, pair standing, flood bool) route {
	switch {
	case addr.throttled, pair.throttled:
		return routeRefuse
	case addr.suspect, pair.suspect:
		return routeSuspect
	case flood:
		return routeFlood
	}
	return routeFree
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

// acquire waits up to wait for a slot; with wait 0, until ctx ends.
func (s semaphore) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case s <- struct{}{}:
		return true
	case <-timeout:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s semaphore) release() { <-s }
