package access

import (
	"net/http"
	"regexp"
	"strings"

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
	if route, repo, ok := quickRoute(r.URL.Path); ok {
		return route, repo, true
	}
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

// quickRoute classifies the hot routes, /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>, without
// gorilla/mux's regular expressions (most of what mapping a request costs). It only answers for names in the plain
// lower-case path grammar and references without '/', where mux would pick the same route; for anything else ok is
// false and mux decides. TestQuickRouteAgreesWithMux holds the two together.
func quickRoute(p string) (route, repo string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", false
	}
	for _, m := range [...]struct{ marker, route string }{{"/manifests/", v2.RouteNameManifest}, {"/blobs/", v2.RouteNameBlob}} {
		i := strings.LastIndex(rest, m.marker)
		if i <= 0 {
			continue
		}
		name, ref := rest[:i], rest[i+len(m.marker):]
		if !plainName(name) || !plainReference(ref, m.route == v2.RouteNameBlob) {
			return "", "", false
		}
		return m.route, name, true
	}
	return "", "", false
}

// plainName reports whether name is path components of [a-z0-9] runs joined by '.', '_', '__' or dashes, split by
// '/', at most 255 bytes: distribution's path grammar without a domain component.
func plainName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if comp == "" || !alnum(comp[0]) || !alnum(comp[len(comp)-1]) {
			return false
		}
		for i := 0; i < len(comp); {
			if alnum(comp[i]) {
				i++
				continue
			}
			j := i
			for j < len(comp) && !alnum(comp[j]) {
				j++
			}
			if sep := comp[i:j]; sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
				return false
			}
			i = j
		}
	}
	return true
}

// plainReference reports whether ref is a sha256 digest, or (for manifests) a tag: [A-Za-z0-9_] then up to 127 of
// [A-Za-z0-9_.-].
func plainReference(ref string, digestOnly bool) bool {
	if hex, ok := strings.CutPrefix(ref, "sha256:"); ok {
		if len(hex) != 64 {
			return false
		}
		for i := 0; i < len(hex); i++ {
			if !(hex[i] >= '0' && hex[i] <= '9' || hex[i] >= 'a' && hex[i] <= 'f') {
				return false
			}
		}
		return true
	}
	if digestOnly || ref == "" || len(ref) > 128 || !(alnum(ref[0]) || upper(ref[0]) || ref[0] == '_') {
		return false
	}
	for i := 1; i < len(ref); i++ {
		c := ref[i]
		if !(alnum(c) || upper(c) || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
func upper(c byte) bool { return c >= 'A' && c <= 'Z' }
