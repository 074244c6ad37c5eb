package registry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"
)

type capturedResponse struct {
	Status int
	Header http.Header
	Body   string
}

func capture(t *testing.T, base string, method, path string, header http.Header) capturedResponse {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	return capturedResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func TestBlobFastPathMatchesDistribution(t *testing.T) {
	ts := startServer(t, testConfig(t))
	img, err := random.Image(3000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(ts.Addr().String()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(ts.auth())); err != nil {
		t.Fatal(err)
	}
	other, err := random.Image(2000, 1)
	if err != nil {
		t.Fatal(err)
	}
	otherRef, _ := name.ParseReference(ts.Addr().String()+"/other/repo:v1", name.Insecure)
	if err := remote.Write(otherRef, other, remote.WithAuth(ts.auth())); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	otherLayers, _ := other.Layers()
	otherLayer, _ := otherLayers[0].Digest()

	// distribution alone, and the fast path with a fall-through that records it was needed.
	dist := httptest.NewServer(ts.app)
	defer dist.Close()
	fellThrough := false
	fast := httptest.NewServer(newBlobFastPath(ts.cfg.DataDir, ts.ac, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fellThrough = true
		ts.app.ServeHTTP(w, r)
	})))
	defer fast.Close()

	creds := func(user, pass string, extra ...string) http.Header {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		h := http.Header{"Authorization": req.Header["Authorization"]}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	admin := func(extra ...string) http.Header { return creds(AdminUser, ts.password, extra...) }
	blob := "/v2/team/app/blobs/" + layer.String()
	tests := []struct {
		name     string
		method   string
		path     string
		header   http.Header
		wantFast bool
		status   int
	}{
		{name: "full", method: http.MethodGet, path: blob, header: admin(), wantFast: true, status: 200},
		{name: "head", method: http.MethodHead, path: blob, header: admin(), wantFast: true, status: 200},
		{name: "range", method: http.MethodGet, path: blob, header: admin("Range", "bytes=10-99"), wantFast: true, status: 206},
		{name: "suffix range", method: http.MethodGet, path: blob, header: admin("Range", "bytes=-5"), wantFast: true, status: 206},
		{name: "unsatisfiable range", method: http.MethodGet, path: blob, header: admin("Range", "bytes=999999-"), wantFast: true, status: 416},
		{name: "if-none-match", method: http.MethodGet, path: blob, header: admin("If-None-Match", `"`+layer.String()+`"`), wantFast: true, status: 304},
		{name: "unlinked in this repository", method: http.MethodGet, path: "/v2/team/app/blobs/" + otherLayer.String(), header: admin(), status: 404},
		{name: "unknown digest", method: http.MethodGet, path: "/v2/team/app/blobs/sha256:" + strings.Repeat("a", 64), header: admin(), status: 404},
		{name: "bad digest", method: http.MethodGet, path: "/v2/team/app/blobs/sha256:xyz", header: admin(), status: 400},
		{name: "anonymous", method: http.MethodGet, path: blob, header: http.Header{}, status: 401},
		{name: "wrong password", method: http.MethodGet, path: blob, header: creds(AdminUser, "wrong"), status: 401},
		// distribution's router cleans the path and redirects to /v2/other/repo/...; the fast path leaves it to it.
		{name: "traversal", method: http.MethodGet, path: "/v2/team/../other/repo/blobs/" + otherLayer.String(), header: admin(), status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := capture(t, dist.URL, tt.method, tt.path, tt.header)
			fellThrough = false
			got := capture(t, fast.URL, tt.method, tt.path, tt.header)
			if got.Status != tt.status {
				t.Errorf("status = %d, want %d", got.Status, tt.status)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fast path response differs from distribution's (-distribution +fast):\n%s", diff)
			}
			if fellThrough == tt.wantFast {
				t.Errorf("served by the fast path = %v, want %v", !fellThrough, tt.wantFast)
			}
		})
	}
}

func TestParseBlobPath(t *testing.T) {
	hex := strings.Repeat("a", 64)
	tests := []struct {
		name, path string
		wantName   string
		ok         bool
	}{
		{name: "simple", path: "/v2/app/blobs/sha256:" + hex, wantName: "app", ok: true},
		{name: "nested", path: "/v2/team/sub/app-x_y.z/blobs/sha256:" + hex, wantName: "team/sub/app-x_y.z", ok: true},
		{name: "blobs in name", path: "/v2/blobs/blobs/sha256:" + hex, wantName: "blobs", ok: true},
		{name: "dotdot", path: "/v2/a/../b/blobs/sha256:" + hex},
		{name: "dot component", path: "/v2/a/./b/blobs/sha256:" + hex},
		{name: "leading dot", path: "/v2/.a/blobs/sha256:" + hex},
		{name: "empty component", path: "/v2/a//b/blobs/sha256:" + hex},
		{name: "upper case", path: "/v2/App/blobs/sha256:" + hex},
		{name: "domain with port", path: "/v2/localhost:5000/a/blobs/sha256:" + hex},
		{name: "short digest", path: "/v2/a/blobs/sha256:abc"},
		{name: "upper hex", path: "/v2/a/blobs/sha256:" + strings.Repeat("A", 64)},
		{name: "digest traversal", path: "/v2/a/blobs/sha256:../../" + hex[6:]},
		{name: "unknown algorithm", path: "/v2/a/blobs/md5:" + hex[:32]},
		{name: "no name", path: "/v2/blobs/sha256:" + hex},
		{name: "upload route", path: "/v2/a/blobs/uploads/"},
		{name: "too long", path: "/v2/" + strings.Repeat("a", 256) + "/blobs/sha256:" + hex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, _, ok := parseBlobPath(tt.path)
			if ok != tt.ok || n != tt.wantName {
				t.Errorf("parseBlobPath(%q) = %q, %v; want %q, %v", tt.path, n, ok, tt.wantName, tt.ok)
			}
		})
	}
}

// BenchmarkBlobGet compares, in one run, a blob download through distribution alone, through the fast path, and
// from a plain http.FileServer serving the same data file: go test ./registry -run '^$' -bench BlobGet
func BenchmarkBlobGet(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir, cfg.LogLevel = "127.0.0.1:0", "", b.TempDir(), "info"
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	pw, _ := os.ReadFile(filepath.Join(cfg.DataDir, AdminPasswordFile))
	a := &authn.Basic{Username: AdminUser, Password: strings.TrimSpace(string(pw))}

	layer, err := random.Layer(64<<20, types.OCIUncompressedLayer)
	if err != nil {
		b.Fatal(err)
	}
	repo, _ := name.NewRepository(srv.Addr().String()+"/bench/blob", name.Insecure)
	if err := remote.WriteLayer(repo, layer, remote.WithAuth(a)); err != nil {
		b.Fatal(err)
	}
	dgst, _ := layer.Digest()
	size, _ := layer.Size()
	path := "/v2/bench/blob/blobs/" + dgst.String()
	dataDir := filepath.Join(cfg.DataDir, "docker/registry/v2/blobs/sha256", dgst.Hex[:2], dgst.Hex)

	dist := httptest.NewServer(srv.app)
	defer dist.Close()
	files := httptest.NewServer(http.FileServer(http.Dir(dataDir)))
	defer files.Close()
	for _, bc := range []struct{ name, url string }{
		{"distribution", dist.URL + path},
		{"fastpath", "http://" + srv.Addr().String() + path},
		{"fileserver", files.URL + "/data"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, bc.url, nil)
				req.SetBasicAuth(a.Username, a.Password)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != size {
					b.Fatalf("GET %s: %d, %d bytes", bc.url, resp.StatusCode, n)
				}
			}
		})
	}
}

// authCount reads registry_kit_auth_requests_total{result} from the default registry, where the server registers it.
// countAuthentications reads the authentication counters; the function it returns checks that exactly one
// authentication with result was counted since.
func countAuthentications(t *testing.T) func(result string) {
	t.Helper()
	results := []string{"success", "failure", "throttled"}
	before := map[string]float64{}
	for _, r := range results {
		before[r] = authCount(t, r)
	}
	return func(result string) {
		t.Helper()
		got, want := map[string]float64{}, map[string]float64{}
		for _, r := range results {
			got[r], want[r] = authCount(t, r)-before[r], 0
		}
		want[result] = 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("authentications counted for one request (-want +got):\n%s", diff)
		}
	}
}

func authCount(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "registry_kit_auth_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestBlobFastPathAuthenticatesOnce sends blob requests the fast path authorizes and then passes to distribution:
// each is authenticated once, so a wrong password counts one failure (one bcrypt run, one unit of the throttle).
func TestBlobFastPathAuthenticatesOnce(t *testing.T) {
	ts := startServer(t, testConfig(t))
	img, err := random.Image(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(ts.Addr().String()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(ts.auth())); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	unknown := "sha256:" + strings.Repeat("b", 64)
	tests := []struct {
		name, method, digest, password string
		status                         int
		result                         string
	}{
		{"wrong password, GET of a stored blob", http.MethodGet, layer.String(), "wrong", 401, "failure"},
		{"wrong password, HEAD", http.MethodHead, layer.String(), "wrong-2", 401, "failure"},
		{"wrong password, unknown blob", http.MethodGet, unknown, "wrong-3", 401, "failure"},
		{"right password, unknown blob (falls through after success)", http.MethodGet, unknown, ts.password, 404, "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted := countAuthentications(t)
			req, _ := http.NewRequest(tt.method, ts.url+"/v2/team/app/blobs/"+tt.digest, nil)
			req.SetBasicAuth(AdminUser, tt.password)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			counted(tt.result)
		})
	}
}
