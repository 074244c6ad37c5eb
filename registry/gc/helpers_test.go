package gc_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/registry-kit/registry-kit/internal/registrytest"
	"github.com/registry-kit/registry-kit/registry"
)

const user, password = "admin", "gc-test-password"

// store is a real registry-kit serving a filesystem store the tests then collect.
type store struct {
	t    *testing.T
	host string
	dir  string
}

func newStore(t *testing.T) *store {
	t.Helper()
	srv := registrytest.Start(t, registrytest.Options{
		Users:     map[string]string{user: password},
		Configure: func(c *registry.Config) { c.DeleteEnabled = true },
	})
	return &store{t: t, host: srv.Host, dir: srv.DataDir}
}

func (s *store) driver() *filesystem.Driver {
	return filesystem.New(filesystem.DriverParameters{RootDirectory: s.dir, MaxThreads: 100})
}

func (s *store) ref(r string) name.Reference {
	s.t.Helper()
	ref, err := name.ParseReference(s.host+"/"+r, name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	return ref
}

func (s *store) opts() []remote.Option {
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: password})}
}

// image is a random image whose layers are extra (shared) plus n of its own.
func image(t *testing.T, n int, extra ...v1.Layer) v1.Image {
	t.Helper()
	img, err := random.Image(512, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		if img, err = mutate.AppendLayers(img, extra...); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func layer(t *testing.T) v1.Layer {
	t.Helper()
	l, err := random.Layer(700, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (s *store) push(ref string, img v1.Image) v1.Hash {
	s.t.Helper()
	if err := remote.Write(s.ref(ref), img, s.opts()...); err != nil {
		s.t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func (s *store) pushIndex(ref string, imgs ...v1.Image) v1.Hash {
	s.t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img})
	}
	if err := remote.WriteIndex(s.ref(ref), idx, s.opts()...); err != nil {
		s.t.Fatalf("pushing index %s: %v", ref, err)
	}
	d, _ := idx.Digest()
	return d
}

// pullAll pulls every given reference and verifies every digest and size.
func (s *store) pullAll(refs ...string) {
	s.t.Helper()
	for _, r := range refs {
		desc, err := remote.Get(s.ref(r), s.opts()...)
		if err != nil {
			s.t.Errorf("pulling %s: %v", r, err)
			continue
		}
		if desc.MediaType.IsIndex() {
			idx, err := desc.ImageIndex()
			if err == nil {
				err = validate.Index(idx)
			}
			if err != nil {
				s.t.Errorf("validating index %s: %v", r, err)
			}
			continue
		}
		img, err := desc.Image()
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			s.t.Errorf("validating %s: %v", r, err)
		}
	}
}

func (s *store) status(method, path string, body []byte, hdr ...string) (int, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.host+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// pushBlobSHA512 uploads data by its sha512 digest (registry/oci links it under both digests).
func (s *store) pushBlobSHA512(repo string, data []byte) string {
	s.t.Helper()
	sum := sha512.Sum512(data)
	d := "sha512:" + hex.EncodeToString(sum[:])
	code, hdr := s.status(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if code != http.StatusAccepted {
		s.t.Fatalf("starting upload: %d", code)
	}
	loc := hdr.Get("Location")
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d, bytes.NewReader(data))
	if req.URL.Host == "" {
		req, _ = http.NewRequest(http.MethodPut, "http://"+s.host+loc+sep+"digest="+d, bytes.NewReader(data))
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("finishing sha512 upload: %d", resp.StatusCode)
	}
	return d
}

func (s *store) putManifest(repo, ref, mediaType string, body []byte) {
	s.t.Helper()
	code, _ := s.status(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, body, "Content-Type", mediaType)
	if code != http.StatusCreated {
		s.t.Fatalf("putting manifest %s:%s: %d", repo, ref, code)
	}
}

func blobExists(t *testing.T, dir string, d fmt.Stringer) bool {
	t.Helper()
	h, err := v1.NewHash(d.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 10}).
		Stat(context.Background(), filepath.ToSlash(filepath.Join("/docker/registry/v2/blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")))
	return err == nil
}

// staticLayer is a layer of exactly these bytes (uncompressed: the digest is of data itself).
func staticLayer(data []byte) v1.Layer {
	return static.NewLayer(data, types.OCILayer)
}
