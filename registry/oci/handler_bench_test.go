package oci

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// BenchmarkPassThrough is what the handler adds to the requests it leaves to distribution (manifest and sha256 blob
// GETs: the hot path).
func BenchmarkPassThrough(b *testing.B) {
	h, err := New(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), Options{Driver: inmemory.New()})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{
		"/v2/team/app/manifests/latest",
		"/v2/team/app/blobs/sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	} {
		b.Run(p, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, p, nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
