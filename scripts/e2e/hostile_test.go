//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawResponse is what came back for a request written byte for byte on a fresh connection.
type rawResponse struct {
	Status int
	Header http.Header
	Body   string
}

// rawRequest writes an HTTP/1.1 request with exactly the given target (no client-side path cleaning or escaping) and
// reads one response. Status 0 means the server closed the connection without answering.
func rawRequest(t *testing.T, addr, method, target string, header http.Header, body []byte) rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if body != nil && header.Get("Content-Length") == "" && header.Get("Transfer-Encoding") == "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	// The server may answer (and close) before reading everything, e.g. for an oversized body; that is fine.
	_, _ = conn.Write(b.Bytes())
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return rawResponse{}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

func basicHeader(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

func withHeader(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// pushBlobRaw uploads a blob monolithically (POST then PUT ?digest=) and fails the test unless it is created.
func pushBlobRaw(t *testing.T, addr string, auth http.Header, repo string, data []byte) string {
	t.Helper()
	r := rawRequest(t, addr, "POST", "/v2/"+repo+"/blobs/uploads/", auth, []byte{})
	if r.Status != http.StatusAccepted {
		t.Fatalf("starting upload to %s: status %d %s", repo, r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	if i := strings.Index(loc, "/v2/"); i > 0 {
		loc = loc[i:]
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	d := sha(data)
	r = rawRequest(t, addr, "PUT", loc+sep+"digest="+d, withHeader(auth, "Content-Type", "application/octet-stream"), data)
	if r.Status != http.StatusCreated {
		t.Fatalf("finishing upload to %s: status %d %s", repo, r.Status, r.Body)
	}
	return d
}

// pushImageRaw pushes a one-layer OCI image and returns the manifest bytes.
func pushImageRaw(t *testing.T, addr string, auth http.Header, repo, tag string, layer []byte) []byte {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := pushBlobRaw(t, addr, auth, repo, cfg)
	ld := pushBlobRaw(t, addr, auth, repo, layer)
	m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		cd, len(cfg), ld, len(layer))
	r := rawRequest(t, addr, "PUT", "/v2/"+repo+"/manifests/"+tag, withHeader(auth, "Content-Type", "application/vnd.oci.image.manifest.v1+json"), m)
	if r.Status != http.StatusCreated {
		t.Fatalf("putting manifest %s:%s: status %d %s", repo, tag, r.Status, r.Body)
	}
	return m
}

// snapshotOutside lists every path under root that is not under dataDir.
func snapshotOutside(t *testing.T, root, dataDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dataDir {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return out
}

// acceptable reports whether a 2xx is right for a request in the list: the pushed image's own paths, /v2/, a mount
// that falls back to a plain upload (the spec's answer to a mount it cannot do) and OPTIONS *.
func acceptable(method, target string) bool {
	return strings.HasPrefix(target, "/v2/good/app/") || target == "/v2/" || target == "*" ||
		(method == "POST" && strings.Contains(target, "?mount="))
}

// TestHostileRequests throws oversized and malformed requests at a running registry-kit serve, with and without valid
// credentials: every one gets a 4xx (or, for a path the router cleans, a redirect), never a 5xx or a dropped
// connection; nothing is written outside the data directory; the server stays healthy and still serves a pushed image.
func TestHostileRequests(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	canary := filepath.Join(root, "etc", "passwd")
	if err := os.MkdirAll(filepath.Dir(canary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(canary, []byte("canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, "--data-dir", dataDir, "--delete-enabled")
	if srv.Password == "" {
		t.Fatal("serve did not create the admin user")
	}
	auth := basicHeader(srv.User, srv.Password)
	before := snapshotOutside(t, root, dataDir)

	layer := bytes.Repeat([]byte("registry-kit hostile layer "), 100)
	manifest := pushImageRaw(t, srv.Addr, auth, "good/app", "v1", layer)
	layerDigest := sha(layer)

	long := strings.Repeat("a", 300)
	veryLong := strings.Repeat("abcdefgh/", 4000)
	bogus := []string{"sha256:xyz", "sha256:" + strings.Repeat("g", 64), "md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256:" + strings.Repeat("a", 63), "sha512:abc", ":", "sha256:", "sha256:../../../../etc/passwd", "%00"}
	hugeManifest := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"`),
		bytes.Repeat([]byte("A"), 5<<20)...)
	hugeManifest = append(hugeManifest, []byte(`"}}`)...)
	ociCT := "application/vnd.oci.image.manifest.v1+json"

	type req struct {
		name, method, target string
		header               http.Header
		body                 []byte
	}
	reqs := []req{
		{name: "huge header value", method: "GET", target: "/v2/", header: withHeader(auth, "X-Big", strings.Repeat("x", 2<<20))},
		{name: "many headers", method: "GET", target: "/v2/", header: func() http.Header {
			h := auth.Clone()
			for i := range 20000 {
				h.Set(fmt.Sprintf("X-H%d", i), "v")
			}
			return h
		}()},
		{name: "huge authorization", method: "GET", target: "/v2/", header: http.Header{"Authorization": {"Basic " + strings.Repeat("QUFB", 200000)}}},
		{name: "garbage authorization", method: "GET", target: "/v2/", header: http.Header{"Authorization": {"Basic !!!not-base64"}}},
		{name: "authorization without colon", method: "GET", target: "/v2/", header: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon"))}}},
		{name: "bearer to basic server", method: "GET", target: "/v2/", header: http.Header{"Authorization": {"Bearer x.y.z"}}},
		{name: "unknown method", method: "BREW", target: "/v2/", header: auth},
		{name: "trace", method: "TRACE", target: "/v2/", header: auth},
		{name: "absolute-form target", method: "GET", target: "http://169.254.169.254/latest/meta-data/", header: auth},
		{name: "asterisk target", method: "OPTIONS", target: "*", header: auth},
	}
	for _, tr := range []string{
		"/v2/../../etc/passwd/manifests/x", "/v2/%2e%2e/%2e%2e/etc/passwd/manifests/x", "/v2/..%2f..%2fetc%2fpasswd/manifests/x",
		"/v2/%252e%252e/etc/passwd/manifests/x", "/v2/good/../../../etc/passwd/blobs/" + layerDigest, "/v2/./good/other/manifests/v1",
		"/v2/good//other/manifests/v1", "/v2/good/app/manifests/..%2f..%2f..%2fetc%2fpasswd", "/v2/good/app/blobs/..%2f..%2fblobs",
		"/v2/good%00/app/manifests/v1", "/v2/Good/App/manifests/v1", "/v2/" + long + "/manifests/v1", "/v2/" + veryLong + "manifests/v1",
		"/v2/good/app/manifests/" + strings.Repeat("t", 200), "/v2/good/app/tags/list?n=-1", "/v2/good/app/tags/list?n=99999999999999999999",
		"/v2/good/app/tags/list?last=%ff%fe", "/v2/_catalog?n=abc", "/v2/good/app/blobs/uploads/../../../../etc/passwd",
		"/v2/good/app/blobs/uploads/not-a-uuid", "/v2/good/app/blobs/uploads/00000000-0000-0000-0000-000000000000?_state=garbage",
		"/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd", "/v2/good/app/referrers/sha256:zz",
	} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "PATCH"} {
			reqs = append(reqs, req{name: m + " " + tr[:min(len(tr), 60)], method: m, target: tr, header: auth, body: []byte("{}")})
		}
		reqs = append(reqs, req{name: "anonymous GET " + tr[:min(len(tr), 60)], method: "GET", target: tr})
	}
	for _, d := range bogus {
		reqs = append(reqs,
			req{name: "GET blob " + d, method: "GET", target: "/v2/good/app/blobs/" + d, header: auth},
			req{name: "HEAD blob " + d, method: "HEAD", target: "/v2/good/app/blobs/" + d, header: auth},
			req{name: "GET manifest " + d, method: "GET", target: "/v2/good/app/manifests/" + d, header: auth},
			req{name: "DELETE blob " + d, method: "DELETE", target: "/v2/good/app/blobs/" + d, header: auth},
			req{name: "mount " + d, method: "POST", target: "/v2/other/app/blobs/uploads/?mount=" + d + "&from=good/app", header: auth, body: []byte{}},
			req{name: "monolithic POST " + d, method: "POST", target: "/v2/good/app/blobs/uploads/?digest=" + d, header: auth, body: []byte("data")},
		)
	}
	reqs = append(reqs,
		req{name: "manifest over 4 MiB", method: "PUT", target: "/v2/good/app/manifests/huge", header: withHeader(auth, "Content-Type", ociCT), body: hugeManifest},
		req{name: "malformed JSON manifest", method: "PUT", target: "/v2/good/app/manifests/bad", header: withHeader(auth, "Content-Type", ociCT), body: []byte(`{"schemaVersion":2,`)},
		req{name: "JSON array manifest", method: "PUT", target: "/v2/good/app/manifests/bad", header: withHeader(auth, "Content-Type", ociCT), body: []byte(`[1,2,3]`)},
		req{name: "schema 1 manifest", method: "PUT", target: "/v2/good/app/manifests/bad", header: withHeader(auth, "Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"), body: []byte(`{"schemaVersion":1}`)},
		req{name: "unknown media type", method: "PUT", target: "/v2/good/app/manifests/bad", header: withHeader(auth, "Content-Type", "text/plain"), body: []byte(`hello`)},
		req{name: "manifest with unknown blobs", method: "PUT", target: "/v2/good/app/manifests/bad", header: withHeader(auth, "Content-Type", ociCT),
			body: fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":2},"layers":[]}`, ociCT, strings.Repeat("1", 64))},
		req{name: "manifest digest mismatch", method: "PUT", target: "/v2/good/app/manifests/sha256:" + strings.Repeat("2", 64), header: withHeader(auth, "Content-Type", ociCT), body: manifest},
		req{name: "deeply nested JSON manifest", method: "PUT", target: "/v2/good/app/manifests/deep", header: withHeader(auth, "Content-Type", ociCT),
			body: []byte(strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000))},
		req{name: "negative content length", method: "PUT", target: "/v2/good/app/manifests/neg", header: withHeader(auth, "Content-Type", ociCT, "Content-Length", "-1"), body: []byte("{}")},
		req{name: "bad chunked body", method: "PUT", target: "/v2/good/app/manifests/chunk", header: withHeader(auth, "Content-Type", ociCT, "Transfer-Encoding", "chunked"), body: []byte("zz\r\n{}\r\n0\r\n\r\n")},
	)
	for _, rg := range []string{"bytes=abc", "bytes=999999999-", "bytes=5-1", "bytes=-0", "bytes=0-1,2-3,4-5,6-7,8-9,0-1,2-3", "items=0-1", "bytes=" + strings.Repeat("0-1,", 5000) + "0-1", "bytes=-99999999999999999999"} {
		reqs = append(reqs, req{name: "blob range " + rg[:min(len(rg), 40)], method: "GET", target: "/v2/good/app/blobs/" + layerDigest, header: withHeader(auth, "Range", rg)})
	}

	for _, r := range reqs {
		got := rawRequest(t, srv.Addr, r.method, r.target, r.header, r.body)
		switch {
		case got.Status == 0:
			t.Errorf("%s: connection closed without a response", r.name)
		case got.Status >= 500:
			t.Errorf("%s: status %d (server error) %.300s", r.name, got.Status, got.Body)
		case got.Status >= 300 && got.Status < 400:
			// The router cleans paths with '.' or '..' segments by redirecting; the target must still be in /v2/ or be
			// refused there.
			loc := got.Header.Get("Location")
			if follow := rawRequest(t, srv.Addr, r.method, loc, r.header, r.body); follow.Status >= 500 || follow.Status == 0 {
				t.Errorf("%s: redirect to %q then status %d", r.name, loc, follow.Status)
			}
		case got.Status < 300 && !acceptable(r.method, r.target):
			t.Errorf("%s: accepted (status %d) %.200s", r.name, got.Status, got.Body)
		}
		if strings.Contains(got.Body, dataDir) {
			t.Errorf("%s: the answer names the data directory: %.300s", r.name, got.Body)
		}
	}

	// Inputs distribution v3.1.2 answers with 500 (the first naming the storage path): each gets its 4xx and OCI code.
	t.Run("malformed input gets its 4xx", func(t *testing.T) {
		upload := func() string {
			r := rawRequest(t, srv.Addr, "POST", "/v2/good/app/blobs/uploads/", auth, []byte{})
			if r.Status != http.StatusAccepted {
				t.Fatalf("starting upload: %d", r.Status)
			}
			loc := r.Header.Get("Location")
			return loc[strings.Index(loc, "/v2/"):]
		}
		for _, c := range []struct {
			name, method, target string
			header               http.Header
			body                 []byte
			wantStatus           int
			wantCode             string
		}{
			{"tags last with NUL and invalid UTF-8", "GET", "/v2/good/app/tags/list?last=%00%ff", auth, nil, 400, "TAG_INVALID"},
			{"catalog last with NUL", "GET", "/v2/_catalog?last=%00", auth, nil, 400, "NAME_INVALID"},
			{"bad digest inside a manifest", "PUT", "/v2/good/app/manifests/baddigest", withHeader(auth, "Content-Type", ociCT),
				fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:xyz","size":2},"layers":[]}`, ociCT),
				400, "DIGEST_INVALID"},
			{"md5 layer inside a manifest", "PUT", "/v2/good/app/manifests/baddigest", withHeader(auth, "Content-Type", ociCT),
				fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}]}`, ociCT, layerDigest),
				400, "DIGEST_INVALID"},
			{"PATCH with a text content type", "PATCH", upload(), withHeader(auth, "Content-Type", "text/plain"), []byte("data"), 415, "UNSUPPORTED"},
			{"chunked PATCH with a garbage Content-Range", "PATCH", upload(),
				withHeader(auth, "Content-Type", "application/octet-stream", "Content-Range", "garbage", "Transfer-Encoding", "chunked"),
				[]byte("4\r\ndata\r\n0\r\n\r\n"), 416, "RANGE_INVALID"},
		} {
			got := rawRequest(t, srv.Addr, c.method, c.target, c.header, c.body)
			if got.Status != c.wantStatus || !strings.Contains(got.Body, `"code":"`+c.wantCode+`"`) {
				t.Errorf("%s: status %d %.300s, want %d %s", c.name, got.Status, got.Body, c.wantStatus, c.wantCode)
			}
			if strings.Contains(got.Body, dataDir) {
				t.Errorf("%s: the answer names the data directory", c.name)
			}
		}
	})

	t.Run("wrong digest upload", func(t *testing.T) {
		data := []byte("the real content")
		wrong := sha([]byte("different content"))
		r := rawRequest(t, srv.Addr, "POST", "/v2/good/app/blobs/uploads/", auth, []byte{})
		if r.Status != http.StatusAccepted {
			t.Fatalf("starting upload: %d", r.Status)
		}
		loc := r.Header.Get("Location")
		loc = loc[strings.Index(loc, "/v2/"):]
		r = rawRequest(t, srv.Addr, "PATCH", loc, withHeader(auth, "Content-Type", "application/octet-stream", "Content-Range", "garbage"), data)
		if r.Status >= 500 || r.Status == 0 {
			t.Errorf("PATCH with a garbage Content-Range: status %d", r.Status)
		}
		r = rawRequest(t, srv.Addr, "PUT", loc+"&digest="+wrong, withHeader(auth, "Content-Type", "application/octet-stream"), data)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "DIGEST_INVALID") {
			t.Errorf("PUT with the wrong digest: status %d %.200s, want 400 DIGEST_INVALID", r.Status, r.Body)
		}
		for _, d := range []string{wrong, sha(data)} {
			if h := rawRequest(t, srv.Addr, "HEAD", "/v2/good/app/blobs/"+d, auth, nil); h.Status != http.StatusNotFound {
				t.Errorf("HEAD %s after the rejected upload: %d, want 404", d, h.Status)
			}
		}
	})

	if after := snapshotOutside(t, root, dataDir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("files outside the data directory changed:\nbefore %q\nafter  %q", before, after)
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != "canary\n" {
		t.Errorf("canary outside the data directory changed: %q, %v", b, err)
	}
	if r := rawRequest(t, srv.Addr, "GET", "/healthz", nil, nil); r.Status != http.StatusOK {
		t.Errorf("/healthz after the attack: %d", r.Status)
	}
	if r := rawRequest(t, srv.Addr, "GET", "/v2/good/app/manifests/v1", withHeader(auth, "Accept", ociCT), nil); r.Status != http.StatusOK || r.Body != string(manifest) {
		t.Errorf("pulling the image pushed before the attack: %d", r.Status)
	}
	if r := rawRequest(t, srv.Addr, "GET", "/v2/good/app/blobs/"+layerDigest, auth, nil); r.Status != http.StatusOK || sha([]byte(r.Body)) != layerDigest {
		t.Errorf("pulling its layer: %d", r.Status)
	}
	pushImageRaw(t, srv.Addr, auth, "good/after", "v1", []byte("pushed after the attack"))
	if out := srv.Output(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("server output mentions a panic:\n%s", tail(out, 40))
	}
}
