package oci

import (
	"context"
	"sort"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// TestWalkRepositories finds nested repository names and skips the directories distribution owns.
func TestWalkRepositories(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	for _, name := range []string{"a", "a/b", "c/d/e", "f_g"} {
		if err := d.PutContent(ctx, storagelayout.RevisionLink(name, digest.FromString(name)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Not repositories: a layer link without _manifests, and an uploads directory.
	if err := d.PutContent(ctx, storagelayout.LayerLink("h", digest.FromString("h")), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.PutContent(ctx, storagelayout.Repo("a")+"/_uploads/u/data", []byte("x")); err != nil {
		t.Fatal(err)
	}
	h := &Handler{driver: d}
	var got []string
	if err := h.walkRepositories(ctx, storagelayout.Repositories, func(n string) error { got = append(got, n); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"a", "a/b", "c/d/e", "f_g"}, got); diff != "" {
		t.Errorf("repositories (-want +got):\n%s", diff)
	}
	var none []string
	if err := (&Handler{driver: inmemory.New()}).walkRepositories(ctx, storagelayout.Repositories, func(n string) error { none = append(none, n); return nil }); err != nil || none != nil {
		t.Errorf("empty storage: %v, %v; want nothing", none, err)
	}
}
