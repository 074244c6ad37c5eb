package gc_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
	"github.com/registry-kit/registry-kit/internal/registrytest"
	"github.com/registry-kit/registry-kit/registry"
	"github.com/registry-kit/registry-kit/registry/gc"
)

// TestTorture: 8 clients push (sharing layers), pull, re-tag and delete tags while serve collects garbage every 2s
// with a 2s window and untagged deletion on. Afterwards every tag pulls with every digest verified, fsck finds
// nothing, and no unreferenced blob older than the window is left.
func TestTorture(t *testing.T) {
	if testing.Short() {
		t.Skip("torture test: runs for about 30 s")
	}
	const window = 2 * time.Second
	logs := &lockedbuf.Buffer{}
	srv := registrytest.Start(t, registrytest.Options{
		Users:  map[string]string{user: password},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Configure: func(c *registry.Config) {
			c.DeleteEnabled = true
			c.GC = registry.GCConfig{Interval: 2 * time.Second, Window: window, DeleteUntagged: true}
		},
	})
	s := &store{t: t, host: srv.Host, dir: srv.DataDir}
	shared := make([]v1.Layer, 4)
	for i := range shared {
		shared[i] = layer(t)
	}
	repos := []string{"t/one", "t/two", "three"}

	var pushes, pulls, retags, deletes, refused atomic.Int64
	var mu sync.Mutex
	var unexpected []string
	reasons := map[string]int{}
	note := func(op string, err error) {
		// Expected under this load: a tag another client deleted or moved (404), a manifest whose layer a sweep
		// removed after the client's HEAD said it existed (refused cleanly: MANIFEST_BLOB_UNKNOWN).
		msg := err.Error()
		for _, ok := range []string{"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "UNAVAILABLE", "404"} {
			if strings.Contains(msg, ok) {
				refused.Add(1)
				mu.Lock()
				reasons[op+" "+ok]++
				mu.Unlock()
				return
			}
		}
		mu.Lock()
		unexpected = append(unexpected, op+": "+msg)
		mu.Unlock()
	}
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(c), 17))
			for time.Now().Before(deadline) {
				repo := repos[rnd.IntN(len(repos))]
				ref := s.ref(fmt.Sprintf("%s:v%d", repo, rnd.IntN(5)))
				switch op := rnd.IntN(10); {
				case op < 4:
					img, err := randomImage(rnd, shared)
					if err == nil {
						err = remote.Write(ref, img, s.opts()...)
					}
					if err != nil {
						note("push", err)
						continue
					}
					pushes.Add(1)
				case op < 7:
					desc, err := remote.Get(ref, s.opts()...)
					if err == nil {
						err = validatePull(desc)
					}
					if err != nil {
						note("pull", err)
						continue
					}
					pulls.Add(1)
				case op < 9:
					desc, err := remote.Get(ref, s.opts()...)
					if err == nil {
						err = remote.Tag(ref.Context().Tag(fmt.Sprintf("r%d", rnd.IntN(3))), desc, s.opts()...)
					}
					if err != nil {
						note("retag", err)
						continue
					}
					retags.Add(1)
				default:
					if err := remote.Delete(ref, s.opts()...); err != nil {
						note("delete", err)
						continue
					}
					deletes.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("pushes %d, pulls %d, retags %d, tag deletes %d, refused cleanly %d", pushes.Load(), pulls.Load(),
		retags.Load(), deletes.Load(), refused.Load())
	t.Logf("refused: %v", reasons)
	for _, u := range unexpected {
		t.Errorf("unexpected client error: %s", u)
	}
	runs := strings.Count(logs.String(), "garbage collection finished")
	removed := strings.Count(logs.String(), "blobs_removed=") - strings.Count(logs.String(), "blobs_removed=0 ")
	t.Logf("%d collections, %d of them removed blobs", runs, removed)
	if runs < 3 || removed == 0 {
		t.Errorf("want at least 3 collections removing something, got %d (%d removing)\n%s", runs, removed, logs.String())
	}
	if failed := strings.Count(logs.String(), "garbage collection failed"); failed > 0 {
		t.Errorf("%d collections failed:\n%s", failed, logs.String())
	}

	// Every tag left pulls whole.
	ctx := context.Background()
	var tags []string
	for _, repo := range repos {
		list, err := remote.List(s.ref(repo).Context(), s.opts()...)
		if err != nil {
			t.Fatalf("listing %s: %v", repo, err)
		}
		for _, tg := range list {
			tags = append(tags, repo+":"+tg)
		}
	}
	if len(tags) == 0 {
		t.Fatal("no tags left to check")
	}
	s.pullAll(tags...)
	frep, err := gc.Fsck(ctx, s.driver(), gc.FsckOptions{})
	if err != nil || len(frep.Damage) > 0 {
		t.Fatalf("fsck: %v %v", err, frep.Damage)
	}
	// Once the window has passed, nothing unreferenced is older than it: a collection (with no journal: nothing
	// writes now) finds nothing the scheduled ones left behind, apart from what the last of them spared as new.
	time.Sleep(2*window + 2*time.Second)
	rep, err := gc.Collect(ctx, s.driver(), gc.Options{Window: window, DeleteUntagged: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) > 0 {
		t.Errorf("after the window, %d unreferenced blobs are still stored: %v", len(rep.Blobs), digests(rep.Blobs))
	}
	t.Logf("%d tags checked, %d manifests, %d blobs verified, %d bytes stored", len(tags), frep.Manifests, frep.Blobs, rep.StorageBytes)
}

// randomImage has one or two layers of its own and, usually, one of the shared ones.
func randomImage(rnd *rand.Rand, shared []v1.Layer) (v1.Image, error) {
	img, err := random.Image(256+rnd.Int64N(2048), 1+rnd.Int64N(2))
	if err != nil || rnd.IntN(4) == 0 {
		return img, err
	}
	return mutate.AppendLayers(img, shared[rnd.IntN(len(shared))])
}

func validatePull(desc *remote.Descriptor) error {
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return validate.Index(idx)
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return validate.Image(img)
}
