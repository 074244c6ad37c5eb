package gc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/gc"
)

// blobsOf lists an image's manifest, config and layer digests.
func blobsOf(t *testing.T, img v1.Image, ownLayers int) []string {
	t.Helper()
	d, _ := img.Digest()
	cfg, _ := img.ConfigName()
	out := []string{d.String(), cfg.String()}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers[:ownLayers] {
		ld, _ := l.Digest()
		out = append(out, ld.String())
	}
	return out
}

func digests(bs []gc.Blob) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Digest.String()
	}
	return out
}

func sorted(s []string) []string { sort.Strings(s); return s }

// fixture pushes the images every case below starts from and returns what should go without and with
// DeleteUntagged.
type fixture struct {
	tags            []string
	garbage         []string // unreferenced: a deleted manifest's blobs and an orphan layer
	untaggedGarbage []string // the re-tagged (now untagged) image's blobs
	referrer        string   // untagged referrer of a tagged image: kept
	subject         string   // untagged subject of a tagged referrer: kept
}

func pushFixture(t *testing.T, s *store) fixture {
	var f fixture
	shared := layer(t)
	s.push("team/a:1", image(t, 2, shared))
	b := image(t, 1, shared)
	bd := s.push("team/b:1", b)
	old := image(t, 2)
	s.push("c:1", old)
	s.push("c:1", image(t, 1))
	f.untaggedGarbage = blobsOf(t, old, 2)
	s.pushIndex("i:1", image(t, 1), image(t, 1, shared))

	// An untagged referrer of team/b:1 (a signature, say), and a tagged referrer of an untagged subject.
	f.referrer = s.pushReferrer("team/b", bd.String(), "")
	subj := image(t, 1)
	sd, err := subj.Digest()
	if err != nil {
		t.Fatal(err)
	}
	s.push("s@"+sd.String(), subj)
	f.subject = sd.String()
	s.pushReferrer("s", sd.String(), "sig")

	gone := image(t, 2)
	gd := s.push("d:1", gone)
	if code, _ := s.status(http.MethodDelete, "/v2/d/manifests/"+gd.String(), nil); code != http.StatusAccepted {
		t.Fatalf("deleting d@%s: %d", gd, code)
	}
	f.garbage = blobsOf(t, gone, 2)
	orphan := layer(t)
	if err := remote.WriteLayer(s.ref("o").Context(), orphan, s.opts()...); err != nil {
		t.Fatal(err)
	}
	od, _ := orphan.Digest()
	f.garbage = append(f.garbage, od.String())
	f.tags = []string{"team/a:1", "team/b:1", "c:1", "i:1", "s:sig", "d:1"}
	return f
}

// pushReferrer pushes an artifact manifest whose subject is subject, by digest, tagged tag when not empty.
func (s *store) pushReferrer(repo, subject, tag string) string {
	s.t.Helper()
	cfg := []byte("{}")
	emptyDesc := map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest.FromBytes(cfg).String(), "size": 2}
	if err := remote.WriteLayer(s.ref(repo).Context(), staticLayer(cfg), s.opts()...); err != nil {
		s.t.Fatal(err)
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": "application/vnd.example.sig", "config": emptyDesc, "layers": []any{emptyDesc},
		"subject": map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 1},
	}
	body, _ := json.Marshal(m)
	d := digest.FromBytes(body).String()
	ref := d
	if tag != "" {
		ref = tag
	}
	s.putManifest(repo, ref, "application/vnd.oci.image.manifest.v1+json", body)
	return d
}

func TestCollect(t *testing.T) {
	ctx := context.Background()
	later := func() time.Time { return time.Now().Add(time.Hour) }
	tests := []struct {
		name           string
		opts           gc.Options
		deleteUntagged bool
		want           func(fixture) []string
	}{
		{name: "grace window keeps new blobs", opts: gc.Options{Window: gc.DefaultWindow},
			want: func(fixture) []string { return nil }},
		{name: "unreferenced blobs older than the window", opts: gc.Options{Window: 30 * time.Minute, Now: later},
			want: func(f fixture) []string { return f.garbage }},
		{name: "untagged manifests too", opts: gc.Options{Window: 30 * time.Minute, Now: later, DeleteUntagged: true},
			want: func(f fixture) []string { return append(append([]string{}, f.garbage...), f.untaggedGarbage...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			f := pushFixture(t, s)
			dry := tt.opts
			dry.DryRun = true
			drep, err := gc.Collect(ctx, s.driver(), dry)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			want := sorted(tt.want(f))
			if diff := cmp.Diff(want, sorted(digests(drep.Blobs)), cmpEmpty); diff != "" {
				t.Fatalf("dry run blobs (-want +got):\n%s", diff)
			}
			for _, d := range want {
				if !blobExists(t, s.dir, digest.Digest(d)) {
					t.Errorf("dry run deleted %s", d)
				}
			}
			rep, err := gc.Collect(ctx, s.driver(), tt.opts)
			if err != nil {
				t.Fatalf("collect: %v", err)
			}
			if diff := cmp.Diff(want, sorted(digests(rep.Blobs)), cmpEmpty); diff != "" {
				t.Fatalf("collected blobs (-want +got):\n%s", diff)
			}
			var bytes int64
			for _, b := range rep.Blobs {
				bytes += b.Size
			}
			if rep.Bytes != bytes || (len(want) > 0 && bytes == 0) {
				t.Errorf("bytes: report %d, blobs sum %d", rep.Bytes, bytes)
			}
			for _, d := range want {
				if blobExists(t, s.dir, digest.Digest(d)) {
					t.Errorf("%s still stored", d)
				}
			}
			s.pullAll("team/a:1", "team/b:1", "c:1", "i:1", "s:sig", "team/b@"+f.referrer, "s@"+f.subject)
			again, err := gc.Collect(ctx, s.driver(), tt.opts)
			if err != nil || len(again.Blobs) != 0 || len(again.Untagged) != 0 {
				t.Errorf("second run: %v, %d blobs, %d manifests", err, len(again.Blobs), len(again.Untagged))
			}
			rep2, err := gc.Fsck(ctx, s.driver(), gc.FsckOptions{})
			if err != nil || len(rep2.Damage) != 0 {
				t.Errorf("fsck after collect: %v %v", err, rep2.Damage)
			}
		})
	}
}

var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

// A manifest may name a layer by its sha512 address: the sha256 content behind the alias is live.
func TestCollectKeepsSHA512Layers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("a layer uploaded by its sha512 digest, referenced by it")
	addr := s.pushBlobSHA512("h", data)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if err := remote.WriteLayer(s.ref("h").Context(), staticLayer(cfg), s.opts()...); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": string(types.OCIManifestSchema1),
		"config": map[string]any{"mediaType": string(types.OCIConfigJSON), "digest": digest.FromBytes(cfg).String(), "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": string(types.OCILayer), "digest": addr, "size": len(data)}},
	}
	body, _ := json.Marshal(m)
	s.putManifest("h", "1", string(types.OCIManifestSchema1), body)
	rep, err := gc.Collect(ctx, s.driver(), gc.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 0 {
		t.Fatalf("collected %v", digests(rep.Blobs))
	}
	if code, _ := s.status(http.MethodGet, "/v2/h/blobs/"+addr, nil); code != http.StatusOK {
		t.Fatalf("GET by sha512 after collect: %d", code)
	}
	if !blobExists(t, s.dir, digest.FromBytes(data)) {
		t.Fatal("sha256 content of the sha512 layer deleted")
	}
}
