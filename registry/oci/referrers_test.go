package oci

import (
	"context"
	"errors"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

func TestParseManifest(t *testing.T) {
	subject := digest.FromString("subject")
	tests := []struct {
		name, body, contentType string
		want                    manifestFields
		wantErr                 error
	}{
		{
			name:        "image manifest with subject",
			body:        `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.example.sbom"},"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject.String() + `","size":7},"annotations":{"a":"b"}}`,
			contentType: ocispec.MediaTypeImageManifest,
			want: manifestFields{
				MediaType: ocispec.MediaTypeImageManifest,
				Config: &struct {
					MediaType string `json:"mediaType"`
				}{"application/vnd.example.sbom"},
				Subject:     &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 7},
				Annotations: map[string]string{"a": "b"},
			},
		},
		{
			name:        "no mediaType in the body: the Content-Type",
			body:        `{"schemaVersion":2,"artifactType":"application/vnd.example.sig","manifests":[]}`,
			contentType: ocispec.MediaTypeImageIndex,
			want:        manifestFields{MediaType: ocispec.MediaTypeImageIndex, ArtifactType: "application/vnd.example.sig"},
		},
		{
			name:    "malformed subject digest",
			body:    `{"schemaVersion":2,"subject":{"digest":"sha256:xyz","size":1}}`,
			wantErr: errMalformedSubject,
		},
		{
			name:    "subject with an unknown algorithm",
			body:    `{"schemaVersion":2,"subject":{"digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}}`,
			wantErr: errMalformedSubject,
		},
		{
			name: "not JSON: no fields (distribution refuses it)",
			body: `{"schemaVersion":`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseManifest([]byte(tt.body), tt.contentType)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReferrerDescriptor(t *testing.T) {
	d := digest.FromString("referrer")
	cfg := &struct {
		MediaType string `json:"mediaType"`
	}{"application/vnd.example.config"}
	tests := []struct {
		name string
		m    manifestFields
		want string // artifactType
	}{
		{"artifactType wins", manifestFields{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sig", Config: cfg}, "application/vnd.example.sig"},
		{"image manifest without artifactType: the config media type", manifestFields{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}, "application/vnd.example.config"},
		{"index without artifactType: none", manifestFields{MediaType: ocispec.MediaTypeImageIndex}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := referrerDescriptor(tt.m, d, 42)
			want := ocispec.Descriptor{MediaType: tt.m.MediaType, Digest: d, Size: 42, ArtifactType: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("descriptor (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterByArtifactType(t *testing.T) {
	sig := ocispec.Descriptor{Digest: digest.FromString("1"), ArtifactType: "application/vnd.example.sig"}
	sbom := ocispec.Descriptor{Digest: digest.FromString("2"), ArtifactType: "application/spdx+json"}
	none := ocispec.Descriptor{Digest: digest.FromString("3")}
	all := []ocispec.Descriptor{sig, sbom, none}
	tests := []struct {
		name  string
		types []string
		want  []ocispec.Descriptor
	}{
		{"no filter", nil, all},
		{"one type", []string{"application/spdx+json"}, []ocispec.Descriptor{sbom}},
		{"two types", []string{"application/spdx+json", "application/vnd.example.sig"}, []ocispec.Descriptor{sig, sbom}},
		{"no match: empty, not nil", []string{"application/x-none"}, []ocispec.Descriptor{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, filterByArtifactType(all, tt.types)); diff != "" {
				t.Errorf("filtered (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEdgesList stores edges through real storage drivers and lists them: sorted by digest whatever the write
// order, only referrers the repository still links, objects that are not edges ignored, and an empty list for an
// unknown subject.
func TestEdgesList(t *testing.T) {
	drivers := map[string]func(t *testing.T) storagedriver.StorageDriver{
		"inmemory": func(*testing.T) storagedriver.StorageDriver { return inmemory.New() },
		"filesystem": func(t *testing.T) storagedriver.StorageDriver {
			return filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
		},
	}
	for dname, newDriver := range drivers {
		t.Run(dname, func(t *testing.T) {
			ctx := context.Background()
			d := newDriver(t)
			e := edges{d}
			const repo = "team/app"
			subject := digest.FromString("subject")
			var descs []ocispec.Descriptor
			for _, s := range []string{"c", "a", "d", "b"} {
				desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 1, ArtifactType: "type/" + s}
				descs = append(descs, desc)
				if err := e.put(ctx, repo, subject, desc); err != nil {
					t.Fatal(err)
				}
				if s != "d" { // d's manifest was deleted behind the edge's back
					if err := d.PutContent(ctx, storagelayout.RevisionLink(repo, desc.Digest), []byte(desc.Digest.String())); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := d.PutContent(ctx, storagelayout.EdgeDir(repo, subject)+"/junk", []byte("not json")); err != nil {
				t.Fatal(err)
			}
			got, err := e.list(ctx, repo, subject)
			if err != nil {
				t.Fatal(err)
			}
			want := []ocispec.Descriptor{descs[0], descs[1], descs[3]}
			sortDescriptors(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("referrers (-want +got):\n%s", diff)
			}
			for i := 1; i < len(got); i++ {
				if got[i-1].Digest.String() >= got[i].Digest.String() {
					t.Errorf("not sorted by digest: %s before %s", got[i-1].Digest, got[i].Digest)
				}
			}

			if err := e.remove(ctx, repo, subject, descs[0].Digest); err != nil {
				t.Fatal(err)
			}
			if err := e.remove(ctx, repo, subject, descs[0].Digest); err != nil {
				t.Errorf("removing a missing edge: %v, want nil", err)
			}
			got, _ = e.list(ctx, repo, subject)
			if len(got) != 2 {
				t.Errorf("after removing one edge: %d referrers, want 2", len(got))
			}

			got, err = e.list(ctx, repo, digest.FromString("unknown"))
			if err != nil || got != nil {
				t.Errorf("unknown subject: %v, %v; want no referrers and no error", got, err)
			}
		})
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/a/b/referrers/sha256:1", route{"a/b", "referrers", "sha256:1"}, true},
		{"/v2/a/manifests/latest", route{"a", "manifests", "latest"}, true},
		{"/v2/blobs/blobs/sha256:1", route{"blobs", "blobs", "sha256:1"}, true},
		{"/v2/a/blobs/uploads/", route{}, false},
		{"/v2/a/blobs/uploads/123", route{}, false},
		{"/v2/a/tags/list", route{}, false},
		{"/v2/a/manifests/b/referrers/sha256:1", route{"a/manifests/b", "referrers", "sha256:1"}, true},
		{"/v2/referrers/sha256:1", route{}, false},
		{"/healthz", route{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := parseRoute(tt.path)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}
