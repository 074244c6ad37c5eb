package registry

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociClient speaks the distribution API to a test server as the admin user.
type ociClient struct {
	t  *testing.T
	ts *testServer
}

func (c ociClient) do(method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.ts.url+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.ts.password != "" && req.Header.Get("Authorization") == "" {
		req.SetBasicAuth(AdminUser, c.ts.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// pushBlob uploads content (POST then PUT) under the digest d, which may be sha256 or sha512.
func (c ociClient) pushBlob(repo string, content []byte, d digest.Digest) *http.Response {
	c.t.Helper()
	resp, _ := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("starting upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	loc = strings.TrimPrefix(loc, c.ts.url)
	resp, b := c.do(http.MethodPut, loc+sep+"digest="+d.String(), http.Header{"Content-Type": {"application/octet-stream"}}, content)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("finishing upload of %s: %s %s", d, resp.Status, b)
	}
	return resp
}

func (c ociClient) putManifest(repo, ref string, m []byte, mediaType string) (*http.Response, []byte) {
	c.t.Helper()
	return c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mediaType}}, m)
}

func (c ociClient) referrers(repo string, subject digest.Digest, query string) (*http.Response, ocispec.Index) {
	c.t.Helper()
	resp, b := c.do(http.MethodGet, "/v2/"+repo+"/referrers/"+subject.String()+query, nil, nil)
	var idx ocispec.Index
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &idx); err != nil {
			c.t.Fatalf("referrers body %q: %v", b, err)
		}
	}
	return resp, idx
}

var emptyJSON = []byte("{}")

// artifact is an image manifest with the empty config, one layer, and the given artifactType, subject and annotations.
func artifact(t *testing.T, c ociClient, repo, artifactType, configType string, subject *ocispec.Descriptor, annotations map[string]string) ([]byte, ocispec.Descriptor) {
	t.Helper()
	layer := []byte("layer of " + artifactType + configType + fmt.Sprint(annotations))
	c.pushBlob(repo, layer, digest.FromBytes(layer))
	c.pushBlob(repo, emptyJSON, digest.FromBytes(emptyJSON))
	if configType == "" {
		configType = ocispec.MediaTypeEmptyJSON
	}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.Descriptor{MediaType: configType, Digest: digest.FromBytes(emptyJSON), Size: 2},
		Layers:       []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
		Subject:      subject,
		Annotations:  annotations,
	}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	wantType := artifactType
	if wantType == "" {
		wantType = configType
	}
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)),
		ArtifactType: wantType, Annotations: annotations}
}

// TestReferrersAPI drives the referrers API of a real server: a referrer pushed before its subject, one pushed by
// tag, OCI-Subject on PUT, filtering, authorization, malformed input, and deletes of a referrer and of the subject.
func TestReferrersAPI(t *testing.T) {
	cfg := testConfig(t)
	cfg.DeleteEnabled = true
	ts := startServer(t, cfg)
	c := ociClient{t, ts}
	const repo = "team/app"

	subjectBody, subjectDesc := artifact(t, c, repo, "", ocispec.MediaTypeImageConfig, nil, nil)
	subject := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subjectDesc.Digest, Size: subjectDesc.Size}

	// The signature comes first, while its subject does not exist yet.
	sigBody, sig := artifact(t, c, repo, "application/vnd.example.signature", "", subject, map[string]string{"org.example.signed-by": "ci"})
	resp, b := c.putManifest(repo, sig.Digest.String(), sigBody, ocispec.MediaTypeImageManifest)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != subject.Digest.String() {
		t.Fatalf("PUT referrer before its subject: %s, OCI-Subject %q; want 201 and %s (%s)", resp.Status, resp.Header.Get("OCI-Subject"), subject.Digest, b)
	}
	if resp, _ := c.putManifest(repo, "1", subjectBody, ocispec.MediaTypeImageManifest); resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != "" {
		t.Fatalf("PUT subject: %s, OCI-Subject %q; want 201 and none", resp.Status, resp.Header.Get("OCI-Subject"))
	}
	// The SBOM is an image manifest without artifactType, pushed by tag: listed with its config media type.
	sbomBody, sbom := artifact(t, c, repo, "", "application/spdx+json", subject, map[string]string{"org.example.kind": "sbom"})
	if resp, _ := c.putManifest(repo, "sbom", sbomBody, ocispec.MediaTypeImageManifest); resp.Header.Get("OCI-Subject") != subject.Digest.String() {
		t.Fatalf("PUT referrer by tag: %s, OCI-Subject %q", resp.Status, resp.Header.Get("OCI-Subject"))
	}
	both := []ocispec.Descriptor{sig, sbom}
	if sig.Digest.String() > sbom.Digest.String() {
		both = []ocispec.Descriptor{sbom, sig}
	}

	tests := []struct {
		name        string
		subject     digest.Digest
		query       string
		want        []ocispec.Descriptor
		wantFilters string
	}{
		{name: "all referrers, by digest", subject: subject.Digest, want: both},
		{name: "filtered by artifactType", subject: subject.Digest, query: "?artifactType=application/vnd.example.signature", want: []ocispec.Descriptor{sig}, wantFilters: "artifactType"},
		{name: "filtered by the config media type", subject: subject.Digest, query: "?artifactType=application/spdx%2Bjson", want: []ocispec.Descriptor{sbom}, wantFilters: "artifactType"},
		{name: "filter matching nothing", subject: subject.Digest, query: "?artifactType=application/x-none", want: []ocispec.Descriptor{}, wantFilters: "artifactType"},
		{name: "unknown subject: empty index", subject: digest.FromString("unknown"), want: []ocispec.Descriptor{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, idx := c.referrers(repo, tt.subject, tt.query)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
				t.Fatalf("status %s, Content-Type %q; want 200 and %s", resp.Status, resp.Header.Get("Content-Type"), ocispec.MediaTypeImageIndex)
			}
			if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex {
				t.Errorf("index schemaVersion %d, mediaType %q", idx.SchemaVersion, idx.MediaType)
			}
			if diff := cmp.Diff(tt.want, idx.Manifests); diff != "" {
				t.Errorf("referrers (-want +got):\n%s", diff)
			}
			if got := resp.Header.Get("OCI-Filters-Applied"); got != tt.wantFilters {
				t.Errorf("OCI-Filters-Applied %q, want %q", got, tt.wantFilters)
			}
		})
	}

	t.Run("go-containerregistry's client finds both", func(t *testing.T) {
		ref, err := name.NewDigest(strings.TrimPrefix(ts.url, "http://")+"/"+repo+"@"+subject.Digest.String(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(ref, remote.WithAuth(ts.auth()))
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 2 {
			t.Errorf("go-containerregistry lists %d referrers, want 2", len(im.Manifests))
		}
	})

	t.Run("refused input and callers", func(t *testing.T) {
		for _, tt := range []struct {
			name, method, path string
			header             http.Header
			body               []byte
			wantStatus         int
			wantCode           string
		}{
			{"anonymous", http.MethodGet, "/v2/" + repo + "/referrers/" + subject.Digest.String(), http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, nil, http.StatusUnauthorized, "UNAUTHORIZED"},
			{"malformed subject in the path", http.MethodGet, "/v2/" + repo + "/referrers/sha256:xyz", nil, nil, http.StatusBadRequest, "DIGEST_INVALID"},
			{"invalid repository name", http.MethodGet, "/v2/Team/referrers/" + subject.Digest.String(), nil, nil, http.StatusBadRequest, "NAME_INVALID"},
			{"manifest with a malformed subject", http.MethodPut, "/v2/" + repo + "/manifests/bad",
				http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}},
				[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + digest.FromBytes(emptyJSON).String() + `","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:nothex","size":1}}`),
				http.StatusBadRequest, "DIGEST_INVALID"}, // the malformed-digest guard answers first, naming the digest
		} {
			t.Run(tt.name, func(t *testing.T) {
				resp, b := c.do(tt.method, tt.path, tt.header, tt.body)
				if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), `"code":"`+tt.wantCode+`"`) {
					t.Errorf("%s %s: %s %s; want %d %s", tt.method, tt.path, resp.Status, b, tt.wantStatus, tt.wantCode)
				}
				if tt.wantStatus == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without a WWW-Authenticate challenge")
				}
			})
		}
	})

	// Deleting a referrer takes it out of the index; deleting the subject leaves its referrers listed and pullable.
	if resp, _ := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+sig.Digest.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE referrer: %s", resp.Status)
	}
	if _, idx := c.referrers(repo, subject.Digest, ""); !cmp.Equal(idx.Manifests, []ocispec.Descriptor{sbom}) {
		t.Errorf("after deleting the signature: referrers %v, want only the SBOM", idx.Manifests)
	}
	if resp, _ := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+subject.Digest.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE subject: %s", resp.Status)
	}
	if _, idx := c.referrers(repo, subject.Digest, ""); !cmp.Equal(idx.Manifests, []ocispec.Descriptor{sbom}) {
		t.Errorf("after deleting the subject: referrers %v, want the SBOM", idx.Manifests)
	}
	if resp, _ := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+sbom.Digest.String(), http.Header{"Accept": {ocispec.MediaTypeImageManifest}}, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET the SBOM after its subject was deleted: %s, want 200", resp.Status)
	}
	if strings.Contains(ts.logs.String(), ts.password) {
		t.Error("the admin password appears in the logs")
	}
}

func sha512Of(b []byte) digest.Digest {
	sum := sha512.Sum512(b)
	return digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
}

// TestSHA512 pushes and pulls a blob and a manifest addressed by sha512, with tag parameters, and checks every
// response names the sha512 digest.
func TestSHA512(t *testing.T) {
	cfg := testConfig(t)
	cfg.DeleteEnabled = true
	ts := startServer(t, cfg)
	c := ociClient{t, ts}
	const repo = "sha512/app"

	layer := []byte("a layer addressed by sha512")
	layerDigest := sha512Of(layer)
	resp := c.pushBlob(repo, layer, layerDigest)
	if got := resp.Header.Get("Docker-Content-Digest"); got != layerDigest.String() {
		t.Errorf("upload answered Docker-Content-Digest %s, want %s", got, layerDigest)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/blobs/"+layerDigest.String()) {
		t.Errorf("upload answered Location %s, want the sha512 address", loc)
	}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		resp, b := c.do(method, "/v2/"+repo+"/blobs/"+layerDigest.String(), nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != layerDigest.String() {
			t.Errorf("%s blob by sha512: %s, Docker-Content-Digest %s", method, resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
		if method == http.MethodGet && !bytes.Equal(b, layer) {
			t.Errorf("GET blob by sha512 returned %q", b)
		}
	}
	c.pushBlob(repo, emptyJSON, sha512Of(emptyJSON))

	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` +
		sha512Of(emptyJSON).String() + `","size":2},"layers":[{"mediaType":"application/octet-stream","digest":"` + layerDigest.String() + `","size":` + fmt.Sprint(len(layer)) + `}]}`)
	md := sha512Of(m)
	if resp, b := c.putManifest(repo, sha512Of(append(m, ' ')).String(), m, ocispec.MediaTypeImageManifest); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "DIGEST_INVALID") {
		t.Errorf("PUT manifest under a wrong sha512: %s %s, want 400 DIGEST_INVALID", resp.Status, b)
	}
	if resp, b := c.putManifest(repo, md.String()+"?tag=bad:tag", m, ocispec.MediaTypeImageManifest); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "TAG_INVALID") {
		t.Errorf("PUT manifest with an invalid tag parameter: %s %s, want 400 TAG_INVALID", resp.Status, b)
	}
	resp, b := c.putManifest(repo, md.String()+"?tag=v1&tag=latest", m, ocispec.MediaTypeImageManifest)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest by sha512: %s %s", resp.Status, b)
	}
	if diff := cmp.Diff([]string{md.String(), "v1,latest"}, []string{resp.Header.Get("Docker-Content-Digest"), strings.Join(resp.Header.Values("OCI-Tag"), ",")}); diff != "" {
		t.Errorf("PUT answered (-want +got):\n%s", diff)
	}
	for _, ref := range []string{md.String(), "v1", "latest"} {
		resp, b := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {ocispec.MediaTypeImageManifest}}, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != md.String() || !bytes.Equal(b, m) {
			t.Errorf("GET manifest %s: %s, Docker-Content-Digest %s", ref, resp.Status, resp.Header.Get("Docker-Content-Digest"))
		}
	}
	// One manifest, two addresses: deleting it by either deletes it by both, tags included.
	canonical := digest.FromBytes(m)
	for _, del := range []struct{ by, other digest.Digest }{{md, canonical}, {canonical, md}} {
		if resp, b := c.putManifest(repo, md.String()+"?tag=v1", m, ocispec.MediaTypeImageManifest); resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT manifest by sha512: %s %s", resp.Status, b)
		}
		if resp, _ := c.do(http.MethodDelete, "/v2/"+repo+"/manifests/"+del.by.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE manifest by %s: %s", del.by.Algorithm(), resp.Status)
		}
		for _, ref := range []string{del.by.String(), del.other.String(), "v1"} {
			if resp, _ := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {ocispec.MediaTypeImageManifest}}, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET manifest %s after deleting it by %s: %s, want 404", ref, del.by.Algorithm(), resp.Status)
			}
		}
	}
}
