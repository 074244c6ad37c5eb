package oci

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// distribution stores every blob under its sha256 digest. A blob uploaded with ?digest=sha512:... is verified
// against that digest and linked into the repository under both digests (registry/storage/blobwriter.go), so a
// sha512 address already finds its content; but distribution answers with the sha256 digest in
// Docker-Content-Digest, Etag and Location, and a cross-repository mount of a sha512 address links a blob that does
// not exist. The handlers below correct exactly that.

// isAlias reports whether ref is a valid sha512 digest (the one non-canonical algorithm the spec names).
func isAlias(ref string) bool {
	if !strings.HasPrefix(ref, "sha512:") { // cheap test first: this runs on every blob request
		return false
	}
	d, err := digest.Parse(ref)
	return err == nil && d.Algorithm() != digest.Canonical
}

// renameDigest rewrites the canonical digest distribution put in the response headers to the address asked for.
func renameDigest(hdr http.Header, addr digest.Digest) {
	canonical := hdr.Get("Docker-Content-Digest")
	if canonical == "" {
		return
	}
	hdr.Set("Docker-Content-Digest", addr.String())
	for _, k := range []string{"Etag", "Location"} {
		if v := hdr.Get(k); v != "" {
			hdr.Set(k, strings.Replace(v, canonical, addr.String(), 1))
		}
	}
}

// getBlobAlias serves a blob GET or HEAD by sha512 through distribution, naming the sha512 digest in the response.
func (h *Handler) getBlobAlias(w http.ResponseWriter, r *http.Request, addr digest.Digest) {
	h.next.ServeHTTP(&hookWriter{ResponseWriter: w, onHeader: func(code int, hdr http.Header) error {
		if code == http.StatusOK || code == http.StatusPartialContent || code == http.StatusNotModified {
			renameDigest(hdr, addr)
		}
		return nil
	}}, r)
}

// finishUploadAlias completes an upload with ?digest=sha512:... through distribution, naming the sha512 digest.
func (h *Handler) finishUploadAlias(w http.ResponseWriter, r *http.Request, addr digest.Digest) {
	h.next.ServeHTTP(&hookWriter{ResponseWriter: w, onHeader: func(code int, hdr http.Header) error {
		if code == http.StatusCreated {
			renameDigest(hdr, addr)
		}
		return nil
	}}, r)
}

// mountAlias mounts a blob by its sha512 address: distribution mounts the sha256 content the source repository links
// the address to, then the address is linked in the target too. Without a source, or when the source does not link
// the address, the mount parameters are dropped and distribution starts a plain upload (202), as the spec allows.
func (h *Handler) mountAlias(w http.ResponseWriter, r *http.Request, target string, addr digest.Digest, from string) {
	q := r.URL.Query()
	r = r.WithContext(r.Context()) // a copy whose URL can be rewritten
	r.URL = cloneURL(r.URL)
	if from != "" && h.ac != nil && !h.allowed(r, from, "pull") {
		h.next.ServeHTTP(w, r) // distribution refuses it as it refuses any mount from a repository one cannot pull
		return
	}
	var canonical digest.Digest
	if _, err := reference.WithName(from); err == nil {
		canonical, _ = h.readLink(r.Context(), storagelayout.LayerLink(from, addr))
	}
	if canonical == "" || isAlias(canonical.String()) {
		q.Del("mount")
		q.Del("from")
		r.URL.RawQuery = q.Encode()
		h.next.ServeHTTP(w, r)
		return
	}
	q.Set("mount", canonical.String())
	r.URL.RawQuery = q.Encode()
	h.next.ServeHTTP(&hookWriter{ResponseWriter: w, onHeader: func(code int, hdr http.Header) error {
		if code != http.StatusCreated {
			return nil
		}
		if err := h.driver.PutContent(r.Context(), storagelayout.LayerLink(target, addr), []byte(canonical.String())); err != nil {
			return err
		}
		renameDigest(hdr, addr)
		return nil
	}}, r)
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}
