//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// gcImage is a random image with n layers of its own plus the shared ones.
func gcImage(t testing.TB, n int64, shared ...v1.Layer) v1.Image {
	t.Helper()
	img, err := random.Image(1024, n)
	if err == nil && len(shared) > 0 {
		img, err = mutate.AppendLayers(img, shared...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var blobLine = regexp.MustCompile(`(?m)^(?:blob eligible for deletion|would remove blob): (sha256:[0-9a-f]{64})|^would remove blob (sha256:[0-9a-f]{64})`)

func blobSet(out string) []string {
	var ds []string
	for _, m := range blobLine.FindAllStringSubmatch(out, -1) {
		ds = append(ds, m[1]+m[2])
	}
	sort.Strings(ds)
	return ds
}

// TestGCMatchesStock: the same filesystem store, collected by registry-kit gc and by stock `registry
// garbage-collect` (both dry runs, registry stopped), with and without untagged deletion: the same blobs go.
func TestGCMatchesStock(t *testing.T) {
	stock := needTool(t, "registry")
	inst := startServe(t, "--no-auth", "--delete-enabled", "--log-level", "warn")
	ref := func(r string) name.Reference {
		n, err := name.ParseReference(inst.Addr+"/"+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	push := func(r string, img v1.Image) v1.Hash {
		if err := remote.Write(ref(r), img); err != nil {
			t.Fatalf("pushing %s: %v", r, err)
		}
		d, _ := img.Digest()
		return d
	}
	shared, _ := random.Layer(2048, types.DockerLayer)
	push("team/a:1", gcImage(t, 2, shared))
	push("team/b:1", gcImage(t, 1, shared))
	push("c:1", gcImage(t, 2))
	push("c:1", gcImage(t, 1)) // the first c:1 is untagged now
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: gcImage(t, 1)}, mutate.IndexAddendum{Add: gcImage(t, 1, shared)})
	if err := remote.WriteIndex(ref("i:1"), idx); err != nil {
		t.Fatal(err)
	}
	gone := push("d:1", gcImage(t, 2))
	if err := remote.Delete(ref("d@" + gone.String())); err != nil {
		t.Fatal(err)
	}
	orphan, _ := random.Layer(512, types.DockerLayer)
	if err := remote.WriteLayer(ref("o").Context(), orphan); err != nil {
		t.Fatal(err)
	}
	inst.Stop()

	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+inst.DataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
			args := []string{"gc", "--dry-run", "--window=0", "--data-dir", inst.DataDir, "--log-level", "error"}
			stockArgs := []string{"garbage-collect", "--dry-run"}
			if untagged {
				args = append(args, "--delete-untagged")
				stockArgs = append(stockArgs, "--delete-untagged")
			}
			ours := runCLI(t, "", nil, args...)
			if ours.exit != 0 {
				t.Fatalf("registry-kit gc: exit %d\n%s", ours.exit, ours.stderr)
			}
			cmd := exec.Command(stock, append(stockArgs, cfg)...)
			cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("stock garbage-collect: %v\n%s", err, out.String())
			}
			want, got := blobSet(out.String()), blobSet(ours.stdout)
			if len(want) == 0 {
				t.Fatalf("stock found nothing to collect:\n%s", out.String())
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("blobs (-stock +registry-kit):\n%s\nregistry-kit:\n%s", diff, ours.stdout)
			}
			t.Logf("%d blobs, same set", len(got))
		})
	}
}

// TestGCScaleOutTorture: two replicas on one MinIO bucket with a shared Redis collect every 2s with a 2s window and
// untagged deletion while 8 clients push (sharing layers), pull, re-tag and delete tags through both. Afterwards every
// tag pulls whole through both replicas, fsck finds nothing, and no unreferenced blob older than the window is left.
func TestGCScaleOutTorture(t *testing.T) {
	s := newScaleOut(t)
	gcFlags := map[string]string{"--gc-interval": "2s", "--gc-window": "2s", "--gc-delete-untagged": "true",
		"--delete-enabled": "true", "--log-level": "info"}
	withGC := func() map[string]string {
		m := map[string]string{}
		for k, v := range gcFlags {
			m[k] = v
		}
		return m
	}
	replicas := []*serveInstance{s.serve(withGC()), s.serve(withGC())}
	opts := []remote.Option{remote.WithAuth(s.auth())}
	shared := make([]v1.Layer, 4)
	for i := range shared {
		shared[i], _ = random.Layer(4096, types.OCILayer)
	}
	repos := []string{"t/one", "two"}
	var ops, refused atomic.Int64
	var mu sync.Mutex
	var unexpected []string
	deadline := time.Now().Add(25 * time.Second)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(c), 99))
			for time.Now().Before(deadline) {
				inst := replicas[rnd.IntN(2)]
				ref := s.ref(inst, fmt.Sprintf("%s:v%d", repos[rnd.IntN(2)], rnd.IntN(4)))
				var err error
				switch op := rnd.IntN(10); {
				case op < 4:
					var img v1.Image
					if img, err = random.Image(2048, 1); err == nil && rnd.IntN(4) > 0 {
						img, err = mutate.AppendLayers(img, shared[rnd.IntN(len(shared))])
					}
					if err == nil {
						err = remote.Write(ref, img, opts...)
					}
				case op < 7:
					var desc *remote.Descriptor
					if desc, err = remote.Get(ref, opts...); err == nil {
						var img v1.Image
						if img, err = desc.Image(); err == nil {
							err = validate.Image(img)
						}
					}
				case op < 9:
					var desc *remote.Descriptor
					if desc, err = remote.Get(ref, opts...); err == nil {
						err = remote.Tag(ref.Context().Tag(fmt.Sprintf("r%d", rnd.IntN(3))), desc, opts...)
					}
				default:
					err = remote.Delete(ref, opts...)
				}
				ops.Add(1)
				if err == nil {
					continue
				}
				msg := err.Error()
				if strings.Contains(msg, "MANIFEST_UNKNOWN") || strings.Contains(msg, "BLOB_UNKNOWN") || strings.Contains(msg, "UNAVAILABLE") {
					refused.Add(1) // a tag deleted or moved by another client; a layer collected after the client's HEAD
					continue
				}
				mu.Lock()
				unexpected = append(unexpected, msg)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations, %d refused cleanly", ops.Load(), refused.Load())
	for _, u := range unexpected {
		t.Errorf("unexpected client error: %s", u)
	}
	runs, failed := 0, 0
	for _, r := range replicas {
		runs += strings.Count(r.Output(), "garbage collection finished")
		failed += strings.Count(r.Output(), "garbage collection failed")
	}
	t.Logf("%d collections across the replicas", runs)
	if runs < 3 || failed > 0 {
		t.Errorf("%d collections, %d failed:\n%s\n%s", runs, failed, replicas[0].Output(), replicas[1].Output())
	}

	var tags []string
	for _, repo := range repos {
		list, err := remote.List(s.ref(replicas[0], repo).Context(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range list {
			tags = append(tags, repo+":"+tg)
		}
	}
	if len(tags) == 0 {
		t.Fatal("no tags left")
	}
	for _, tg := range tags {
		for _, r := range replicas {
			img, err := remote.Image(s.ref(r, tg), opts...)
			if err == nil {
				err = validate.Image(img)
			}
			if err != nil {
				t.Errorf("pulling %s through %s: %v", tg, r.Addr, err)
			}
		}
	}
	storage := storageArgs(s.args(nil))
	if r := runCLI(t, "", nil, append([]string{"fsck"}, storage...)...); r.exit != 0 {
		t.Errorf("fsck: exit %d\n%s%s", r.exit, r.stdout, r.stderr)
	}
	time.Sleep(6 * time.Second) // two more windows: the replicas keep collecting
	r := runCLI(t, "", nil, append([]string{"gc", "--dry-run", "--window=2s", "--delete-untagged", "--log-level=error"}, storage...)...)
	if r.exit != 0 || len(blobSet(r.stdout)) > 0 {
		t.Errorf("after the window: exit %d, unreferenced blobs left:\n%s%s", r.exit, r.stdout, r.stderr)
	}
	t.Logf("%d tags pulled through both replicas; %s", len(tags), strings.TrimSpace(r.stdout))
}

// storageArgs keeps the flags gc and fsck take (where the store is) from a replica's flags.
func storageArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "--storage") || strings.HasPrefix(a, "--s3-") || strings.HasPrefix(a, "--redis-") {
			out = append(out, a)
		}
	}
	return out
}
