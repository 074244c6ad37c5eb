package basic

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCacheHitAvoidsBcrypt(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
	c, calls, reg := newTestController(t, Options{Path: path})

	steps := []struct {
		name, user, password string
		want                 bool
		wantCalls            int64
	}{
		{"first login runs bcrypt", "alice", "pw-alice", true, 1},
		{"repeat is a cache hit", "alice", "pw-alice", true, 1},
		{"repeat again", "alice", "pw-alice", true, 1},
		{"wrong password is not a hit", "alice", "pw-alicE", false, 2},
		{"other user runs bcrypt", "bob", "pw-bob", true, 3},
		{"other user cached", "bob", "pw-bob", true, 3},
		{"unknown user still runs bcrypt", "carol", "pw-alice", false, 4},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if got := authorized(t, c, "10.0.0.1", s.user, s.password); got != s.want {
				t.Errorf("authorized = %v, want %v", got, s.want)
			}
			if got := calls.Load(); got != s.wantCalls {
				t.Errorf("bcrypt calls = %d, want %d", got, s.wantCalls)
			}
		})
	}
	got := map[string]float64{
		"hit": counter(t, reg, "registry_kit_auth_cache_total", "hit"), "miss": counter(t, reg, "registry_kit_auth_cache_total", "miss"),
		"success": counter(t, reg, "registry_kit_auth_requests_total", "success"), "failure": counter(t, reg, "registry_kit_auth_requests_total", "failure"),
	}
	want := map[string]float64{"hit": 3, "miss": 4, "success": 5, "failure": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}

func TestCacheTTLIsRefreshedByUseUpToMaxAge(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	clk := newFakeClock()
	c, calls, _ := newTestController(t, Options{Path: path, CacheTTL: 5 * time.Minute, CacheMaxAge: time.Hour, now: clk.Now})
	steps := []struct {
		name      string
		advance   time.Duration
		wantCalls int64
	}{
		{"first login runs bcrypt", 0, 1},
		{"used again within the TTL", 4 * time.Minute, 1},
		{"each use extends the TTL", 4 * time.Minute, 1},
		{"and again", 4 * time.Minute, 1},
		{"idle longer than the TTL", 5*time.Minute + time.Second, 2},
	}
	// Then keep using it every 4 minutes: at the maximum age (1h after the bcrypt check) it is verified again.
	for range 14 {
		steps = append(steps, struct {
			name      string
			advance   time.Duration
			wantCalls int64
		}{"used every 4 minutes", 4 * time.Minute, 2})
	}
	steps = append(steps, struct {
		name      string
		advance   time.Duration
		wantCalls int64
	}{"past the maximum age despite use", 4*time.Minute + time.Second, 3})
	for _, s := range steps {
		clk.Advance(s.advance)
		if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
			t.Fatalf("%s: alice rejected", s.name)
		}
		if got := calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: bcrypt calls = %d, want %d", s.name, got, s.wantCalls)
		}
	}
}

func TestCacheBound(t *testing.T) {
	path := tempPath(t)
	users := map[string]string{}
	for i := range 8 {
		users[fmt.Sprintf("u%d", i)] = fmt.Sprintf("pw%d", i)
	}
	writeUsers(t, path, users)
	c, calls, _ := newTestController(t, Options{Path: path, CacheSize: 3})
	for u, p := range users {
		if !authorized(t, c, "10.0.0.1", u, p) {
			t.Fatalf("user %s rejected", u)
		}
		if n := c.cache.len(); n > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", n)
		}
	}
	if c.cache.len() != 3 {
		t.Errorf("cache holds %d entries, want it full at 3", c.cache.len())
	}
	hits := 0
	for u, p := range users {
		if c.cache.hit(c.cache.sum(u, p), c.state.Load().file, time.Now()) {
			hits++
		}
	}
	if hits != 3 {
		t.Errorf("%d of 8 verified credentials are cached, want 3 (the bound)", hits)
	}
	before := calls.Load()
	for u, p := range users {
		if !authorized(t, c, "10.0.0.1", u, p) {
			t.Fatalf("user %s rejected after eviction", u)
		}
	}
	if calls.Load() == before {
		t.Error("evicted credentials did not run bcrypt again")
	}
}

func TestCacheKeyIsKeyedHash(t *testing.T) {
	a, err := newCredCache(10, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCredCache(10, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a.sum("alice", "pw") == b.sum("alice", "pw") {
		t.Error("two caches derive the same key: the HMAC key is not random per cache")
	}
	if a.sum("alice", "pw") != a.sum("alice", "pw") {
		t.Error("the same credential gives different keys")
	}
	if a.sum("a", "lice\x00pw") == a.sum("alice", "pw") {
		t.Error("different credentials collide")
	}
}
