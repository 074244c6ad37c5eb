package gc_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/internal/registrytest"
	"github.com/registry-kit/registry-kit/registry"
	"github.com/registry-kit/registry-kit/registry/gc"
)

// atFence runs a function when the collection fences writes, that is after its mark.
type atFence struct {
	gc.Coordinator
	before, after func()
}

func (a atFence) Fence(ctx context.Context) error {
	if a.before != nil {
		a.before()
	}
	err := a.Coordinator.Fence(ctx)
	if a.after != nil {
		a.after()
	}
	return err
}

// The race distribution's offline GC loses: a layer unreferenced for longer than the window is made live again by a
// push that lands after the mark. The server journals the push, so the sweep spares the layer; a push while the
// sweep runs gets 503 + Retry-After; afterwards the descriptor cache no longer claims deleted blobs exist.
func TestCollectWhileServing(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.Start(t, registrytest.Options{
		Users:     map[string]string{user: password},
		Configure: func(c *registry.Config) { c.DeleteEnabled = true },
	})
	s := &store{t: t, host: srv.Host, dir: srv.DataDir}
	revived, gone := layer(t), layer(t)
	s.push("old:a", image(t, 0, revived))
	s.push("old:b", image(t, 0, gone))
	deleteAll(t, s, "old") // both layers are now unreferenced
	// Their pushes were journaled: a window later the journal no longer spares them.
	const window = 2 * time.Second
	time.Sleep(window + 500*time.Millisecond)
	goneDigest, _ := gone.Digest()
	revivedDigest, _ := revived.Digest()
	// The in-memory descriptor cache learns that gone exists.
	if code, _ := s.status(http.MethodHead, "/v2/old/blobs/"+goneDigest.String(), nil); code != http.StatusOK {
		t.Fatalf("HEAD before collection: %d", code)
	}

	var revivedImage v1.Image
	var fencedCode int
	var retryAfter string
	coord := atFence{
		Coordinator: srv.Registry.GCCoordinator(),
		before: func() {
			// After the mark: push an image reusing the unreferenced layer (the client sees it exists, skips it).
			revivedImage = image(t, 1, revived)
			s.push("new:1", revivedImage)
		},
		after: func() {
			raw, _ := image(t, 1).RawManifest()
			var hdr http.Header
			fencedCode, hdr = s.status(http.MethodPut, "/v2/new/manifests/fenced", raw, "Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			retryAfter = hdr.Get("Retry-After")
		},
	}
	rep, err := srv.Registry.CollectGarbage(ctx, gc.Options{Window: window, Coordinator: coord})
	if err != nil {
		t.Fatal(err)
	}
	if fencedCode != http.StatusServiceUnavailable || retryAfter == "" {
		t.Errorf("manifest PUT during the sweep: %d, Retry-After %q; want 503 with Retry-After", fencedCode, retryAfter)
	}
	if rep.SparedByJournal == 0 {
		t.Errorf("nothing spared by the journal: %+v", rep)
	}
	if !blobExists(t, s.dir, revivedDigest) {
		t.Fatal("the layer a push made live again during the collection was deleted")
	}
	s.pullAll("new:1")
	if blobExists(t, s.dir, goneDigest) {
		t.Fatal("unreferenced layer not collected")
	}
	if code, _ := s.status(http.MethodHead, "/v2/old/blobs/"+goneDigest.String(), nil); code != http.StatusNotFound {
		t.Errorf("HEAD of a collected blob: %d, want 404 (the descriptor cache must forget it)", code)
	}
	// A manifest naming the collected blob is refused, not stored broken.
	broken, err := mutate.AppendLayers(image(t, 0), gone)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := broken.RawManifest()
	mt, _ := broken.MediaType()
	if code, _ := s.status(http.MethodPut, "/v2/old/manifests/broken", raw, "Content-Type", string(mt)); code == http.StatusCreated {
		t.Error("a manifest referencing a collected blob was accepted")
	}
	// The fence is lifted.
	s.push("new:2", image(t, 1))
}

func deleteAll(t *testing.T, s *store, repo string) {
	t.Helper()
	list, err := remote.List(s.ref(repo).Context(), s.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range list {
		desc, err := remote.Head(s.ref(repo+":"+tg), s.opts()...)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := s.status(http.MethodDelete, "/v2/"+repo+"/manifests/"+desc.Digest.String(), nil); code != http.StatusAccepted {
			t.Fatalf("deleting %s:%s: %d", repo, tg, code)
		}
	}
}

// A collection that removes tags and manifests behind the API's back (retention, untagged manifests) drops the
// server's manifest cache: what the sweep deleted is never answered from memory afterwards.
func TestCollectDropsCachedManifests(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{
		Users:     map[string]string{user: password},
		Configure: func(c *registry.Config) { c.DeleteEnabled = true },
	})
	s := &store{t: t, host: srv.Host, dir: srv.DataDir}
	old := s.push("app:v1", image(t, 1))
	time.Sleep(10 * time.Millisecond) // distinct push times
	s.push("app:v2", image(t, 1))
	paths := []string{"/v2/app/manifests/v1", "/v2/app/manifests/" + old.String()}
	accept := []string{"Accept", "application/vnd.docker.distribution.manifest.v2+json"}
	for range 2 { // the second round is answered from the cache
		for _, p := range paths {
			if code, _ := s.status(http.MethodGet, p, nil, accept...); code != http.StatusOK {
				t.Fatalf("GET %s before the collection: %d", p, code)
			}
		}
	}
	later := func() time.Time { return time.Now().Add(time.Hour) }
	o := gc.Options{Window: 30 * time.Minute, Now: later, DeleteUntagged: true,
		Retention: gc.Policy{Rules: []gc.Rule{{Repositories: "app", KeepLast: 1}}}}
	rep, err := srv.Registry.CollectGarbage(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Untagged) != 1 {
		t.Fatalf("removed %d manifests, want app:v1's", len(rep.Untagged))
	}
	for _, p := range paths {
		if code, _ := s.status(http.MethodGet, p, nil, accept...); code != http.StatusNotFound {
			t.Errorf("GET %s after the collection removed it: %d, want 404 (stale manifest cache)", p, code)
		}
	}
	s.pullAll("app:v2")
}
