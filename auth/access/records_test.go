package access

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRecords is the route × method table: the access records every registry route needs, as distribution computes
// them (registry/handlers/app.go appendAccessRecords and appendCatalogAccessRecord), plus the referrers route.
func TestRecords(t *testing.T) {
	const d = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, method, target string
		wantRoute            string
		want                 []string // type:name:action
	}{
		{"base", "GET", "/v2/", "base", nil},
		{"catalog", "GET", "/v2/_catalog?n=10", "catalog", []string{"registry:catalog:*"}},
		{"tags list", "GET", "/v2/team-a/app/tags/list", "tags", []string{"repository:team-a/app:pull"}},
		{"manifest get", "GET", "/v2/team-a/app/manifests/1", "manifest", []string{"repository:team-a/app:pull"}},
		{"manifest head", "HEAD", "/v2/team-a/app/manifests/" + d, "manifest", []string{"repository:team-a/app:pull"}},
		{"manifest put", "PUT", "/v2/team-a/app/manifests/1", "manifest", []string{"repository:team-a/app:pull", "repository:team-a/app:push"}},
		{"manifest delete", "DELETE", "/v2/team-a/app/manifests/" + d, "manifest", []string{"repository:team-a/app:delete"}},
		{"blob get", "GET", "/v2/app/blobs/" + d, "blob", []string{"repository:app:pull"}},
		{"blob delete", "DELETE", "/v2/app/blobs/" + d, "blob", []string{"repository:app:delete"}},
		{"upload start", "POST", "/v2/app/blobs/uploads/", "blob-upload", []string{"repository:app:pull", "repository:app:push"}},
		{"mount", "POST", "/v2/team-b/x/blobs/uploads/?mount=" + d + "&from=team-a/app", "blob-upload",
			[]string{"repository:team-b/x:pull", "repository:team-b/x:push", "repository:team-a/app:pull"}},
		{"upload chunk", "PATCH", "/v2/app/blobs/uploads/3f1b-uuid", "blob-upload-chunk", []string{"repository:app:pull", "repository:app:push"}},
		{"upload status", "GET", "/v2/app/blobs/uploads/3f1b-uuid", "blob-upload-chunk", []string{"repository:app:pull"}},
		{"upload finish", "PUT", "/v2/app/blobs/uploads/3f1b-uuid?digest=" + d, "blob-upload-chunk", []string{"repository:app:pull", "repository:app:push"}},
		{"upload cancel needs push, not delete", "DELETE", "/v2/app/blobs/uploads/3f1b-uuid", "blob-upload-chunk", []string{"repository:app:pull", "repository:app:push"}},
		{"referrers", "GET", "/v2/team-a/app/referrers/" + d, RouteReferrers, []string{"repository:team-a/app:pull"}},
		{"referrers with filter", "GET", "/v2/team-a/app/referrers/" + d + "?artifactType=x", RouteReferrers, []string{"repository:team-a/app:pull"}},
		{"repository named like a route", "GET", "/v2/a/manifests/b/manifests/1", "manifest", []string{"repository:a/manifests/b:pull"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, route, ok := Records(httptest.NewRequest(tt.method, tt.target, nil))
			if !ok {
				t.Fatalf("Records(%s %s): not a registry route", tt.method, tt.target)
			}
			var got []string
			for _, a := range recs {
				got = append(got, a.Type+":"+a.Name+":"+a.Action)
			}
			if route != tt.wantRoute {
				t.Errorf("route = %q, want %q", route, tt.wantRoute)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordsUnknownRoute(t *testing.T) {
	for _, target := range []string{"/v2/UPPER/manifests/1", "/v2/app/whatever", "/healthz", "/v2/app/referrers/notadigest"} {
		if _, _, ok := Records(httptest.NewRequest(http.MethodGet, target, nil)); ok {
			t.Errorf("Records(GET %s) ok, want not a route", target)
		}
	}
}
