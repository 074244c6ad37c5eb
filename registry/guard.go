package registry

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// nameMarkers end the repository name in a /v2/<name>/... path.
var nameMarkers = []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"}

// maxCatalogEntries is the most repositories one /v2/_catalog page holds (distribution's default); larger n are
// clamped to it and the Link header leads to the next page.
const maxCatalogEntries = 1000

// tagRE is the distribution spec's tag grammar; a tags/list "last" outside it cannot name a tag.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// rejectMalformed answers malformed requests that distribution v3.1.2 answers with 500 UNKNOWN (some with absolute
// storage paths in the detail), as the distribution spec says instead:
//   - a repository name longer than 255 characters: 400 NAME_INVALID;
//   - an upload PATCH or PUT whose Content-Range is not START-END with START <= END: 416 RANGE_INVALID, whether the
//     body has a Content-Length or is chunked;
//   - an upload PATCH whose Content-Type is not application/octet-stream: 415 UNSUPPORTED;
//   - a tags/list "last" that is not a tag: 400 TAG_INVALID; a _catalog "last" that is not a repository name: 400
//     NAME_INVALID;
//   - a manifest PUT naming a malformed digest: 400 DIGEST_INVALID (manifestguard.go).
//
// It also clamps /v2/_catalog?n= to maxCatalogEntries, which distribution would refuse with 400. Everything else
// passes through.
func rejectMalformed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if rest == "_catalog" {
			if last := r.URL.Query().Get("last"); last != "" && (len(last) > maxRepoNameLen || !repoNameRE.MatchString(last)) {
				_ = errcode.ServeJSON(w, errcode.ErrorCodeNameInvalid.WithDetail("last is not a repository name"))
				return
			}
			next.ServeHTTP(w, clampCatalog(r))
			return
		}
		end := -1
		for _, m := range nameMarkers {
			end = max(end, strings.LastIndex(rest, m))
		}
		if end > maxRepoNameLen {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeNameInvalid.WithDetail(
				fmt.Sprintf("repository name is %d characters, the most is %d", end, maxRepoNameLen)))
			return
		}
		switch {
		case strings.Contains(rest, "/blobs/uploads/"):
			if !checkUpload(w, r) {
				return
			}
		case strings.HasSuffix(rest, "/tags/list"):
			if last := r.URL.Query().Get("last"); last != "" && !tagRE.MatchString(last) {
				writeError(w, http.StatusBadRequest, "TAG_INVALID", "last is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})")
				return
			}
		case r.Method == http.MethodPut && strings.Contains(rest, "/manifests/"):
			if !checkManifestDigests(w, r) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkUpload answers a PATCH or PUT to an upload with a bad Content-Range or Content-Type and reports whether the
// request may go on.
func checkUpload(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPatch && r.Method != http.MethodPut {
		return true
	}
	if cr := r.Header.Get("Content-Range"); cr != "" && !validContentRange(cr) {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeRangeInvalid.WithDetail("Content-Range must be START-END with START <= END"))
		return false
	}
	if r.Method == http.MethodPatch {
		if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/octet-stream" {
			if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/octet-stream" {
				r.Header.Set("Content-Type", mt) // distribution compares the whole header
				return true
			}
			writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED",
				"an upload PATCH body must have Content-Type application/octet-stream")
			return false
		}
	}
	return true
}

// validContentRange mirrors what distribution's upload handler can parse: two integers joined by '-', in order.
func validContentRange(cr string) bool {
	start, end, ok := strings.Cut(cr, "-")
	if !ok {
		return false
	}
	s, err1 := strconv.ParseInt(start, 10, 64)
	e, err2 := strconv.ParseInt(end, 10, 64)
	return err1 == nil && err2 == nil && s >= 0 && s <= e
}

// clampCatalog lowers n to maxCatalogEntries; distribution answers a larger n with 400.
func clampCatalog(r *http.Request) *http.Request {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n <= maxCatalogEntries {
		return r
	}
	q.Set("n", strconv.Itoa(maxCatalogEntries))
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	return r
}

// writeError answers with the distribution spec's error body for a code distribution has no descriptor for at
// this status.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}
