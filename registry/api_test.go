package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCatalog: /v2/_catalog lists the pushed repositories, to go-containerregistry's client (which asks n=1000) and
// page by page with n, last and the Link header.
func TestCatalog(t *testing.T) {
	ts := startServer(t, testConfig(t))
	host := strings.TrimPrefix(ts.url, "http://")
	var want []string
	for _, repo := range []string{"alpha", "team/beta", "team/gamma", "delta", "epsilon"} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.NewTag(host+"/"+repo+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(ts.auth())); err != nil {
			t.Fatalf("pushing %s: %v", ref, err)
		}
		want = append(want, repo)
	}
	want = []string{"alpha", "delta", "epsilon", "team/beta", "team/gamma"} // lexical order

	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Catalog(context.Background(), reg, remote.WithAuth(ts.auth()))
	if err != nil {
		t.Fatalf("remote.Catalog: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("remote.Catalog (-want +got):\n%s", diff)
	}

	// Pages of two: each but the last has a Link to the next.
	var paged []string
	next := "/v2/_catalog?n=2"
	for pages := 0; next != ""; pages++ {
		if pages > len(want) {
			t.Fatal("the Link headers do not end")
		}
		req, _ := http.NewRequest(http.MethodGet, ts.url+next, nil)
		req.SetBasicAuth(AdminUser, ts.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", next, resp.StatusCode, body)
		}
		var page struct{ Repositories []string }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		if len(page.Repositories) > 2 {
			t.Errorf("GET %s gave %d repositories, want at most 2", next, len(page.Repositories))
		}
		paged = append(paged, page.Repositories...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			if _, err := fmt.Sscanf(link, "<%s", &next); err != nil {
				t.Fatalf("Link %q: %v", link, err)
			}
			next = strings.TrimSuffix(strings.TrimSuffix(next, ";"), ">")
		}
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("catalog in pages of 2 (-want +got):\n%s", diff)
	}

	// A larger n than the server's page is served in pages, not refused.
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/v2/_catalog?n=100000&last=delta", nil)
	req.SetBasicAuth(AdminUser, ts.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"repositories":["epsilon","team/beta","team/gamma"]}`+"\n" {
		t.Errorf("GET /v2/_catalog?n=100000&last=delta = %d %s", resp.StatusCode, body)
	}
}

// TestMalformedInputGets4xx: requests distribution v3.1.2 answers with 500 (some naming absolute storage paths) get a
// 4xx with an OCI error code from the real server, and no answer names the data directory.
func TestMalformedInputGets4xx(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	host := strings.TrimPrefix(ts.url, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(host+"/app/one:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(ts.auth())); err != nil {
		t.Fatal(err)
	}
	do := func(method, path string, header map[string]string, body io.Reader) (int, string, http.Header) {
		t.Helper()
		target := path
		if !strings.HasPrefix(path, "http") {
			target = ts.url + path
		}
		req, _ := http.NewRequest(method, target, body)
		req.SetBasicAuth(AdminUser, ts.password)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	startUpload := func() string {
		code, body, h := do("POST", "/v2/app/one/blobs/uploads/", nil, nil)
		if code != http.StatusAccepted {
			t.Fatalf("starting an upload: %d %s", code, body)
		}
		return h.Get("Location")
	}
	ociCT := "application/vnd.oci.image.manifest.v1+json"
	badManifest := `{"schemaVersion":2,"mediaType":"` + ociCT + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:zzz","size":2},"layers":[]}`
	tests := []struct {
		name       string
		method     string
		path       func() string
		header     map[string]string
		body       string
		chunked    bool
		wantStatus int
		wantCode   string
	}{
		{name: "tags last with NUL", method: "GET", path: func() string { return "/v2/app/one/tags/list?last=%00%ff" },
			wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "catalog last with NUL", method: "GET", path: func() string { return "/v2/_catalog?last=%00" },
			wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "bad digest inside a manifest", method: "PUT", path: func() string { return "/v2/app/one/manifests/bad" },
			header: map[string]string{"Content-Type": ociCT}, body: badManifest, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "PATCH with a form content type", method: "PATCH", path: startUpload,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "hello", wantStatus: 415, wantCode: "UNSUPPORTED"},
		{name: "chunked PATCH with a garbage range", method: "PATCH", path: startUpload, chunked: true,
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "garbage"}, body: "hello",
			wantStatus: 416, wantCode: "RANGE_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // no length: the client sends it chunked
			}
			code, got, _ := do(tt.method, tt.path(), tt.header, body)
			if code != tt.wantStatus || !strings.Contains(got, `"code":"`+tt.wantCode+`"`) {
				t.Errorf("status %d %s, want %d %s", code, got, tt.wantStatus, tt.wantCode)
			}
			if strings.Contains(got, cfg.DataDir) {
				t.Errorf("the answer names the data directory: %s", got)
			}
		})
	}
}
