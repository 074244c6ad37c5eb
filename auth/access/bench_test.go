package access

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkDecision is what the policy adds to a request: mapping it to access records and checking them.
func BenchmarkDecision(b *testing.B) {
	p, err := Parse([]byte(examplePolicy))
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("HEAD", "/v2/team-a/app/manifests/1", nil)
	b.ReportAllocs()
	for b.Loop() {
		recs, _, ok := Records(r)
		if !ok || !p.Permits("alice", recs[0]) {
			b.Fatal("denied")
		}
	}
}
