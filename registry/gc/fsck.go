package gc

import (
	"context"
	"fmt"
	"io"
	"sort"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// FsckOptions say how deep Fsck looks.
type FsckOptions struct {
	// SkipDigests checks that blobs exist with the right size without reading them to verify their digests.
	SkipDigests bool
}

// Damage is one problem Fsck found.
type Damage struct {
	Repository string
	Reference  string // tag or digest
	Problem    string
}

func (d Damage) String() string {
	return fmt.Sprintf("%s %s: %s", d.Repository, d.Reference, d.Problem)
}

// FsckReport says what Fsck checked and found.
type FsckReport struct {
	Repositories, Tags, Manifests, Blobs int
	Damage                               []Damage
}

// Fsck checks, changing nothing, that every tag resolves to a manifest linked in its repository, and that every
// blob and child manifest a linked manifest references is there, linked in the repository, with the size its
// descriptor says and (unless SkipDigests) content matching its digest.
func Fsck(ctx context.Context, driver storagedriver.StorageDriver, o FsckOptions) (FsckReport, error) {
	s := newScanner(driver, func(string) bool { return false })
	names, err := s.repositories(ctx)
	if err != nil {
		return FsckReport{}, err
	}
	f := &fsck{ctx: ctx, driver: driver, o: o, verified: map[digest.Digest]string{}}
	for _, name := range names {
		r, err := s.scan(ctx, name)
		if err != nil {
			return f.rep, err
		}
		f.rep.Repositories++
		f.checkRepo(r, s.manifests)
	}
	for _, d := range s.damaged {
		f.rep.Damage = append(f.rep.Damage, Damage{Problem: d})
	}
	sort.Slice(f.rep.Damage, func(i, j int) bool { return f.rep.Damage[i].String() < f.rep.Damage[j].String() })
	return f.rep, nil
}

type fsck struct {
	ctx    context.Context
	driver storagedriver.StorageDriver
	o      FsckOptions
	rep    FsckReport
	// verified caches each blob's verdict ("" when sound) across repositories.
	verified map[digest.Digest]string
}

func (f *fsck) damage(repo, ref, format string, a ...any) {
	f.rep.Damage = append(f.rep.Damage, Damage{Repository: repo, Reference: ref, Problem: fmt.Sprintf(format, a...)})
}

func (f *fsck) checkRepo(r *repo, manifests map[digest.Digest]*manifestRefs) {
	for t, tg := range r.tags {
		f.rep.Tags++
		c := r.resolve(tg.addr)
		if _, ok := r.revs[c]; !ok {
			f.damage(r.name, t, "tag points to %s, which is not a manifest of the repository", tg.addr)
		}
	}
	for c := range r.revs {
		f.rep.Manifests++
		m := manifests[c]
		if m == nil {
			continue // the scanner reported it
		}
		if p := f.blob(c, c, -1); p != "" {
			f.damage(r.name, c.String(), "manifest %s", p)
		}
		for _, b := range m.blobs {
			f.checkRef(r, c, b, m.sizes[b], "blob", r.layers)
		}
		for _, ch := range m.children {
			if _, ok := r.revs[r.resolve(ch)]; !ok {
				f.damage(r.name, c.String(), "child manifest %s is not a manifest of the repository", ch)
				continue
			}
			if p := f.blob(r.resolve(ch), ch, m.sizes[ch]); p != "" {
				f.damage(r.name, c.String(), "child manifest %s: %s", ch, p)
			}
		}
	}
}

func (f *fsck) checkRef(r *repo, m, ref digest.Digest, size int64, kind string, links map[digest.Digest]digest.Digest) {
	if _, ok := links[ref]; !ok {
		f.damage(r.name, m.String(), "%s %s is not linked in the repository (pulls get BLOB_UNKNOWN)", kind, ref)
	}
	if p := f.blob(r.resolve(ref), ref, size); p != "" {
		f.damage(r.name, m.String(), "%s %s: %s", kind, ref, p)
	}
}

// blob checks the data stored under canonical: present, size (when size >= 0) and content matching both canonical and
// addr. It returns "" when sound.
func (f *fsck) blob(canonical, addr digest.Digest, size int64) string {
	key := canonical + "|" + addr
	if p, ok := f.verified[key]; ok && size < 0 {
		return p
	}
	fi, err := f.driver.Stat(f.ctx, storagelayout.BlobData(canonical))
	if err != nil {
		if isNotFound(err) {
			return "blob data missing"
		}
		return fmt.Sprintf("reading blob data: %v", err)
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Sprintf("blob data is %d bytes, descriptor says %d", fi.Size(), size)
	}
	if p, ok := f.verified[key]; ok {
		return p
	}
	f.rep.Blobs++
	p := ""
	if !f.o.SkipDigests {
		p = f.verify(canonical, addr)
	}
	f.verified[key] = p
	return p
}

func (f *fsck) verify(canonical, addr digest.Digest) string {
	rd, err := f.driver.Reader(f.ctx, storagelayout.BlobData(canonical), 0)
	if err != nil {
		return fmt.Sprintf("reading blob data: %v", err)
	}
	defer rd.Close()
	vs := []digest.Verifier{canonical.Verifier()}
	if addr != canonical && addr.Algorithm().Available() {
		vs = append(vs, addr.Verifier())
	}
	ws := make([]io.Writer, len(vs))
	for i, v := range vs {
		ws[i] = v
	}
	if _, err := io.Copy(io.MultiWriter(ws...), rd); err != nil {
		return fmt.Sprintf("reading blob data: %v", err)
	}
	for i, v := range vs {
		if !v.Verified() {
			d := canonical
			if i == 1 {
				d = addr
			}
			return fmt.Sprintf("content does not match digest %s", d)
		}
	}
	return ""
}
