package gc

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// Collect runs one garbage collection over the store behind driver.
//
// The order is what makes it safe while servers write: scan and mark with no fence (a push that lands meanwhile
// either writes blob data newer than the window, or journals the old digests it makes live again); then fence the
// writes, read the journal, recompute what stays with it, delete, make the caches forget, and lift the fence.
func Collect(ctx context.Context, driver storagedriver.StorageDriver, o Options) (rep Report, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	start := o.Now()
	rep = Report{Started: start, DryRun: o.DryRun}
	release, err := o.Coordinator.Lock(ctx)
	if err != nil {
		return rep, err // another collection runs: nothing to log here
	}
	defer func() {
		rep.Took = o.Now().Sub(start)
		logRun(o, rep, err)
	}()
	defer release()
	cutoff := start.Add(-o.Window)

	c := &collection{o: o, driver: driver, cutoff: cutoff, rep: &rep}
	if err := c.scan(ctx); err != nil {
		return rep, err
	}
	if !o.DryRun {
		if err := o.Coordinator.Fence(ctx); err != nil {
			return rep, err
		}
		fenced := o.Now()
		defer func() {
			uerr := o.Coordinator.Unfence(context.WithoutCancel(ctx))
			rep.Fenced = o.Now().Sub(fenced)
			err = errors.Join(err, uerr)
		}()
	}
	// Writes journal before they check the fence, and finish within the window of journaling: every write the
	// mark may have missed is in the journal from cutoff on.
	touched, err := o.Coordinator.Touched(ctx, cutoff)
	if err != nil {
		return rep, err
	}
	c.decide(touched)
	if o.DryRun {
		return rep, c.purgeUploads(ctx)
	}
	errs := c.sweep(ctx)
	if err := o.Coordinator.Forget(ctx, c.deleted); err != nil {
		errs = append(errs, err)
	}
	rep.Errors = len(errs)
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("sweeping: %w", err)
	}
	return rep, c.purgeUploads(ctx)
}

type collection struct {
	o      Options
	driver storagedriver.StorageDriver
	cutoff time.Time
	rep    *Report

	s      *scanner
	repos  []*repo
	stored map[digest.Digest]storedBlob
	// removals are the tags retention removes, by repository.
	removals map[string]map[string][]string

	// decided by decide
	untagged []Manifest
	blobs    map[digest.Digest]bool
	deleted  Deleted
}

func (c *collection) scan(ctx context.Context) error {
	c.s = newScanner(c.driver, func(name string) bool { return len(c.o.Retention.matching(name)) > 0 })
	names, err := c.s.repositories(ctx)
	if err != nil {
		return err
	}
	c.removals = map[string]map[string][]string{}
	for _, name := range names {
		r, err := c.s.scan(ctx, name)
		if err != nil {
			return err
		}
		c.repos = append(c.repos, r)
		c.rep.Manifests += len(r.revs)
		c.rep.Tags += len(r.tags)
		if len(c.o.Retention.matching(name)) > 0 {
			infos := make([]TagInfo, 0, len(r.tags))
			for t, tg := range r.tags {
				infos = append(infos, TagInfo{Name: t, Pushed: tg.modTime})
			}
			c.removals[name] = c.o.Retention.Removals(name, infos, c.o.Now())
		}
	}
	c.rep.Repositories = len(c.repos)
	c.rep.Damaged = c.s.damaged
	// Blob data written after this walk is newer than the window: it needs no look.
	c.stored, err = c.s.blobs(ctx)
	return err
}

// decide computes, with the journal, what goes: tags, untagged manifests, blobs and the links to them.
func (c *collection) decide(touched map[digest.Digest]bool) {
	marked := map[digest.Digest]bool{}
	for _, r := range c.repos {
		removed := map[string]bool{}
		for t, rules := range c.removals[r.name] {
			if touched[r.tags[t].addr] || touched[r.resolve(r.tags[t].addr)] {
				continue // pushed again while the collection ran
			}
			removed[t] = true
			c.rep.RemovedTags = append(c.rep.RemovedTags, TagRemoval{Repository: r.name, Tag: t, Digest: r.tags[t].addr, Rules: rules})
		}
		kept := keep(r, c.s.manifests, c.o.DeleteUntagged, removed, c.cutoff, touched)
		for d := range r.revs {
			if !kept[d] {
				c.untagged = append(c.untagged, Manifest{Repository: r.name, Digest: d})
			}
		}
		mark(r, c.s.manifests, kept, marked)
	}
	c.rep.Marked = len(marked)
	c.blobs = map[digest.Digest]bool{}
	var total int64
	for d, b := range c.stored {
		total += b.size
		switch {
		case marked[d]:
		case touched[d]:
			c.rep.SparedByJournal++
		case !b.modTime.Before(c.cutoff):
			c.rep.SparedByWindow++
		default:
			c.blobs[d] = true
			c.rep.Blobs = append(c.rep.Blobs, Blob{Digest: d, Size: b.size})
			c.rep.Bytes += b.size
		}
	}
	sort.Slice(c.rep.Blobs, func(i, j int) bool { return c.rep.Blobs[i].Digest < c.rep.Blobs[j].Digest })
	sort.Slice(c.untagged, func(i, j int) bool {
		if c.untagged[i].Repository != c.untagged[j].Repository {
			return c.untagged[i].Repository < c.untagged[j].Repository
		}
		return c.untagged[i].Digest < c.untagged[j].Digest
	})
	sort.Slice(c.rep.RemovedTags, func(i, j int) bool {
		a, b := c.rep.RemovedTags[i], c.rep.RemovedTags[j]
		return a.Repository < b.Repository || (a.Repository == b.Repository && a.Tag < b.Tag)
	})
	c.rep.Untagged = c.untagged
	c.rep.StorageBytes = total - c.rep.Bytes
}

// sweep deletes what decide chose: tags first, then manifests, blobs, and the repository links to deleted blobs.
func (c *collection) sweep(ctx context.Context) []error {
	var errs []error
	v := storage.NewVacuum(ctx, c.driver)
	c.deleted = Deleted{Links: map[string][]digest.Digest{}}
	byName := map[string]*repo{}
	for _, r := range c.repos {
		byName[r.name] = r
	}
	for _, t := range c.rep.RemovedTags {
		// The tag may have moved since the scan (a push that was not journaled cannot exist: the fence is on).
		cur, err := c.s.readLink(ctx, storagelayout.TagCurrentLink(t.Repository, t.Tag))
		if isNotFound(err) || (err == nil && cur != t.Digest) {
			continue
		}
		if err == nil {
			err = c.driver.Delete(ctx, storagelayout.TagDir(t.Repository, t.Tag))
		}
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing tag %s:%s: %w", t.Repository, t.Tag, err))
		}
	}
	for _, m := range c.untagged {
		r := byName[m.Repository]
		tags := make([]string, 0, len(r.tags))
		for t := range r.tags {
			tags = append(tags, t)
		}
		if err := v.RemoveManifest(m.Repository, m.Digest, tags); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing manifest %s@%s: %w", m.Repository, m.Digest, err))
			continue
		}
		c.deleted.Links[m.Repository] = append(c.deleted.Links[m.Repository], m.Digest)
		for _, a := range r.revs[m.Digest].aliases {
			if err := c.driver.Delete(ctx, path.Dir(storagelayout.RevisionLink(m.Repository, a))); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("removing manifest alias %s@%s: %w", m.Repository, a, err))
			}
		}
		if mf := c.s.manifests[m.Digest]; mf != nil && mf.subject != "" {
			for _, addr := range append([]digest.Digest{m.Digest}, r.revs[m.Digest].aliases...) {
				if err := c.driver.Delete(ctx, storagelayout.Edge(m.Repository, mf.subject, addr)); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("removing referrer %s of %s in %s: %w", addr, mf.subject, m.Repository, err))
				}
			}
		}
	}
	for _, b := range c.rep.Blobs {
		if err := v.RemoveBlob(b.Digest.String()); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing blob %s: %w", b.Digest, err))
			continue
		}
		c.deleted.Blobs = append(c.deleted.Blobs, b.Digest)
	}
	for _, r := range c.repos {
		for addr, canonical := range r.layers {
			if !c.blobs[canonical] {
				continue
			}
			if err := c.driver.Delete(ctx, path.Dir(storagelayout.LayerLink(r.name, addr))); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("removing layer link %s@%s: %w", r.name, addr, err))
				continue
			}
			c.rep.Links++
			c.deleted.Links[r.name] = append(c.deleted.Links[r.name], addr)
		}
	}
	return errs
}

// purgeUploads removes (or, in a dry run, counts) the uploads started before the upload age, as serve's purger does.
func (c *collection) purgeUploads(ctx context.Context) error {
	if c.o.UploadAge <= 0 || len(c.repos) == 0 {
		return nil
	}
	deleted, errs := storage.PurgeUploads(ctx, c.driver, c.o.Now().Add(-c.o.UploadAge), !c.o.DryRun)
	c.rep.Uploads = len(deleted)
	// An upload that finished (or was purged by serve) between the walk and the read is gone: not an error.
	errs = slices.DeleteFunc(errs, isNotFound)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("purging abandoned uploads: %w", err)
	}
	return nil
}

func logRun(o Options, rep Report, err error) {
	attrs := []any{"dry_run", rep.DryRun, "repositories", rep.Repositories, "manifests", rep.Manifests,
		"marked", rep.Marked, "blobs_removed", len(rep.Blobs), "bytes_removed", rep.Bytes,
		"untagged_removed", len(rep.Untagged), "tags_removed", len(rep.RemovedTags), "uploads_removed", rep.Uploads,
		"spared_window", rep.SparedByWindow, "spared_journal", rep.SparedByJournal, "storage_bytes", rep.StorageBytes,
		"fenced", rep.Fenced.Round(time.Millisecond).String(), "took", rep.Took.Round(time.Millisecond).String()}
	if len(rep.Damaged) > 0 {
		attrs = append(attrs, "damaged", len(rep.Damaged))
	}
	if err != nil {
		o.Logger.Error("garbage collection failed", append(attrs, "err", err)...)
		return
	}
	o.Logger.Info("garbage collection finished", attrs...)
}
