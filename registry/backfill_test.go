package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/registry-kit/registry-kit/registry/oci"
)

// TestBackfillReferrers stores referrers the way clients without the referrers API do (an index tagged
// sha256-<subject hex>), takes away the edges as if they predated registry-kit's referrers API, and checks that
// oci.Backfill, and serve at start, list them again.
func TestBackfillReferrers(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	c := ociClient{t, ts}
	const repo = "team/app"

	subjectBody, subjectDesc := artifact(t, c, repo, "", ocispec.MediaTypeImageConfig, nil, nil)
	c.putManifest(repo, "1", subjectBody, ocispec.MediaTypeImageManifest)
	subject := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subjectDesc.Digest, Size: subjectDesc.Size}
	var referrers []ocispec.Descriptor
	for _, at := range []string{"application/vnd.example.signature", "application/spdx+json"} {
		body, desc := artifact(t, c, repo, at, "", subject, map[string]string{"kind": at})
		if resp, b := c.putManifest(repo, desc.Digest.String(), body, ocispec.MediaTypeImageManifest); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT referrer: %s %s", resp.Status, b)
		}
		referrers = append(referrers, desc)
	}
	if referrers[0].Digest.String() > referrers[1].Digest.String() {
		referrers[0], referrers[1] = referrers[1], referrers[0]
	}
	fallback := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: referrers}
	fallback.SchemaVersion = 2
	fb, _ := json.Marshal(fallback)
	fallbackTag := strings.Replace(subject.Digest.String(), ":", "-", 1)
	if resp, b := c.putManifest(repo, fallbackTag, fb, ocispec.MediaTypeImageIndex); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT fallback tag: %s %s", resp.Status, b)
	}
	edgesDir := filepath.Join(cfg.DataDir, "docker", "registry", "v2", "repositories", repo, "_referrers")
	if err := os.RemoveAll(edgesDir); err != nil {
		t.Fatal(err)
	}
	if _, idx := c.referrers(repo, subject.Digest, ""); len(idx.Manifests) != 0 {
		t.Fatalf("without edges: %d referrers listed, want 0", len(idx.Manifests))
	}

	driver := filesystem.New(filesystem.DriverParameters{RootDirectory: cfg.DataDir, MaxThreads: 100})
	for i, want := range []oci.BackfillStats{{Repositories: 1, FallbackTags: 1, Edges: 2}, {Repositories: 1, FallbackTags: 1, Edges: 0}} {
		got, err := oci.Backfill(context.Background(), driver, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("run %d: stats (-want +got):\n%s", i+1, diff)
		}
	}
	if _, idx := c.referrers(repo, subject.Digest, ""); !cmp.Equal(referrers, idx.Manifests) {
		t.Errorf("after Backfill: referrers %v, want %v", idx.Manifests, referrers)
	}

	// serve does the same at start.
	if err := os.RemoveAll(edgesDir); err != nil {
		t.Fatal(err)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts2 := startServer(t, cfg)
	c2 := ociClient{t, ts2}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, idx := c2.referrers(repo, subject.Digest, "")
		if cmp.Equal(referrers, idx.Manifests) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not backfill within 10s: referrers %v\nlogs:\n%s", idx.Manifests, ts2.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(ts2.logs.String(), "referrers backfilled from fallback tags") {
		t.Errorf("serve logged no backfill summary:\n%s", ts2.logs.String())
	}
}
