package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// nameMarkers end the repository name in a /v2/<name>/... path.
var nameMarkers = []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"}

// rejectMalformed answers two malformed requests that distribution v3.1.2 answers with 500 UNKNOWN, as the
// distribution spec says instead: a repository name longer than 255 characters gets 400 NAME_INVALID, and an upload
// PATCH or PUT whose Content-Range is not START-END gets 416 RANGE_INVALID. Everything else passes through.
func rejectMalformed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/"); ok {
			end := -1
			for _, m := range nameMarkers {
				end = max(end, strings.LastIndex(rest, m))
			}
			if end > maxRepoNameLen {
				_ = errcode.ServeJSON(w, errcode.ErrorCodeNameInvalid.WithDetail(
					fmt.Sprintf("repository name is %d characters, the most is %d", end, maxRepoNameLen)))
				return
			}
			if cr := r.Header.Get("Content-Range"); cr != "" && r.Header.Get("Content-Length") != "" &&
				(r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(rest, "/blobs/uploads/") && !validContentRange(cr) {
				_ = errcode.ServeJSON(w, errcode.ErrorCodeRangeInvalid.WithDetail("Content-Range must be START-END"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// validContentRange mirrors what distribution's upload handler can parse: two integers joined by '-'.
func validContentRange(cr string) bool {
	start, end, ok := strings.Cut(cr, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseInt(start, 10, 64)
	_, err2 := strconv.ParseInt(end, 10, 64)
	return err1 == nil && err2 == nil
}
