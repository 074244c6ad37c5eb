package gc

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// repo is what the scan found in one repository, read straight from the storage driver.
type repo struct {
	name string
	tags map[string]tag
	// revs are the manifests linked into the repository, by canonical digest.
	revs map[digest.Digest]*revision
	// layers maps each layer link's address (sha256 or a sha512 alias) to the canonical digest it links.
	layers map[digest.Digest]digest.Digest
	// aliases maps each sha512 manifest address to its canonical digest.
	aliases map[digest.Digest]digest.Digest
}

type tag struct {
	addr    digest.Digest // as linked: the canonical digest or a sha512 alias
	modTime time.Time     // when it was last pushed (zero unless retention asked)
}

type revision struct {
	aliases []digest.Digest // sha512 revision links to the same content
	modTime time.Time       // newest of its links
}

// resolve maps a digest named in a manifest of r to the canonical digest distribution stores its content under.
func (r *repo) resolve(d digest.Digest) digest.Digest {
	if d.Algorithm() == digest.Canonical {
		return d
	}
	if c, ok := r.layers[d]; ok {
		return c
	}
	if c, ok := r.aliases[d]; ok {
		return c
	}
	return d
}

// scanner reads repositories and manifests. Manifests are parsed once per digest, whatever the repositories.
type scanner struct {
	driver    storagedriver.StorageDriver
	manifests map[digest.Digest]*manifestRefs
	damaged   []string
	// tagTimes says whether tag modification times are needed for the repository.
	tagTimes func(repo string) bool
}

func newScanner(d storagedriver.StorageDriver, tagTimes func(string) bool) *scanner {
	return &scanner{driver: d, manifests: map[digest.Digest]*manifestRefs{}, tagTimes: tagTimes}
}

// repositories lists every repository through distribution's catalog walk on a registry with no cache.
func (s *scanner) repositories(ctx context.Context) ([]string, error) {
	if _, err := s.driver.Stat(ctx, storagelayout.Repositories); isNotFound(err) {
		return nil, nil
	}
	reg, err := storage.NewRegistry(ctx, s.driver)
	if err != nil {
		return nil, fmt.Errorf("opening storage: %w", err)
	}
	var names []string
	err = reg.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
		names = append(names, name)
		return nil
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	return names, nil
}

func (s *scanner) scan(ctx context.Context, name string) (*repo, error) {
	r := &repo{name: name, tags: map[string]tag{}, revs: map[digest.Digest]*revision{}, layers: map[digest.Digest]digest.Digest{},
		aliases: map[digest.Digest]digest.Digest{}}
	err := s.walkLinks(ctx, storagelayout.RevisionsDir(name), func(addr, canonical digest.Digest, mod time.Time) {
		rev := r.revs[canonical]
		if rev == nil {
			rev = &revision{}
			r.revs[canonical] = rev
		}
		if addr != canonical {
			rev.aliases = append(rev.aliases, addr)
			r.aliases[addr] = canonical
		}
		if mod.After(rev.modTime) {
			rev.modTime = mod
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifests of %s: %w", name, err)
	}
	if err := s.walkLinks(ctx, storagelayout.LayersDir(name), func(addr, canonical digest.Digest, _ time.Time) {
		r.layers[addr] = canonical
	}); err != nil {
		return nil, fmt.Errorf("reading layer links of %s: %w", name, err)
	}
	if err := s.readTags(ctx, r); err != nil {
		return nil, err
	}
	for c := range r.revs {
		if err := s.readManifest(ctx, name, c); err != nil {
			return nil, err
		}
	}
	for _, t := range r.tags {
		if err := s.readManifest(ctx, name, r.resolve(t.addr)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// walkLinks calls fn for each ".../<alg>/<hex>/link" under dir. A sha256 link's content is its own address
// (distribution writes it so); other links are read to find the canonical digest they stand for.
func (s *scanner) walkLinks(ctx context.Context, dir string, fn func(addr, canonical digest.Digest, mod time.Time)) error {
	err := s.driver.Walk(ctx, dir, func(fi storagedriver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		addr, ok := linkAddr(fi.Path())
		if !ok {
			return nil
		}
		canonical := addr
		if addr.Algorithm() != digest.Canonical {
			c, err := s.readLink(ctx, fi.Path())
			if err != nil {
				if isNotFound(err) {
					return nil // deleted meanwhile
				}
				return err
			}
			canonical = c
		}
		fn(addr, canonical, fi.ModTime())
		return nil
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

func (s *scanner) readLink(ctx context.Context, p string) (digest.Digest, error) {
	b, err := s.driver.GetContent(ctx, p)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", p, err)
	}
	return d, nil
}

func (s *scanner) readTags(ctx context.Context, r *repo) error {
	dirs, err := s.driver.List(ctx, storagelayout.TagsDir(r.name))
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing tags of %s: %w", r.name, err)
	}
	times := s.tagTimes(r.name)
	for _, dir := range dirs {
		t := path.Base(dir)
		p := storagelayout.TagCurrentLink(r.name, t)
		d, err := s.readLink(ctx, p)
		if isNotFound(err) {
			continue // a tag directory without a current link: no tag
		}
		if err != nil {
			return fmt.Errorf("reading tag %s:%s: %w", r.name, t, err)
		}
		var mod time.Time
		if times {
			fi, err := s.driver.Stat(ctx, p)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("reading tag %s:%s: %w", r.name, t, err)
			}
			mod = fi.ModTime()
		}
		r.tags[t] = tag{addr: d, modTime: mod}
	}
	return nil
}

// readManifest parses the manifest stored under canonical digest c. A manifest whose data is missing is damage, noted
// and skipped (Fsck reports it); any other read error ends the collection, since its references would be unknown.
func (s *scanner) readManifest(ctx context.Context, repoName string, c digest.Digest) error {
	if _, ok := s.manifests[c]; ok {
		return nil
	}
	if c.Validate() != nil || c.Algorithm() != digest.Canonical {
		s.damaged = append(s.damaged, fmt.Sprintf("%s@%s: not a stored digest", repoName, c))
		s.manifests[c] = nil
		return nil
	}
	body, err := s.driver.GetContent(ctx, storagelayout.BlobData(c))
	if isNotFound(err) {
		s.damaged = append(s.damaged, fmt.Sprintf("%s@%s: manifest data missing", repoName, c))
		s.manifests[c] = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading manifest %s@%s: %w", repoName, c, err)
	}
	m, err := parseManifest(body)
	if err != nil {
		return fmt.Errorf("manifest %s@%s: %w (run fsck)", repoName, c, err)
	}
	s.manifests[c] = &m
	return nil
}

// storedBlob is a blob data file found by walking the blob store.
type storedBlob struct {
	size    int64
	modTime time.Time
}

// blobs walks the blob store.
func (s *scanner) blobs(ctx context.Context) (map[digest.Digest]storedBlob, error) {
	out := map[digest.Digest]storedBlob{}
	err := s.driver.Walk(ctx, storagelayout.Blobs, func(fi storagedriver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		if d, ok := blobAddr(fi.Path()); ok {
			out[d] = storedBlob{size: fi.Size(), modTime: fi.ModTime()}
		}
		return nil
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	return out, nil
}

func isNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf) || errors.Is(err, distribution.ErrBlobUnknown)
}
