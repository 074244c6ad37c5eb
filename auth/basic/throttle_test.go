package basic

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// TestFloodDoesNotBlockGoodClients holds the flood's bcrypt calls open (a slow bcrypt, deterministically) and checks
// that logged-in clients and fresh logins from clean addresses never wait on it, and that the flood's bcrypt work is
// bounded by the failure budget and the failure lane.
func TestFloodDoesNotBlockGoodClients(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
	addrLimit := Limit{Burst: 5, Every: time.Hour}
	c, calls, reg := newTestController(t, Options{Path: path, AddrLimit: addrLimit, FailureLane: 1})
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Fatal("alice rejected")
	}
	hold := make(chan struct{})
	var holding, maxHolding atomic.Int64
	verify := c.verify
	c.verify = func(f *htpasswd.File, user, password string) bool {
		if strings.HasPrefix(password, "slow-guess") {
			n := holding.Add(1)
			if n > maxHolding.Load() {
				maxHolding.Store(n)
			}
			<-hold
			holding.Add(-1)
		}
		return verify(f, user, password)
	}
	const attacker = "192.0.2.66"
	for i := range addrLimit.Burst - 1 { // the attacker is now suspect, with one failure left
		if authorized(t, c, attacker, "ghost", fmt.Sprintf("guess-%d", i)) {
			t.Fatal("bad credential granted")
		}
	}
	callsBefore := calls.Load()

	const attackers = 8
	var wg sync.WaitGroup
	var granted atomic.Int64
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"alice", "bob", "ghost"}[i%3]
			if _, err := c.Authorized(request(attacker, user, fmt.Sprintf("slow-guess-%d", i))); err == nil {
				granted.Add(1)
			}
		}()
	}
	eventually(t, 5*time.Second, "no flood request reached bcrypt", func() bool { return holding.Load() > 0 })

	// While the failure lane is held: a logged-in client is served from the cache without waiting...
	for range 50 {
		if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
			t.Fatal("cached alice rejected during the flood")
		}
	}
	// ...and a first login from a clean address runs bcrypt outside the failure lane.
	if !authorized(t, c, "10.0.0.2", "bob", "pw-bob") {
		t.Error("bob's first login from a clean address was rejected during the flood")
	}
	close(hold)
	wg.Wait()

	if granted.Load() != 0 {
		t.Fatalf("%d bad credentials were granted", granted.Load())
	}
	if got := maxHolding.Load(); got != 1 {
		t.Errorf("%d flood requests ran bcrypt at once, want 1 (the failure lane)", got)
	}
	if got := calls.Load() - callsBefore; got != 2 { // one flood request in the lane, plus bob
		t.Errorf("%d bcrypt runs during the flood, want 2", got)
	}
	if got := counter(t, reg, "registry_kit_auth_requests_total", "throttled"); got != attackers-1 {
		t.Errorf("throttled = %v, want %d", got, attackers-1)
	}
	// The address's budget is now spent: further attempts are throttled without bcrypt.
	before := calls.Load()
	if authorized(t, c, attacker, "carol", "pw-carol") || calls.Load() != before {
		t.Error("a throttled address still got bcrypt")
	}
}

// TestDistributedFloodSharesTheFailureLane sends failures from many addresses for many users, none of which exhausts
// its own budget: once the global budget is spent, bcrypt of every uncached request runs one at a time.
func TestDistributedFloodSharesTheFailureLane(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	c, calls, _ := newTestController(t, Options{Path: path, GlobalLimit: Limit{Burst: 10, Every: time.Hour}, FailureLane: 1})
	for i := range 10 {
		if authorized(t, c, fmt.Sprintf("203.0.113.%d", i), fmt.Sprintf("user%d", i), "guess") {
			t.Fatal("bad credential granted")
		}
	}
	var running, maxRunning atomic.Int64
	verify := c.verify
	c.verify = func(f *htpasswd.File, user, password string) bool {
		n := running.Add(1)
		for old := maxRunning.Load(); n > old && !maxRunning.CompareAndSwap(old, n); old = maxRunning.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		defer running.Add(-1)
		return verify(f, user, password)
	}
	before := calls.Load()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Authorized(request(fmt.Sprintf("198.18.0.%d", i), fmt.Sprintf("other%d", i), "guess"))
		}()
	}
	wg.Wait()
	if got := maxRunning.Load(); got != 1 {
		t.Errorf("%d bcrypt verifications ran at once during a distributed flood, want 1", got)
	}
	if calls.Load() == before {
		t.Error("no verification ran: fresh addresses must still be checked, one at a time")
	}
	// A good user still gets in, through the lane.
	if !authorized(t, c, "10.0.0.9", "alice", "pw-alice") {
		t.Error("alice rejected during a distributed flood")
	}
}

func TestThrottledAnswerTakesBcryptTime(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	c, _, _ := newTestController(t, Options{Path: path, AddrLimit: Limit{Burst: 1, Every: time.Hour}})
	if authorized(t, c, "192.0.2.1", "alice", "wrong") {
		t.Fatal("wrong password granted")
	}
	c.bcryptNanos.Store(int64(40 * time.Millisecond))
	start := time.Now()
	if authorized(t, c, "192.0.2.1", "alice", "wrong") {
		t.Fatal("wrong password granted")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("throttled answer after %v, want at least the typical bcrypt time of 40ms", d)
	}
}

func TestThrottlePerUser(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	c, calls, _ := newTestController(t, Options{Path: path, UserLimit: Limit{Burst: 3, Every: time.Hour}})
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Fatal("alice rejected")
	}
	// Failures for alice from many addresses exhaust her user budget.
	for i := range 3 {
		if authorized(t, c, fmt.Sprintf("198.51.100.%d", i), "alice", "wrong") {
			t.Fatal("wrong password granted")
		}
	}
	before := calls.Load()
	if authorized(t, c, "198.51.100.200", "alice", "wrong") || calls.Load() != before {
		t.Error("a throttled user's failure still ran bcrypt")
	}
	// Her cached session is untouched by the throttle.
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice's cached credential rejected while her user name is throttled")
	}
	// Other users are not affected.
	if ok, _ := c.addrs.state("198.51.100.200", time.Now()); ok {
		t.Error("an address with no failures of its own is throttled")
	}
}

func TestAnonymousIsNotAFailure(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	c, calls, reg := newTestController(t, Options{Path: path, AddrLimit: Limit{Burst: 1, Every: time.Hour}})
	for range 5 {
		if authorized(t, c, "10.0.0.1", "", "") {
			t.Fatal("anonymous request granted")
		}
	}
	if calls.Load() != 0 {
		t.Errorf("anonymous requests ran bcrypt %d times", calls.Load())
	}
	for _, r := range []string{"success", "failure", "throttled"} {
		if got := counter(t, reg, "registry_kit_auth_requests_total", r); got != 0 {
			t.Errorf("requests_total{%s} = %v after anonymous requests, want 0", r, got)
		}
	}
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("anonymous challenges throttled the address")
	}
}
