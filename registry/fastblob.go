package registry

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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
// distribution, which then produces its usual answer, errors included.

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
	if b.serve(w, r) {
		b.served.Inc()
		return
	}
	b.fellThrough.Inc()
	b.next.ServeHTTP(w, r)
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

// serve answers the request and returns true, or returns false having written nothing.
func (b *blobFastPath) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery != "" {
		return false
	}
	name, alg, hex, ok := parseBlobPath(r.URL.Path)
	if !ok {
		return false
	}
	if b.ac != nil {
		access := auth.Access{Resource: auth.Resource{Type: "repository", Name: name}, Action: "pull"}
		if _, err := b.ac.Authorized(r, access); err != nil {
			return false // distribution repeats the check and writes the challenge
		}
	}
	dgst := alg + ":" + hex
	link, err := os.ReadFile(filepath.Join(b.root, "repositories", filepath.FromSlash(name), "_layers", alg, hex, "link"))
	if err != nil || !bytes.Equal(bytes.TrimSpace(link), []byte(dgst)) {
		return false
	}
	f, err := os.Open(filepath.Join(b.root, "blobs", alg, hex[:2], hex, "data"))
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
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
	return true
}
