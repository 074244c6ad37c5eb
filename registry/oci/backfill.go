package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// fallbackTagRE is the referrers tag schema of the distribution spec: clients that find no referrers API tag an image
// index listing the referrers of a subject <alg>-<hex>.
var fallbackTagRE = regexp.MustCompile(`^(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})$`)

// BackfillStats counts what Backfill found and recorded.
type BackfillStats struct {
	Repositories int // repositories looked at
	FallbackTags int // tags in the referrers tag schema
	Edges        int // referrer edges written (the others existed already)
}

// Backfill records the referrers that clients pushed through the referrers tag schema (a "sha256-<hex>" tag on an
// image index listing them) before this registry served the referrers API, so the API lists them too. The fallback
// tags themselves stay: older clients still read them. Running it again writes nothing new; several replicas may
// run it at once.
func Backfill(ctx context.Context, driver storagedriver.StorageDriver, log *slog.Logger) (BackfillStats, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var st BackfillStats
	ns, err := storage.NewRegistry(ctx, driver)
	if err != nil {
		return st, fmt.Errorf("backfilling referrers: %w", err)
	}
	h := &Handler{edges: edges{driver}, driver: driver, ns: ns, log: log}
	err = h.walkRepositories(ctx, storagelayout.Repositories, func(name string) error {
		st.Repositories++
		return h.backfillRepository(ctx, name, &st)
	})
	if err != nil {
		return st, fmt.Errorf("backfilling referrers: %w", err)
	}
	return st, nil
}

// walkRepositories calls fn for each repository under dir. It lists only the directories of repository names (a
// directory holding _manifests is a repository; names nest), not every link below them as distribution's catalog
// walk does: on object storage that is one LIST per name component instead of one per thousand objects.
func (h *Handler) walkRepositories(ctx context.Context, dir string, fn func(name string) error) error {
	entries, err := h.driver.List(ctx, dir)
	if err != nil {
		if errors.As(err, new(storagedriver.PathNotFoundError)) {
			return nil
		}
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	root := storagelayout.Repositories + "/"
	for _, e := range entries {
		if path.Base(e) == "_manifests" {
			if err := fn(strings.TrimPrefix(dir, root)); err != nil {
				return err
			}
			break
		}
	}
	for _, e := range entries {
		if strings.HasPrefix(path.Base(e), "_") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := h.walkRepositories(ctx, e, fn); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) backfillRepository(ctx context.Context, name string, st *BackfillStats) error {
	named, err := reference.WithName(name)
	if err != nil {
		return nil // not a repository distribution would serve
	}
	repo, err := h.ns.Repository(ctx, named)
	if err != nil {
		return fmt.Errorf("opening repository %s: %w", name, err)
	}
	tags := repo.Tags(ctx)
	all, err := tags.All(ctx)
	if err != nil {
		return nil // no tags
	}
	for _, tag := range all {
		if !fallbackTagRE.MatchString(tag) {
			continue
		}
		subject, err := digest.Parse(tag[:6] + ":" + tag[7:])
		if err != nil {
			continue
		}
		st.FallbackTags++
		desc, err := tags.Get(ctx, tag)
		if err != nil {
			h.log.Warn("backfilling referrers: reading fallback tag", "repository", name, "tag", tag, "err", err)
			continue
		}
		n, err := h.backfillIndex(ctx, name, subject, desc.Digest)
		st.Edges += n
		if err != nil {
			return err
		}
	}
	return nil
}

// backfillIndex writes an edge for each referrer the fallback index idx lists that the repository holds.
func (h *Handler) backfillIndex(ctx context.Context, name string, subject, idx digest.Digest) (int, error) {
	target, err := h.readLink(ctx, storagelayout.RevisionLink(name, idx))
	if err != nil {
		return 0, nil // the tag points at a manifest that is gone
	}
	b, err := h.driver.GetContent(ctx, storagelayout.BlobData(target))
	if err != nil {
		return 0, nil
	}
	var index struct {
		Manifests []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"manifests"`
	}
	if json.Unmarshal(b, &index) != nil {
		return 0, nil
	}
	written := 0
	for _, d := range index.Manifests {
		if d.Digest.Validate() != nil {
			continue
		}
		if _, err := h.driver.Stat(ctx, storagelayout.Edge(name, subject, d.Digest)); err == nil {
			continue // recorded already
		}
		target, err := h.readLink(ctx, storagelayout.RevisionLink(name, d.Digest))
		if err != nil {
			continue // listed, but not in this repository
		}
		body, err := h.driver.GetContent(ctx, storagelayout.BlobData(target))
		if err != nil || len(body) > maxManifestSize {
			continue
		}
		m, err := parseManifest(body, "")
		if err != nil {
			continue
		}
		if err := h.edges.put(ctx, name, subject, referrerDescriptor(m, d.Digest, int64(len(body)))); err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}

// Backfill runs Backfill over the handler's storage.
func (h *Handler) Backfill(ctx context.Context) (BackfillStats, error) {
	return Backfill(ctx, h.driver, h.log)
}
