package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/registry-kit/registry-kit/registry/storagelayout"
)

// maxManifestSize is distribution's limit on a manifest PUT body (maxManifestBodySize).
const maxManifestSize = 4 << 20

// putManifest passes a manifest PUT to distribution and, once distribution has stored it (201): links a sha512
// address to the stored content, applies ?tag= parameters, records the referrer edge of a manifest with a subject,
// and answers with OCI-Subject and OCI-Tag. distribution authorizes the push before any of that happens.
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt route) {
	body, over, err := readBody(r, maxManifestSize)
	if err != nil {
		serveError(w, errcode.ErrorCodeManifestInvalid.WithDetail(fmt.Sprintf("reading manifest: %v", err)))
		return
	}
	if over {
		h.next.ServeHTTP(w, r) // distribution refuses it with its own error
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	m, err := parseManifest(body, r.Header.Get("Content-Type"))
	if err != nil {
		serveError(w, errcode.ErrorCodeManifestInvalid.WithDetail(err.Error()))
		return
	}
	canonical := digest.Canonical.FromBytes(body)
	addr := canonical // the digest the manifest is pushed as
	alias := false
	var tags []string
	if d, err := digest.Parse(rt.ref); err == nil {
		addr = d
		if d.Algorithm() != digest.Canonical {
			if !d.Algorithm().Available() || d.Algorithm().FromBytes(body) != d {
				serveError(w, errcode.ErrorCodeDigestInvalid.WithDetail(fmt.Sprintf("manifest content does not match digest %s", d)))
				return
			}
			// distribution checks the body against a sha256 reference only; the alias is linked after it stored it.
			alias = true
			r = r.WithContext(r.Context()) // a copy: the access log outside still names the address asked for
			r.URL = cloneURL(r.URL)
			r.URL.Path = strings.TrimSuffix(r.URL.Path, rt.ref) + canonical.String()
			r.URL.RawPath = ""
		}
		if tags, err = tagParams(rt.name, r.URL.Query()["tag"]); err != nil {
			serveError(w, errcode.ErrorCodeTagInvalid.WithDetail(err.Error()))
			return
		}
	}
	hook := func(code int, hdr http.Header) error {
		if code != http.StatusCreated {
			return nil
		}
		ctx := r.Context()
		if alias {
			if err := h.driver.PutContent(ctx, storagelayout.RevisionLink(rt.name, addr), []byte(canonical.String())); err != nil {
				return fmt.Errorf("linking manifest %s to %s: %w", addr, canonical, err)
			}
			hdr.Set("Docker-Content-Digest", addr.String())
			hdr.Set("Location", strings.Replace(hdr.Get("Location"), canonical.String(), addr.String(), 1))
		}
		if err := h.tag(ctx, rt.name, tags, addr); err != nil {
			return err
		}
		for _, t := range tags {
			hdr.Add("OCI-Tag", t)
		}
		if m.Subject != nil {
			if err := h.edges.put(ctx, rt.name, m.Subject.Digest, referrerDescriptor(m, addr, int64(len(body)))); err != nil {
				return err
			}
			hdr.Set("OCI-Subject", m.Subject.Digest.String())
		}
		return nil
	}
	h.next.ServeHTTP(&hookWriter{ResponseWriter: w, onHeader: hook}, r)
}

// tagParams validates the ?tag= values of a manifest PUT by digest.
func tagParams(name string, tags []string) ([]string, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, nil // distribution answers NAME_INVALID
	}
	var errs []error
	for _, t := range tags {
		if _, err := reference.WithTag(named, t); err != nil {
			errs = append(errs, fmt.Errorf("tag parameter %q: %w", t, err))
		}
	}
	return tags, errors.Join(errs...)
}

// tag points each tag at d through distribution's own tag store.
func (h *Handler) tag(ctx context.Context, name string, tags []string, d digest.Digest) error {
	if len(tags) == 0 {
		return nil
	}
	named, err := reference.WithName(name)
	if err != nil {
		return fmt.Errorf("tagging in %q: %w", name, err)
	}
	repo, err := h.ns.Repository(ctx, named)
	if err != nil {
		return fmt.Errorf("tagging in %s: %w", name, err)
	}
	ts := repo.Tags(ctx)
	for _, t := range tags {
		if err := ts.Tag(ctx, t, ocispec.Descriptor{Digest: d}); err != nil {
			return fmt.Errorf("tagging %s as %s in %s: %w", d, t, name, err)
		}
	}
	return nil
}

// deleteManifest passes a manifest DELETE by digest to distribution and, once distribution has deleted it, deletes
// the manifest's other address (its sha256 digest when deleted by sha512, its sha512 alias when deleted by sha256:
// one manifest, one delete) and removes its referrer edges. The subject of a deleted manifest keeps its other
// referrers, and the referrers of a deleted subject stay listed, as the spec says.
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) {
	d, err := digest.Parse(rt.ref)
	if err != nil {
		h.next.ServeHTTP(w, r)
		return
	}
	body, canonical, ok := h.readManifest(r.Context(), rt.name, d)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	var other digest.Digest
	if d.Algorithm() == digest.Canonical {
		if a := digest.SHA512.FromBytes(body); h.exists(r.Context(), storagelayout.RevisionLink(rt.name, a)) {
			other = a
		}
	} else if canonical != d {
		other = canonical
	}
	m, _ := parseManifest(body, "")
	if other == "" && m.Subject == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	hook := func(code int, _ http.Header) error {
		if code != http.StatusAccepted {
			return nil
		}
		if other != "" {
			sub := r.Clone(r.Context())
			sub.URL.Path = strings.TrimSuffix(r.URL.Path, rt.ref) + other.String()
			sub.URL.RawPath, sub.RequestURI, sub.Body = "", "", http.NoBody
			sw := &statusWriter{header: http.Header{}}
			h.next.ServeHTTP(sw, sub)
			if sw.code != http.StatusAccepted && sw.code != http.StatusNotFound {
				h.log.Warn("deleting the other address of a deleted manifest", "repository", rt.name, "digest", other.String(), "status", sw.code)
			}
		}
		if m.Subject != nil {
			for _, ref := range []digest.Digest{d, other} {
				if ref == "" {
					continue
				}
				if err := h.edges.remove(r.Context(), rt.name, m.Subject.Digest, ref); err != nil {
					// The edge is no longer listed: listing checks that the referrer still exists.
					h.log.Warn("removing referrer edge of a deleted manifest", "repository", rt.name, "err", err)
				}
			}
		}
		return nil
	}
	h.next.ServeHTTP(&hookWriter{ResponseWriter: w, onHeader: hook}, r)
}

// statusWriter keeps the status of an internal request and drops its body.
type statusWriter struct {
	header http.Header
	code   int
}

func (s *statusWriter) Header() http.Header { return s.header }
func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}
func (s *statusWriter) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (h *Handler) exists(ctx context.Context, p string) bool {
	_, err := h.driver.Stat(ctx, p)
	return err == nil
}

// readManifest reads the manifest d of repository name from storage, and the canonical digest it is stored under;
// ok is false when it is not there.
func (h *Handler) readManifest(ctx context.Context, name string, d digest.Digest) (body []byte, canonical digest.Digest, ok bool) {
	if _, err := reference.WithName(name); err != nil {
		return nil, "", false
	}
	target, err := h.readLink(ctx, storagelayout.RevisionLink(name, d))
	if err != nil || target.Validate() != nil {
		return nil, "", false
	}
	b, err := h.driver.GetContent(ctx, storagelayout.BlobData(target))
	if err != nil || len(b) > maxManifestSize {
		return nil, "", false
	}
	return b, target, true
}

// readLink reads a distribution link file: a digest.
func (h *Handler) readLink(ctx context.Context, p string) (digest.Digest, error) {
	b, err := h.driver.GetContent(ctx, p)
	if err != nil {
		return "", err
	}
	return digest.Parse(strings.TrimSpace(string(b)))
}
