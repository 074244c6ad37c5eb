package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// manifestFields are the parts of an image manifest or index the referrers API needs.
type manifestFields struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject     *ocispec.Descriptor `json:"subject"`
	Annotations map[string]string   `json:"annotations"`
}

// errMalformedSubject marks a manifest whose subject cannot be an edge.
var errMalformedSubject = errors.New("malformed subject")

// parseManifest reads the referrer-relevant fields of a manifest. contentType is the request's Content-Type, used
// when the manifest carries no mediaType. A manifest that is not JSON yields no fields (distribution rejects it).
func parseManifest(body []byte, contentType string) (manifestFields, error) {
	var m manifestFields
	if err := json.Unmarshal(body, &m); err != nil {
		return manifestFields{}, nil
	}
	if m.MediaType == "" {
		m.MediaType = contentType
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return manifestFields{}, fmt.Errorf("%w: digest %q: %w", errMalformedSubject, m.Subject.Digest, err)
		}
	}
	return m, nil
}

// referrerDescriptor is the entry a manifest gets in its subject's referrers index. As the spec says, an image
// manifest without artifactType is listed with its config's media type.
func referrerDescriptor(m manifestFields, d digest.Digest, size int64) ocispec.Descriptor {
	at := m.ArtifactType
	if at == "" && m.Config != nil && m.MediaType == ocispec.MediaTypeImageManifest {
		at = m.Config.MediaType
	}
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: size, ArtifactType: at, Annotations: m.Annotations}
}

// edges stores referrer edges through a storage driver.
type edges struct{ driver storagedriver.StorageDriver }

// put records that desc refers to subject in repository name. The object is written whole and never rewritten with
// other content, so concurrent writers (replicas, retries) cannot lose an edge.
func (e edges) put(ctx context.Context, name string, subject digest.Digest, desc ocispec.Descriptor) error {
	b, err := json.Marshal(desc)
	if err != nil {
		return fmt.Errorf("encoding referrer %s: %w", desc.Digest, err)
	}
	if err := e.driver.PutContent(ctx, storagelayout.Edge(name, subject, desc.Digest), b); err != nil {
		return fmt.Errorf("storing referrer %s of %s in %s: %w", desc.Digest, subject, name, err)
	}
	return nil
}

// remove deletes the edge from subject to referrer; a missing edge is not an error.
func (e edges) remove(ctx context.Context, name string, subject, referrer digest.Digest) error {
	err := e.driver.Delete(ctx, storagelayout.Edge(name, subject, referrer))
	if err != nil && !errors.As(err, new(storagedriver.PathNotFoundError)) {
		return fmt.Errorf("removing referrer %s of %s in %s: %w", referrer, subject, name, err)
	}
	return nil
}

// list returns the referrers of subject in repository name whose manifests still exist there, sorted by digest.
func (e edges) list(ctx context.Context, name string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	paths, err := e.driver.List(ctx, storagelayout.EdgeDir(name, subject))
	if err != nil {
		if errors.As(err, new(storagedriver.PathNotFoundError)) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, name, err)
	}
	var out []ocispec.Descriptor
	for _, p := range paths {
		b, err := e.driver.GetContent(ctx, p)
		if err != nil {
			if errors.As(err, new(storagedriver.PathNotFoundError)) {
				continue // removed since the listing
			}
			return nil, fmt.Errorf("reading referrer edge %s: %w", path.Base(p), err)
		}
		var d ocispec.Descriptor
		if err := json.Unmarshal(b, &d); err != nil || d.Digest.Validate() != nil {
			continue // not an edge this package wrote
		}
		// A manifest deleted by another path (garbage collection, a crash between delete and edge removal) leaves
		// its edge behind: only manifests the repository still links are referrers.
		if _, err := e.driver.Stat(ctx, storagelayout.RevisionLink(name, d.Digest)); err != nil {
			if errors.As(err, new(storagedriver.PathNotFoundError)) {
				continue
			}
			return nil, fmt.Errorf("checking referrer %s in %s: %w", d.Digest, name, err)
		}
		out = append(out, d)
	}
	sortDescriptors(out)
	return out, nil
}

func sortDescriptors(ds []ocispec.Descriptor) {
	slices.SortFunc(ds, func(a, b ocispec.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
}

// filterByArtifactType keeps the descriptors whose artifactType is one of types; no types keeps all.
func filterByArtifactType(ds []ocispec.Descriptor, types []string) []ocispec.Descriptor {
	if len(types) == 0 {
		return ds
	}
	out := []ocispec.Descriptor{}
	for _, d := range ds {
		if slices.Contains(types, d.ArtifactType) {
			out = append(out, d)
		}
	}
	return out
}

// referrersIndex is the body of a referrers response: an image index whose manifests are never null.
func referrersIndex(ds []ocispec.Descriptor) ocispec.Index {
	if ds == nil {
		ds = []ocispec.Descriptor{}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	idx.SchemaVersion = 2
	return idx
}
