package registry

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestMonolithicUpload pushes blobs with one POST carrying the content, as the spec allows, and checks the answers.
func TestMonolithicUpload(t *testing.T) {
	ts := startServer(t, testConfig(t))
	c := ociClient{t, ts}
	const repo = "team/mono"
	content := []byte("one request, whole blob")
	tests := []struct {
		name       string
		digest     digest.Digest
		header     http.Header
		wantStatus int
		wantCode   string
	}{
		{name: "sha256", digest: digest.FromBytes(content), wantStatus: http.StatusCreated},
		{name: "sha512", digest: sha512Of(content), wantStatus: http.StatusCreated},
		{name: "content not matching the digest", digest: digest.FromString("other"), wantStatus: http.StatusBadRequest, wantCode: "DIGEST_INVALID"},
		{name: "malformed digest", digest: "sha256:nothex", wantStatus: http.StatusBadRequest, wantCode: "DIGEST_INVALID"},
		{name: "wrong password", digest: digest.FromBytes(content), header: http.Header{"Authorization": {"Basic YWRtaW46d3Jvbmc="}}, wantStatus: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/octet-stream"}}
			for k, v := range tt.header {
				h[k] = v
			}
			resp, b := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+tt.digest.String(), h, content)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantCode) {
				t.Fatalf("POST with content: %s %s, want %d %s", resp.Status, b, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus != http.StatusCreated {
				return
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != tt.digest.String() {
				t.Errorf("Docker-Content-Digest %s, want %s", got, tt.digest)
			}
			loc := strings.TrimPrefix(resp.Header.Get("Location"), ts.url)
			if resp, b := c.do(http.MethodGet, loc, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, content) {
				t.Errorf("GET %s: %s, %q", loc, resp.Status, b)
			}
		})
	}
}
