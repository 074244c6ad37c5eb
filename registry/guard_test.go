package registry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRejectMalformed(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name, method, path, contentRange string
		wantStatus                       int
		wantCode                         string
	}{
		{name: "normal manifest", method: "GET", path: "/v2/team/app/manifests/v1", wantStatus: 200},
		{name: "255-character name", method: "GET", path: "/v2/" + long[:255] + "/manifests/v1", wantStatus: 200},
		{name: "256-character name", method: "GET", path: "/v2/" + long + "/manifests/v1", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "long name on blobs", method: "HEAD", path: "/v2/" + long + "/blobs/sha256:x", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "long name on uploads", method: "POST", path: "/v2/" + long + "/blobs/uploads/", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "long tag is not a name", method: "GET", path: "/v2/app/manifests/" + long, wantStatus: 200},
		{name: "not a registry path", method: "GET", path: "/" + long + "/manifests/x", wantStatus: 200},
		{name: "good content range", method: "PATCH", path: "/v2/app/blobs/uploads/u", contentRange: "0-9", wantStatus: 200},
		{name: "garbage content range", method: "PATCH", path: "/v2/app/blobs/uploads/u", contentRange: "garbage", wantStatus: 416, wantCode: "RANGE_INVALID"},
		{name: "bytes prefix content range", method: "PUT", path: "/v2/app/blobs/uploads/u", contentRange: "bytes 0-9/10", wantStatus: 416, wantCode: "RANGE_INVALID"},
		{name: "content range on a manifest", method: "PUT", path: "/v2/app/manifests/v1", contentRange: "garbage", wantStatus: 200},
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://reg"+tt.path, strings.NewReader("0123456789"))
			r.Header.Set("Content-Length", "10")
			if tt.contentRange != "" {
				r.Header.Set("Content-Range", tt.contentRange)
			}
			w := httptest.NewRecorder()
			rejectMalformed(next).ServeHTTP(w, r)
			if diff := cmp.Diff(tt.wantStatus, w.Code); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if tt.wantCode != "" && !strings.Contains(w.Body.String(), `"code":"`+tt.wantCode+`"`) {
				t.Errorf("body %s, want code %s", w.Body.String(), tt.wantCode)
			}
		})
	}
}

// TestRejectMalformedRequests: the malformed requests distribution answers with 500 get a 4xx with an OCI error code
// here, before distribution sees them; well-formed ones pass through unchanged.
func TestRejectMalformedRequests(t *testing.T) {
	ociCT := "application/vnd.oci.image.manifest.v1+json"
	manifest := func(digest string) string {
		return `{"schemaVersion":2,"mediaType":"` + ociCT + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
			digest + `","size":2},"layers":[]}`
	}
	good := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name, method, target, body string
		header                     map[string]string
		chunked                    bool
		wantStatus                 int
		wantCode                   string
	}{
		{name: "chunked garbage content range", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data", chunked: true,
			header: map[string]string{"Content-Range": "garbage"}, wantStatus: 416, wantCode: "RANGE_INVALID"},
		{name: "reversed content range", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data",
			header: map[string]string{"Content-Range": "9-0"}, wantStatus: 416, wantCode: "RANGE_INVALID"},
		{name: "chunked good content range", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data", chunked: true,
			header: map[string]string{"Content-Range": "0-3"}, wantStatus: 200},
		{name: "text content type on PATCH", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data",
			header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantCode: "UNSUPPORTED"},
		{name: "form content type on PATCH", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data", chunked: true,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 415, wantCode: "UNSUPPORTED"},
		{name: "octet stream with parameter", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data",
			header: map[string]string{"Content-Type": "application/octet-stream; foo=bar"}, wantStatus: 200},
		{name: "octet stream", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data",
			header: map[string]string{"Content-Type": "application/octet-stream"}, wantStatus: 200},
		{name: "no content type", method: "PATCH", target: "/v2/app/blobs/uploads/u", body: "data", wantStatus: 200},
		{name: "NUL in tags last", method: "GET", target: "/v2/app/tags/list?last=%00%ff", wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "path in tags last", method: "GET", target: "/v2/app/tags/list?last=../../x", wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "tag as tags last", method: "GET", target: "/v2/app/tags/list?n=2&last=v1.2_rc-1", wantStatus: 200},
		{name: "NUL in catalog last", method: "GET", target: "/v2/_catalog?last=%00", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "path in catalog last", method: "GET", target: "/v2/_catalog?n=2&last=../../etc", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "repository as catalog last", method: "GET", target: "/v2/_catalog?n=2&last=team/app-1", wantStatus: 200},
		{name: "short config digest", method: "PUT", target: "/v2/app/manifests/v1", body: manifest("sha256:xyz"),
			header: map[string]string{"Content-Type": ociCT}, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "unknown algorithm", method: "PUT", target: "/v2/app/manifests/v1", body: manifest("md5:d41d8cd98f00b204e9800998ecf8427e"),
			header: map[string]string{"Content-Type": ociCT}, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "bad layer digest", method: "PUT", target: "/v2/app/manifests/v1", chunked: true,
			body:   `{"schemaVersion":2,"config":{"digest":"` + good + `"},"layers":[{"digest":"sha512:abc"}]}`,
			header: map[string]string{"Content-Type": ociCT}, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "bad index entry", method: "PUT", target: "/v2/app/manifests/v1", body: `{"schemaVersion":2,"manifests":[{"digest":"sha256:../x"}]}`,
			header: map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "good manifest", method: "PUT", target: "/v2/app/manifests/v1", body: manifest(good),
			header: map[string]string{"Content-Type": ociCT}, wantStatus: 200},
		{name: "not JSON is distribution's", method: "PUT", target: "/v2/app/manifests/v1", body: `{"schemaVersion":`,
			header: map[string]string{"Content-Type": ociCT}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotBody string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotBody = string(b)
				w.WriteHeader(200)
			})
			r := httptest.NewRequest(tt.method, "http://reg"+tt.target, strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			} else {
				r.Header.Set("Content-Length", strconv.Itoa(len(tt.body)))
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			rejectMalformed(next).ServeHTTP(w, r)
			if diff := cmp.Diff(tt.wantStatus, w.Code); diff != "" {
				t.Errorf("status (-want +got):\n%s\nbody %s", diff, w.Body.String())
			}
			if tt.wantCode != "" && !strings.Contains(w.Body.String(), `"code":"`+tt.wantCode+`"`) {
				t.Errorf("body %s, want code %s", w.Body.String(), tt.wantCode)
			}
			if tt.wantStatus == 200 && gotBody != tt.body {
				t.Errorf("the next handler read %q, want the whole body %q", gotBody, tt.body)
			}
		})
	}
}

func TestClampCatalog(t *testing.T) {
	tests := []struct{ name, query, want string }{
		{name: "no n", query: "", want: ""},
		{name: "small n", query: "n=5&last=a", want: "n=5&last=a"},
		{name: "largest n", query: "n=1000", want: "n=1000"},
		{name: "larger n", query: "n=10000&last=team%2Fapp", want: "last=team%2Fapp&n=1000"},
		{name: "bad n is distribution's", query: "n=abc", want: "n=abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.RawQuery })
			target := "http://reg/v2/_catalog"
			if tt.query != "" {
				target += "?" + tt.query
			}
			rejectMalformed(next).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("query distribution sees (-want +got):\n%s", diff)
			}
		})
	}
}
