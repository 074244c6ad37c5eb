package basic

import (
	"path/filepath"
	"testing"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// BenchmarkAuthorizedCacheHit is the per-request cost of authentication for a logged-in client.
func BenchmarkAuthorizedCacheHit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "htpasswd")
	if _, err := htpasswd.AddUser(path, "alice", "pw-alice", 4); err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Realm: "r", Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := request("10.0.0.1", "alice", "pw-alice")
	if _, err := c.Authorized(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Authorized(r); err != nil {
				b.Error("cached credential rejected")
				return
			}
		}
	})
}
