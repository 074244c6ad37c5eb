package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"
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

// TestQuickRouteAgreesWithMux: wherever the quick classifier answers, distribution's router gives the same route and
// repository.
func TestQuickRouteAgreesWithMux(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	names := []string{"app", "team-a/app", "a/manifests/b", "a/blobs/b", "a__b", "a_b", "a___b", "a.b", "a..b", "a--b", "a-", "-a",
		"a-.b", "a._b", "A/b", "a//b", "a/", "localhost:5000/a", "a/tags", "a/blobs/uploads", strings.Repeat("a", 256), "x.y_z-w/q"}
	refs := []string{"1", "latest", "v1.2.3", "_x", "-x", ".x", "X", d, "sha256:abc", "sha512:" + strings.Repeat("a", 128), "uploads",
		"uploads/", "a/b", strings.Repeat("t", 128), strings.Repeat("t", 129), "list"}
	checked := 0
	for _, n := range names {
		for _, r := range refs {
			for _, kind := range []string{"manifests", "blobs"} {
				p := "/v2/" + n + "/" + kind + "/" + r
				route, repo, ok := quickRoute(p)
				if !ok {
					continue
				}
				checked++
				var m mux.RouteMatch
				req := httptest.NewRequest(http.MethodGet, "http://x"+strings.ReplaceAll(p, "%", "%25"), nil)
				if !router.Match(req, &m) || m.MatchErr != nil {
					t.Errorf("%s: quick says %s %q, mux matches nothing", p, route, repo)
					continue
				}
				if m.Route.GetName() != route || m.Vars["name"] != repo {
					t.Errorf("%s: quick says %s %q, mux says %s %q", p, route, repo, m.Route.GetName(), m.Vars["name"])
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d paths took the quick route", checked)
	}
}
