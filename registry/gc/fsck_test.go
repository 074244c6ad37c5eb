package gc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/registry/gc"
)

func TestFsckFindsDamage(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img := image(t, 2)
	s.push("x:1", img)
	layers, _ := img.Layers()
	missing, _ := layers[0].Digest()
	corrupt, _ := layers[1].Digest()
	blobFile := func(hex string) string {
		return filepath.Join(s.dir, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
	}
	clean, err := gc.Fsck(ctx, s.driver(), gc.FsckOptions{})
	if err != nil || len(clean.Damage) != 0 || clean.Blobs == 0 {
		t.Fatalf("fsck of a sound store: %v %v (%d blobs)", err, clean.Damage, clean.Blobs)
	}
	if err := os.Remove(blobFile(missing.Hex)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(blobFile(corrupt.Hex))
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(blobFile(corrupt.Hex), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.dir, "docker/registry/v2/repositories/x/_manifests/revisions/sha256")); err == nil {
		t.Fatal("removed a non-empty directory?")
	}
	rep, err := gc.Fsck(ctx, s.driver(), gc.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Damage {
		got = append(got, d.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{missing.String() + ": blob data missing", corrupt.String() + ": content does not match digest"} {
		if !strings.Contains(all, want) {
			t.Errorf("fsck report lacks %q:\n%s", want, all)
		}
	}
	if len(got) != 2 {
		t.Errorf("want 2 problems, got:\n%s", all)
	}
	sizes, err := gc.Fsck(ctx, s.driver(), gc.FsckOptions{SkipDigests: true})
	if err != nil || len(sizes.Damage) != 1 {
		t.Errorf("fsck --skip-digests: %v, %v (want only the missing blob)", err, sizes.Damage)
	}
}
