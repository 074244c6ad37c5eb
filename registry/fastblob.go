package registry

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// Blob downloads are the registry's bulk traffic. distribution serves them through a buffered reader and several
// ResponseWriter wrappers (no sendfile). The fast path below serves a blob that distribution would serve — same
// authorization, same repository link check, same headers — straight from the filesystem driver's data file with
// http.ServeContent on the *os.File, which lets net/http use sendfile. Anything it is not sure about (other routes,
// names or digests outside the strict grammar, missing links or data, failed authorization) falls through to
// distribution, which then produces its usual answer, errors included. A request that falls through after the fast
// path authorized it carries that decision, and distribution's access controller (onceAuthorized) answers from it:
// each request is authenticated once, so bad credentials cost one bcrypt run and count one failure.

var (
	// repoNameRE is distribution's repository path grammar without a domain component (components of lower-case
	// letters and digits joined by '.', '_', '__' or dashes). It admits no '..', no empty component, no leading '/'.
	repoNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	digestRE   = regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

const (
	maxRepoNameLen = 255
	// blobCacheControl matches distribution's blobCacheControlMaxAge (365 days).
	blobCacheControl = "max-age=31536000"
)

type blobFastPath struct {
	root string // <data-dir>/docker/registry/v2
	ac   auth.AccessController
	next http.Handler

	served, fellThrough prometheus.Counter
}

// newBlobFastPath serves blob GETs and HEADs under dataDir, passing everything else to next. Its counters are
// registered with reg when it is not nil (distribution's registry_http_* series do not see these requests).
func newBlobFastPath(dataDir string, ac auth.AccessController, reg prometheus.Registerer, next http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_blob_fastpath_requests_total",
		Help: "Blob GET and HEAD requests by result: served from the filesystem directly, or passed to distribution.",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(requests); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					requests = existing
				}
			}
		}
	}
	return &blobFastPath{
		root: filepath.Join(dataDir, "docker", "registry", "v2"), ac: ac, next: next,
		served: requests.WithLabelValues("served"), fellThrough: requests.WithLabelValues("fallthrough"),
	}
}

func (b *blobFastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		b.next.ServeHTTP(w, r)
		return
	}
	if _, _, _, ok := parseBlobPath(r.URL.Path); !ok {
		b.next.ServeHTTP(w, r)
		return
	}
	served, r := b.serve(w, r)
	if served {
		b.served.Inc()
		return
	}
	b.fellThrough.Inc()
	b.next.ServeHTTP(w, r)
}

// authDecision is the fast path's authorization of a request, carried in its context to distribution.
type authDecision struct {
	access []auth.Access
	grant  *auth.Grant
	err    error
}

type authDecisionKey struct{}

// onceAuthorized is the access controller distribution is given: for a request the fast path has already
// authorized for the same access, it returns that decision instead of authenticating again.
type onceAuthorized struct{ auth.AccessController }

var _ auth.AccessController = onceAuthorized{}

func (o onceAuthorized) Authorized(r *http.Request, access ...auth.Access) (*auth.Grant, error) {
	if d, ok := r.Context().Value(authDecisionKey{}).(*authDecision); ok && slices.Equal(d.access, access) {
		return d.grant, d.err
	}
	return o.AccessController.Authorized(r, access...)
}

// parseBlobPath splits /v2/<name>/blobs/<digest>; ok is false for anything outside the strict grammar.
func parseBlobPath(p string) (name, alg, hex string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	i := strings.LastIndex(rest, "/blobs/")
	if i <= 0 {
		return "", "", "", false
	}
	name, dgst := rest[:i], rest[i+len("/blobs/"):]
	if len(name) > maxRepoNameLen || !repoNameRE.MatchString(name) || !digestRE.MatchString(dgst) {
		return "", "", "", false
	}
	alg, hex, _ = strings.Cut(dgst, ":")
	return name, alg, hex, true
}

// serve answers the request and returns true, or returns false having written nothing, with the request to pass
// on (carrying the authorization decision once there is one).
func (b *blobFastPath) serve(w http.ResponseWriter, r *http.Request) (bool, *http.Request) {
	if r.URL.RawQuery != "" {
		return false, r
	}
	name, alg, hex, ok := parseBlobPath(r.URL.Path)
	if !ok {
		return false, r
	}
	if b.ac != nil {
		// The access distribution asks for on a blob GET or HEAD (handlers.appendAccessRecords).
		access := []auth.Access{{Resource: auth.Resource{Type: "repository", Name: name}, Action: "pull"}}
		grant, err := b.ac.Authorized(r, access...)
		r = r.WithContext(context.WithValue(r.Context(), authDecisionKey{}, &authDecision{access: access, grant: grant, err: err}))
		if err != nil {
			return false, r // distribution writes the challenge, from this decision
		}
	}
	dgst := alg + ":" + hex
	link, err := os.ReadFile(filepath.Join(b.root, "repositories", filepath.FromSlash(name), "_layers", alg, hex, "link"))
	if err != nil || !bytes.Equal(bytes.TrimSpace(link), []byte(dgst)) {
		return false, r
	}
	f, err := os.Open(filepath.Join(b.root, "blobs", alg, hex[:2], hex, "data"))
	if err != nil {
		return false, r
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, r
	}
	h := w.Header()
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Etag", `"`+dgst+`"`)
	h.Set("Cache-Control", blobCacheControl)
	h.Set("Docker-Content-Digest", dgst)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	http.ServeContent(w, r, dgst, time.Time{}, f)
	return true, r
}
