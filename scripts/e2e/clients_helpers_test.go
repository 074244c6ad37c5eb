//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// srcTag is the tag the source image carries in its OCI layout.
const srcTag = "v1"

// srcImage is a small multi-layer image (random, incompressible layers) that every client pushes, written in the
// formats the clients read: an OCI layout, an OCI archive (tar of that layout) and a `docker save` tarball.
type srcImage struct {
	Layout     string // OCI image layout; the image is tagged srcTag (org.opencontainers.image.ref.name)
	OCIArchive string // the layout as a tar, for `ctr images import`
	DockerTar  string // for `docker load`, tagged dockerSrcRef
	Digest     v1.Hash
	Config     v1.Hash
	Layers     []v1.Hash // compressed layer digests
	DiffIDs    []v1.Hash
}

const dockerSrcRef = "e2e.local/src:" + srcTag

// newSrcImage builds an OCI image of n gzip layers, each holding one file of size random bytes.
func newSrcImage(t *testing.T, n, size int) *srcImage {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i := range n {
		data := make([]byte, size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		tb := tarOf(t, fmt.Sprintf("layer%d/data.bin", i), data)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatalf("making layer %d: %v", i, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatalf("appending layer %d: %v", i, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cf.Config.Cmd = []string{"/layer0/data.bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}

	// Podman names an image pulled from oci:DIR after DIR, which must then be lower case (t.TempDir is not).
	dir, err := os.MkdirTemp("", "rk-e2e-src-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &srcImage{
		Layout:     filepath.Join(dir, "layout"),
		OCIArchive: filepath.Join(dir, "oci.tar"),
		DockerTar:  filepath.Join(dir, "docker.tar"),
	}
	p, err := layout.Write(s.Layout, empty.Index)
	if err != nil {
		t.Fatalf("writing OCI layout: %v", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": srcTag})); err != nil {
		t.Fatalf("writing image to OCI layout: %v", err)
	}
	tag, err := name.NewTag(dockerSrcRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(s.DockerTar, tag, img); err != nil {
		t.Fatalf("writing docker tarball: %v", err)
	}
	if err := tarDir(s.Layout, s.OCIArchive); err != nil {
		t.Fatalf("writing OCI archive: %v", err)
	}
	s.Digest, s.Config, s.Layers, s.DiffIDs = describe(t, img)
	return s
}

// describe returns an image's manifest digest, config digest, layer digests and diff IDs.
func describe(t *testing.T, img v1.Image) (digest, config v1.Hash, layers, diffIDs []v1.Hash) {
	t.Helper()
	var err error
	if digest, err = img.Digest(); err != nil {
		t.Fatalf("image digest: %v", err)
	}
	if config, err = img.ConfigName(); err != nil {
		t.Fatalf("image config digest: %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatalf("image manifest: %v", err)
	}
	for _, l := range m.Layers {
		layers = append(layers, l.Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("image config: %v", err)
	}
	return digest, config, layers, cf.RootFS.DiffIDs
}

func tarOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := filepath.Dir(name)
	hdrs := []*tar.Header{
		{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)},
		{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarDir writes the files under dir into a tar archive at out, with paths relative to dir.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// registryView reads the registry under test directly (go-containerregistry), to check what a client pushed.
type registryView struct {
	addr string
	auth authn.Authenticator
}

func (r registryView) ref(t *testing.T, repoRef string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.addr+"/"+repoRef, name.Insecure)
	if err != nil {
		t.Fatalf("parsing reference %q: %v", repoRef, err)
	}
	return ref
}

// image fetches repoRef and validates every blob's digest and size (which downloads them all).
func (r registryView) image(t *testing.T, repoRef string) v1.Image {
	t.Helper()
	img, err := remote.Image(r.ref(t, repoRef), remote.WithAuth(r.auth))
	if err != nil {
		t.Fatalf("reading %s from the registry: %v", repoRef, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("image %s in the registry does not validate: %v", repoRef, err)
	}
	return img
}

// checkPushed verifies that repoRef in the registry holds the source image's content: same diff IDs (uncompressed
// layers), and, when exact is set (clients that copy bytes verbatim), the very same manifest digest. It returns the
// manifest digest in the registry.
func (r registryView) checkPushed(t *testing.T, repoRef string, src *srcImage, exact bool) v1.Hash {
	t.Helper()
	digest, config, layers, diffIDs := describe(t, r.image(t, repoRef))
	if diff := cmp.Diff(hashStrings(src.DiffIDs), hashStrings(diffIDs)); diff != "" {
		t.Errorf("%s: layer diff IDs in the registry differ from the pushed image (-pushed +registry):\n%s", repoRef, diff)
	}
	if exact {
		if digest != src.Digest {
			t.Errorf("%s: manifest digest in the registry is %s, pushed %s", repoRef, digest, src.Digest)
		}
		if config != src.Config {
			t.Errorf("%s: config digest in the registry is %s, pushed %s", repoRef, config, src.Config)
		}
		if diff := cmp.Diff(hashStrings(src.Layers), hashStrings(layers)); diff != "" {
			t.Errorf("%s: layer digests differ (-pushed +registry):\n%s", repoRef, diff)
		}
	}
	return digest
}

// checkLayout verifies that an OCI layout written by a client's pull holds, under tag, a valid image with the
// registry's manifest digest.
func checkLayout(t *testing.T, dir, tag string, want v1.Hash) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading pulled OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("reading pulled OCI layout index: %v", err)
	}
	var got []string
	for _, d := range im.Manifests {
		if tag != "" && d.Annotations["org.opencontainers.image.ref.name"] != tag && len(im.Manifests) > 1 {
			continue
		}
		got = append(got, d.Digest.String())
		if d.Digest != want {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatalf("reading pulled image: %v", err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("pulled image does not validate: %v", err)
		}
		return
	}
	t.Errorf("pulled OCI layout holds manifests %v, want %s", got, want)
}

func hashStrings(hs []v1.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// configDigest returns the config digest of repoRef in the registry.
func configDigest(t *testing.T, e *clientEnv, repoRef string) v1.Hash {
	t.Helper()
	_, config, _, _ := describe(t, e.view.image(t, repoRef))
	return config
}

// checkManifestBytes checks that repoRef's manifest in the registry is exactly want, and returns its digest.
func (r registryView) checkManifestBytes(t *testing.T, repoRef string, want []byte) v1.Hash {
	t.Helper()
	d, err := remote.Get(r.ref(t, repoRef), remote.WithAuth(r.auth))
	if err != nil {
		t.Fatalf("reading %s from the registry: %v", repoRef, err)
	}
	if !bytes.Equal(d.Manifest, want) {
		t.Errorf("%s: manifest in the registry differs from the one the client pushed", repoRef)
	}
	return d.Digest
}

// checkBlobs fetches repoRef's manifest and every blob it names (config and layers, or each child manifest of an
// index), verifies each blob's digest, and returns the manifest digest.
func (r registryView) checkBlobs(t *testing.T, repoRef string) v1.Hash {
	t.Helper()
	ref := r.ref(t, repoRef)
	d, err := remote.Get(ref, remote.WithAuth(r.auth))
	if err != nil {
		t.Errorf("reading %s from the registry: %v", repoRef, err)
		return v1.Hash{}
	}
	if d.MediaType.IsIndex() {
		idx, err := d.ImageIndex()
		if err == nil {
			err = validate.Index(idx)
		}
		if err != nil {
			t.Errorf("%s: index does not validate: %v", repoRef, err)
		}
		return d.Digest
	}
	m, err := v1.ParseManifest(bytes.NewReader(d.Manifest))
	if err != nil {
		t.Errorf("%s: parsing manifest: %v", repoRef, err)
		return d.Digest
	}
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		l, err := remote.Layer(ref.Context().Digest(desc.Digest.String()), remote.WithAuth(r.auth))
		if err != nil {
			t.Errorf("%s: blob %s: %v", repoRef, desc.Digest, err)
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Errorf("%s: blob %s: %v", repoRef, desc.Digest, err)
			continue
		}
		h, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || h != desc.Digest || n != desc.Size {
			t.Errorf("%s: blob %s read back as %s (%d bytes, want %d): %v", repoRef, desc.Digest, h, n, desc.Size, err)
		}
	}
	return d.Digest
}

// layoutImage reads the source image back from its OCI layout.
func layoutImage(src *srcImage) (v1.Image, error) {
	p, err := layout.FromPath(src.Layout)
	if err != nil {
		return nil, err
	}
	return p.Image(src.Digest)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
