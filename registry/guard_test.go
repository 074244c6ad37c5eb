package registry

import (
	"net/http"
	"net/http/httptest"
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
