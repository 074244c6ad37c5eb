package oci_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/registry-kit/registry-kit/registry/oci"
)

// New puts the OCI 1.1 additions in front of a registry handler (distribution's App in registry-kit serve); here
// the storage is empty, so every subject has an empty referrers index.
func ExampleNew() {
	app := http.NotFoundHandler() // distribution's App
	h, err := oci.New(app, oci.Options{Driver: inmemory.New()})
	if err != nil {
		fmt.Println(err)
		return
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet,
		"/v2/team/app/referrers/sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	fmt.Print(w.Body.String())
	// Output:
	// 200 application/vnd.oci.image.index.v1+json
	// {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}
}

// Backfill records the referrers older clients pushed as sha256-<hex> fallback tags.
func ExampleBackfill() {
	st, err := oci.Backfill(context.Background(), inmemory.New(), nil)
	fmt.Printf("%+v %v\n", st, err)
	// Output:
	// {Repositories:0 FallbackTags:0 Edges:0} <nil>
}
