package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/gc"
)

// maxJournaledManifest is distribution's limit on a manifest body (a larger one is refused, so nothing to journal).
const maxJournaledManifest = 4 << 20

// gcHooks sits right in front of distribution's App (after registry/oci turned sha512 addresses into the canonical
// ones): it puts the server's blob descriptor cache in each request's context, and, before distribution sees a write
// that can make an old blob live again, journals its digests with rec and refuses it while a sweep fences writes.
func gcHooks(rec gc.Recorder, c *blobCache, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withBlobCache(r.Context(), c))
		digests, ok := guardedDigests(w, r)
		if !ok {
			return
		}
		if digests != nil {
			if err := rec.Record(r.Context(), digests); err != nil {
				w.Header().Set("Retry-After", strconv.Itoa(int(gc.RetryAfter.Seconds())))
				msg := "garbage collection is sweeping: retry shortly"
				if !errors.Is(err, gc.ErrFenced) {
					msg = "cannot journal the write for garbage collection: retry shortly"
				}
				writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", msg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// guardedDigests returns the digests a write names (nil for a request that is not a guarded write): a manifest PUT's
// own digest and references, an upload completion's digest, a mount's digest. ok is false when it answered the
// request itself.
func guardedDigests(w http.ResponseWriter, r *http.Request) (_ []digest.Digest, ok bool) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/v2/") {
		return nil, true
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		body, err := io.ReadAll(io.LimitReader(r.Body, maxJournaledManifest+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading manifest: "+err.Error())
			return nil, false
		}
		// Past distribution's limit the rest still follows: distribution refuses it with its own error.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		ds := append([]digest.Digest{digest.FromBytes(body)}, gc.References(body)...)
		if d, err := digest.Parse(p[strings.LastIndex(p, "/")+1:]); err == nil {
			ds = append(ds, d)
		}
		return ds, true
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(p, "/blobs/uploads/"):
		var ds []digest.Digest
		for _, k := range []string{"digest", "mount"} {
			if d, err := digest.Parse(q.Get(k)); err == nil {
				ds = append(ds, d)
			}
		}
		if ds == nil {
			return nil, true // starting an upload or sending a chunk commits nothing
		}
		return ds, true
	}
	return nil, true
}
