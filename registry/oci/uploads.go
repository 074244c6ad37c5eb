package oci

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/opencontainers/go-digest"
)

// monolithicUpload serves the single-request upload of the spec, POST /v2/<name>/blobs/uploads/?digest=<digest>
// with the blob as the body, which distribution answers with 202 and ignores the content of. It is distribution's
// own two requests: the POST that opens an upload (authorized by distribution), then the PUT that completes it with
// the body, whose answer (201, or 400 for content not matching the digest) goes to the client.
func (h *Handler) monolithicUpload(w http.ResponseWriter, r *http.Request, raw string) {
	d, err := digest.Parse(raw)
	if err != nil {
		serveError(w, errcode.ErrorCodeDigestInvalid.WithDetail(fmt.Sprintf("digest parameter %q: %v", raw, err)))
		return
	}
	open := r.Clone(r.Context())
	open.URL.RawQuery, open.RequestURI, open.Body, open.ContentLength = "", "", http.NoBody, 0
	open.Header.Del("Content-Length")
	open.Header.Del("Content-Type")
	rec := &recorder{statusWriter: statusWriter{header: http.Header{}}}
	h.next.ServeHTTP(rec, open)
	loc, err := url.Parse(rec.header.Get("Location"))
	if rec.code != http.StatusAccepted || err != nil || loc.Path == "" {
		rec.replay(w) // the refusal (401, 404, ...) as distribution gave it
		return
	}
	q := loc.Query()
	q.Set("digest", d.String())
	put := r.Clone(r.Context())
	put.Method, put.RequestURI = http.MethodPut, ""
	put.URL.Path, put.URL.RawPath, put.URL.RawQuery = loc.Path, "", q.Encode()
	if isAlias(d.String()) {
		h.finishUploadAlias(w, put, d)
		return
	}
	h.next.ServeHTTP(w, put)
}

// recorder keeps a whole internal response to replay it.
type recorder struct {
	statusWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) replay(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.code == 0 {
		r.code = http.StatusOK
	}
	w.WriteHeader(r.code)
	_, _ = w.Write(r.body.Bytes())
}
