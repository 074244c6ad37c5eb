package oci

import (
	"context"
	_ "crypto/sha512" // sha512 digests must be available to go-digest for verification
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options configures a Handler.
type Options struct {
	// Driver is the storage driver distribution's App uses (a second instance over the same storage is fine).
	Driver storagedriver.StorageDriver
	// Access authorizes referrers requests; nil serves them without authentication. Everything else is authorized
	// by distribution before this package acts on it.
	Access auth.AccessController
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Handler serves the OCI 1.1 additions in front of distribution's App.
type Handler struct {
	next   http.Handler
	edges  edges
	driver storagedriver.StorageDriver
	ns     distribution.Namespace
	ac     auth.AccessController
	log    *slog.Logger
}

// New returns a Handler that passes what it does not serve to next.
func New(next http.Handler, o Options) (*Handler, error) {
	if o.Driver == nil {
		return nil, fmt.Errorf("configuring oci extensions: no storage driver")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ns, err := storage.NewRegistry(context.Background(), o.Driver)
	if err != nil {
		return nil, fmt.Errorf("configuring oci extensions: %w", err)
	}
	return &Handler{next: next, edges: edges{o.Driver}, driver: o.Driver, ns: ns, ac: o.Access, log: o.Logger}, nil
}

// route is a parsed /v2/<name>/<kind>/<ref> path.
type route struct {
	name, kind, ref string
}

var routeKinds = []string{"manifests", "blobs", "referrers"}

// parseRoute splits p; ok is false for paths outside /v2/<name>/{manifests,blobs,referrers}/<ref> and for blob upload
// paths, which have their own parse (uploadRoute).
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	for _, k := range routeKinds {
		i := strings.LastIndex(rest, "/"+k+"/")
		if i <= 0 {
			continue
		}
		r := route{name: rest[:i], kind: k, ref: rest[i+len(k)+2:]}
		if r.ref != "" && !strings.Contains(r.ref, "/") {
			return r, true
		}
	}
	return route{}, false
}

// uploadRoute returns the repository of /v2/<name>/blobs/uploads/[<id>].
func uploadRoute(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "/blobs/uploads/")
	if i <= 0 {
		return "", false
	}
	return rest[:i], true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt, ok := parseRoute(r.URL.Path); ok {
		switch {
		case rt.kind == "referrers" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			h.serveReferrers(w, r, rt)
			return
		case rt.kind == "manifests" && r.Method == http.MethodPut:
			h.putManifest(w, r, rt)
			return
		case rt.kind == "manifests" && r.Method == http.MethodDelete:
			h.deleteManifest(w, r, rt)
			return
		case rt.kind == "blobs" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && isAlias(rt.ref):
			h.getBlobAlias(w, r, digest.Digest(rt.ref))
			return
		}
	} else if name, ok := uploadRoute(r.URL.Path); ok {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && isAlias(q.Get("digest")):
			h.finishUploadAlias(w, r, digest.Digest(q.Get("digest")))
			return
		case r.Method == http.MethodPost && isAlias(q.Get("mount")):
			h.mountAlias(w, r, name, digest.Digest(q.Get("mount")), q.Get("from"))
			return
		case r.Method == http.MethodPost && q.Has("digest") && !q.Has("mount") && strings.HasSuffix(r.URL.Path, "/blobs/uploads/"):
			h.monolithicUpload(w, r, q.Get("digest"))
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>: an image index of the manifests in name whose subject
// is digest, optionally filtered by ?artifactType=. An unknown subject or repository has an empty index.
func (h *Handler) serveReferrers(w http.ResponseWriter, r *http.Request, rt route) {
	if _, err := reference.WithName(rt.name); err != nil {
		serveError(w, errcode.ErrorCodeNameInvalid.WithDetail(err.Error()))
		return
	}
	if !h.authorize(w, r, rt.name, "pull") {
		return
	}
	subject, err := digest.Parse(rt.ref)
	if err != nil {
		serveError(w, errcode.ErrorCodeDigestInvalid.WithDetail(fmt.Sprintf("subject %q: %v", rt.ref, err)))
		return
	}
	ds, err := h.edges.list(r.Context(), rt.name, subject)
	if err != nil {
		h.log.Error("serving referrers", "repository", rt.name, "subject", subject.String(), "err", err)
		serveError(w, errcode.ErrorCodeUnknown.WithDetail("reading referrers"))
		return
	}
	if types := r.URL.Query()["artifactType"]; len(types) > 0 {
		ds = filterByArtifactType(ds, types)
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	b, err := json.Marshal(referrersIndex(ds))
	if err != nil {
		serveError(w, errcode.ErrorCodeUnknown.WithDetail("encoding referrers"))
		return
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// authorize checks action on repository name the way distribution's App does, writing the challenge or refusal.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, name, action string) bool {
	if h.ac == nil {
		return true
	}
	access := auth.Access{Resource: auth.Resource{Type: "repository", Name: name}, Action: action}
	if _, err := h.ac.Authorized(r, access); err != nil {
		if ch, ok := err.(auth.Challenge); ok {
			ch.SetHeaders(r, w)
			serveError(w, errcode.ErrorCodeUnauthorized.WithDetail([]auth.Access{access}))
			return false
		}
		w.WriteHeader(http.StatusBadRequest) // as distribution: no detail about a failing access controller
		return false
	}
	return true
}

func serveError(w http.ResponseWriter, err error) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	_ = errcode.ServeJSON(w, err)
}

// hookWriter runs onHeader when distribution writes its status, before the headers go out; onHeader may add headers.
// If onHeader fails, the response becomes a 500 and distribution's body is dropped.
type hookWriter struct {
	http.ResponseWriter
	onHeader func(code int, h http.Header) error
	wrote    bool
	dropped  bool
}

func (hw *hookWriter) WriteHeader(code int) {
	if hw.wrote {
		return
	}
	hw.wrote = true
	if err := hw.onHeader(code, hw.Header()); err != nil {
		hw.dropped = true
		for _, k := range []string{"Location", "Docker-Content-Digest", "Content-Length", "Etag", "OCI-Subject", "OCI-Tag"} {
			hw.Header().Del(k)
		}
		serveError(hw.ResponseWriter, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	hw.ResponseWriter.WriteHeader(code)
}

func (hw *hookWriter) Write(b []byte) (int, error) {
	if !hw.wrote {
		hw.WriteHeader(http.StatusOK)
	}
	if hw.dropped {
		return len(b), nil
	}
	return hw.ResponseWriter.Write(b)
}

// readBody reads at most limit bytes of r's body; over is true (and the body restored for the next handler) when
// there is more.
func readBody(r *http.Request, limit int64) (b []byte, over bool, err error) {
	b, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(strings.NewReader(string(b)), r.Body), r.Body}
		return nil, true, nil
	}
	return b, false, nil
}

// allowed reports whether the request may do action on repository name, writing nothing.
func (h *Handler) allowed(r *http.Request, name, action string) bool {
	access := auth.Access{Resource: auth.Resource{Type: "repository", Name: name}, Action: action}
	_, err := h.ac.Authorized(r, access)
	return err == nil
}
