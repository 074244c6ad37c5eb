package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Annotations of the layout's index.json entry naming the image: the OCI tag (what skopeo and podman match) and
// containerd's full image name (what `ctr images import` and the kubelet see).
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// WriteLayout writes idx as an OCI image layout in dir, named ref (e.g. registry-kit:dev). dir must not exist, be
// empty, or hold an OCI layout (which is replaced): anything else is refused rather than overwritten.
func WriteLayout(dir string, idx v1.ImageIndex, ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("parsing image name %q: %w", ref, err)
	}
	anns := map[string]string{annotationContainerdName: named.String()}
	if t, ok := named.(reference.Tagged); ok {
		anns[annotationRefName] = t.Tag()
	}
	if err := clearLayout(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(anns)); err != nil {
		return fmt.Errorf("writing the image index to %s: %w", dir, err)
	}
	return nil
}

func clearLayout(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist), err == nil && len(ents) == 0:
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("%s is neither empty nor an OCI layout: refusing to overwrite it", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the old layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the image index the layout in dir names (the first, and only, entry WriteLayout wrote).
func ReadLayout(dir string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("OCI layout %s: want exactly one image index, found %d entries (write it with registry-kit image build)", dir, len(m.Manifests))
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading image index %s from %s: %w", m.Manifests[0].Digest, dir, err)
	}
	return idx, nil
}

// WriteArchive writes the OCI layout in dir as a tar archive at path (an "OCI archive": what `ctr images import`,
// `podman load`, `docker load` and skopeo's oci-archive: read). Entries are sorted and carry mtime, so the same
// layout gives the same bytes.
func WriteArchive(dir, path string, mtime time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing archive %s: %w", path, cerr)
		}
	}()
	tw := tar.NewWriter(f)
	// WalkDir visits entries in lexical order.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatUSTAR, Mode: 0o644, Typeflag: tar.TypeReg}
		if d.IsDir() {
			h.Name, h.Mode, h.Typeflag = h.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h.Size = fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("archiving OCI layout %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing archive %s: %w", path, err)
	}
	return nil
}

// PushOptions configure Push. The zero value uses the docker config credentials (DOCKER_CONFIG or
// ~/.docker/config.json, credential helpers included) and plain HTTP only to localhost and private addresses.
type PushOptions struct {
	Keychain authn.Keychain
	// Insecure allows plain HTTP (and unverified TLS fallbacks) to any registry.
	Insecure bool
}

// Push writes idx and every image and layer it references to ref, returning the index digest.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, o PushOptions) (v1.Hash, error) {
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing the index digest: %w", err)
	}
	return d, nil
}
