package access

import (
	"net/http"
	"regexp"

	"github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/reference"
	"github.com/gorilla/mux"
)

// RouteReferrers is the OCI referrers route (GET /v2/<name>/referrers/<digest>), which distribution's router does
// not know; registry-kit serves it itself.
const RouteReferrers = "referrers"

var (
	router      = v2.Router()
	referrersRE = regexp.MustCompile(`^/v2/(` + reference.NameRegexp.String() + `)/referrers/` +
		`[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

// Route names the registry API route of a request, with its repository ("" for the base and catalog routes).
// ok is false for paths that are not registry API routes; distribution answers those itself (404).
func Route(r *http.Request) (route, repo string, ok bool) {
	var m mux.RouteMatch
	if router.Match(r, &m) && m.Route != nil && m.MatchErr == nil {
		return m.Route.GetName(), m.Vars["name"], true
	}
	if sub := referrersRE.FindStringSubmatch(r.URL.Path); sub != nil {
		return RouteReferrers, sub[1], true
	}
	return "", "", false
}

// Records are the access records distribution asks its access controller for on this request, computed the same
// way (registry/handlers/app.go): GET and HEAD need pull; POST, PUT and PATCH pull and push; DELETE delete; a
// mount (?from=) also pull on the source repository; cancelling an upload (DELETE) pull and push, not delete; the catalog a registry:catalog:* record; the base route none.
func Records(r *http.Request) (records []auth.Access, route string, ok bool) {
	route, repo, ok := Route(r)
	if !ok {
		return nil, "", false
	}
	if repo == "" {
		if route == v2.RouteNameCatalog {
			records = append(records, auth.Access{Resource: auth.Resource{Type: "registry", Name: "catalog"}, Action: "*"})
		}
		return records, route, true
	}
	method := r.Method
	if route == v2.RouteNameBlobUploadChunk && method == http.MethodDelete {
		// Cancelling an upload deletes nothing stored: it needs what starting one needs, not delete.
		method = http.MethodPost
	}
	records = methodRecords(records, method, repo)
	if from := r.URL.Query().Get("from"); from != "" {
		records = methodRecords(records, http.MethodGet, from)
	}
	return records, route, true
}

func methodRecords(records []auth.Access, method, repo string) []auth.Access {
	res := auth.Resource{Type: "repository", Name: repo}
	switch method {
	case http.MethodGet, http.MethodHead:
		records = append(records, auth.Access{Resource: res, Action: string(Pull)})
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		records = append(records, auth.Access{Resource: res, Action: string(Pull)}, auth.Access{Resource: res, Action: string(Push)})
	case http.MethodDelete:
		records = append(records, auth.Access{Resource: res, Action: string(Delete)})
	}
	return records
}
