package manifestcache

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func testEntry(s *store, repo, ref string, body int) *entry {
	return &entry{key: key{method: http.MethodGet, path: "/v2/" + repo + "/manifests/" + ref}, repo: repo,
		header: http.Header{"Docker-Content-Digest": {"sha256:x"}}, body: make([]byte, body), stamp: s.begin(repo)}
}

// TestStoreBoundedByBytes: the least recently used entries go first once the bytes are spent, and an entry larger
// than the whole bound is not kept.
func TestStoreBoundedByBytes(t *testing.T) {
	s := newStore(10*1024, 0, time.Now)
	for i := range 20 {
		s.put(testEntry(s, "r", fmt.Sprint(i), 1000))
		if b, _ := s.usage(); b > 10*1024 {
			t.Fatalf("after %d puts the store holds %d bytes, more than its bound", i+1, b)
		}
	}
	if _, ok := s.get(testEntry(s, "r", "0", 0).key); ok {
		t.Error("the oldest entry is still there")
	}
	if _, ok := s.get(testEntry(s, "r", "19", 0).key); !ok {
		t.Error("the newest entry is gone")
	}
	if s.put(testEntry(s, "r", "big", 20*1024)) {
		t.Error("an entry larger than the bound was kept")
	}
}

// TestStoreInvalidate: invalidating a repository drops its entries and refuses a response read before the
// invalidation, and leaves other repositories alone.
func TestStoreInvalidate(t *testing.T) {
	s := newStore(1<<20, 0, time.Now)
	s.put(testEntry(s, "a", "1", 10))
	s.put(testEntry(s, "b", "1", 10))
	inFlight := testEntry(s, "a", "2", 10) // its stamp is taken as it starts reading
	s.invalidate("a")
	if _, ok := s.get(testEntry(s, "a", "1", 0).key); ok {
		t.Error("a/1 survived the invalidation of a")
	}
	if _, ok := s.get(testEntry(s, "b", "1", 0).key); !ok {
		t.Error("b/1 was dropped by the invalidation of a")
	}
	if s.put(inFlight) {
		t.Error("a response read before the invalidation was kept")
	}
	if !s.put(testEntry(s, "a", "2", 10)) {
		t.Error("a response read after the invalidation was refused")
	}
	s.invalidateAll()
	if _, n := s.usage(); n != 0 {
		t.Errorf("%d entries after invalidateAll", n)
	}
}

func TestStoreTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newStore(1<<20, time.Second, func() time.Time { return now })
	s.put(testEntry(s, "a", "1", 10))
	now = now.Add(999 * time.Millisecond)
	if _, ok := s.get(testEntry(s, "a", "1", 0).key); !ok {
		t.Error("entry gone before its TTL")
	}
	now = now.Add(time.Millisecond)
	if _, ok := s.get(testEntry(s, "a", "1", 0).key); ok {
		t.Error("entry served at its TTL")
	}
}
