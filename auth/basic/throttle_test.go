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

// TestThrottlePerAddressAndUser spends the budget of one user from one address and checks what that throttles: that
// user from that address, and nothing else.
func TestThrottlePerAddressAndUser(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
	c, calls, _ := newTestController(t, Options{Path: path, PairLimit: Limit{Burst: 3, Every: time.Hour}})
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Fatal("alice rejected")
	}
	const attacker = "198.51.100.7"
	for range 3 {
		if authorized(t, c, attacker, "alice", "wrong") {
			t.Fatal("wrong password granted")
		}
	}
	c.cache = mustCache(t) // every login below is a first login: no cached credential helps
	steps := []struct {
		name, addr, user, password string
		want, wantBcrypt           bool
	}{
		{"alice from the spent address is throttled without bcrypt", attacker, "alice", "wrong", false, false},
		{"even with her right password", attacker, "alice", "pw-alice", false, false},
		{"alice's right password from another address", "10.0.0.2", "alice", "pw-alice", true, true},
		{"a wrong guess for alice from another address is still checked", "10.0.0.3", "alice", "wrong", false, true},
		{"another user from the spent address", attacker, "bob", "pw-bob", true, true},
	}
	for _, s := range steps {
		before := calls.Load()
		if got := authorized(t, c, s.addr, s.user, s.password); got != s.want {
			t.Errorf("%s: authorized = %v, want %v", s.name, got, s.want)
		}
		if ran := calls.Load() != before; ran != s.wantBcrypt {
			t.Errorf("%s: bcrypt ran = %v, want %v", s.name, ran, s.wantBcrypt)
		}
	}
}

func TestDecide(t *testing.T) {
	clean, suspect, spent := standing{}, standing{suspect: true}, standing{throttled: true, suspect: true}
	tests := []struct {
		name       string
		addr, pair standing
		flood      bool
		want       route
	}{
		{"clean", clean, clean, false, routeFree},
		{"clean during a flood waits its turn, is never refused", clean, clean, true, routeFlood},
		{"address with failures", suspect, clean, false, routeSuspect},
		{"pair with failures", suspect, suspect, false, routeSuspect},
		{"address spent", spent, clean, false, routeRefuse},
		{"pair spent", suspect, spent, false, routeRefuse},
		{"pair spent, address recovered", clean, spent, true, routeRefuse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.addr, tt.pair, tt.flood); got != tt.want {
				t.Errorf("decide = %d, want %d", got, tt.want)
			}
		})
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

// TestWrongPasswordFloodNeverRefusesTheUser is the lockout attack: with the default budgets, one address floods
// wrong passwords for admin. Meanwhile admin's right password is never refused: neither a first login from another
// address (a full check, as on every cache miss) nor an already logged-in client, also across a reload of the file
// that adds an unrelated user.
func TestWrongPasswordFloodNeverRefusesTheUser(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"admin": "pw-admin"})
	c, _, reg := newTestController(t, Options{
		Path: path, PollInterval: time.Hour, disableNotify: true,
		AddrLimit: Limit{Burst: 20, Every: time.Second}, PairLimit: Limit{Burst: 10, Every: 2 * time.Second},
		GlobalLimit: Limit{Burst: 50, Every: 100 * time.Millisecond},
	})
	c.bcryptNanos.Store(int64(time.Millisecond)) // throttled answers wait like bcrypt: keep the flood fast
	if !authorized(t, c, "10.0.0.1", "admin", "pw-admin") {
		t.Fatal("admin rejected before the flood")
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var granted, attempts atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				attempts.Add(1)
				if _, err := c.Authorized(request("192.0.2.66", "admin", fmt.Sprintf("guess-%d-%d", g, i))); err == nil {
					granted.Add(1)
				}
			}
		}()
	}
	defer func() { close(done); wg.Wait() }()
	eventually(t, 10*time.Second, "the flood was never throttled", func() bool {
		return counter(t, reg, "registry_kit_auth_requests_total", "throttled") > 0
	})

	var fresh, loggedIn int
	for i := range 60 {
		if i == 30 { // an unrelated user is added: admin's entry is unchanged
			f, err := htpasswd.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Set("bob", "pw-bob", testCost); err != nil {
				t.Fatal(err)
			}
			if err := f.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			c.reloadIfChanged(time.Now())
			if got := counter(t, reg, "registry_kit_auth_reloads_total", "success"); got != 1 {
				t.Fatalf("reloads_total{success} = %v, want 1", got)
			}
		}
		if c.check(t.Context(), c.state.Load(), "admin", "pw-admin", "10.0.0.2") != verified {
			fresh++
		}
		if !authorized(t, c, "10.0.0.1", "admin", "pw-admin") {
			loggedIn++
		}
	}
	if fresh != 0 || loggedIn != 0 {
		t.Errorf("during the flood, admin's right password got %d 401s as a first login from another address and %d "+
			"as a logged-in client; want none", fresh, loggedIn)
	}
	if granted.Load() != 0 {
		t.Errorf("%d of the flood's wrong passwords were granted", granted.Load())
	}
	t.Logf("%d wrong passwords sent, %v throttled", attempts.Load(), counter(t, reg, "registry_kit_auth_requests_total", "throttled"))
}
