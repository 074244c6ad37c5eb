package manifestcache

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/access"
)

// MaxManifestBytes is the largest manifest body cached: distribution's limit on a manifest PUT.
const MaxManifestBytes = 4 << 20

// Options configure a Handler.
type Options struct {
	// MaxBytes bounds the memory the entries take (bodies, headers, keys and a fixed overhead each). Required.
	MaxBytes int64
	// TTL is how long an entry may be served after it was read; zero means until invalidated. Set it when another
	// process can change the storage without this one hearing of it.
	TTL time.Duration
	// Authorize checks that the request may pull repo, before the cache answers or passes it on, and returns its
	// decision; a request it refuses goes to next, which answers the challenge or refusal. Nil authorizes every
	// request.
	Authorize func(r *http.Request, repo string) (decision any, ok bool)
	// PassOn, when set, returns the request to give next after Authorize decided (carrying the decision, so next
	// need not authenticate again). It runs only for requests the cache does not answer.
	PassOn func(r *http.Request, decision any) *http.Request
	// BlobHeads caches blob HEAD answers too, for storage where each costs several round trips (object storage):
	// a cached one costs none. They are dropped with the repository's manifests, and by a blob DELETE.
	BlobHeads bool
	// Publish is called after a write through this process invalidated repo locally ("" for everything), so the
	// other replicas can drop theirs; see Peers. Nil for a single process.
	Publish func(ctx context.Context, repo string)
	// Registerer receives the hit, miss and size metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	now        func() time.Time // tests
}

// Handler answers manifest GET and HEAD requests from the cache and passes everything else to next, watching the
// writes that pass to invalidate what they change.
type Handler struct {
	next      http.Handler
	store     *store
	authorize func(r *http.Request, repo string) (any, bool)
	passOn    func(r *http.Request, decision any) *http.Request
	publish   func(ctx context.Context, repo string)
	blobHeads bool
	log       *slog.Logger
	// live is false while another replica's writes may go unheard (the Redis subscription is down): the cache
	// neither answers nor fills then.
	live    atomic.Bool
	metrics *metrics
}

// New returns a Handler in front of next.
func New(next http.Handler, o Options) *Handler {
	if o.now == nil {
		o.now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{next: next, store: newStore(o.MaxBytes, o.TTL, o.now), authorize: o.Authorize, passOn: o.PassOn, publish: o.Publish,
		blobHeads: o.BlobHeads, log: o.Logger}
	h.metrics = newMetrics(o.Registerer, h.store)
	h.live.Store(true)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	repo, kind, ok := parsePath(r)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if kind == kindManifest || r.Method == http.MethodDelete {
			h.write(w, r, repo)
			return
		}
		h.next.ServeHTTP(w, r)
		return
	}
	if !h.cacheable(r, kind) {
		h.next.ServeHTTP(w, r)
		return
	}
	var decision any
	if h.authorize != nil {
		var allowed bool
		if decision, allowed = h.authorize(r, repo); !allowed {
			h.next.ServeHTTP(w, h.passOnRequest(r, decision))
			return
		}
	}
	if !h.live.Load() {
		h.metrics.onBypass()
		h.next.ServeHTTP(w, h.passOnRequest(r, decision))
		return
	}
	k := key{method: r.Method, path: r.URL.Path, accept: accept(r.Header["Accept"])}
	if e, ok := h.store.get(k); ok {
		h.metrics.onHit()
		serve(w, r, e)
		return
	}
	h.metrics.onMiss()
	r = h.passOnRequest(r, decision)
	st := h.store.begin(repo)
	rec := &recorder{ResponseWriter: w}
	h.next.ServeHTTP(rec, r)
	if e, ok := rec.entry(r.Method); ok && h.live.Load() {
		e.key, e.repo, e.stamp = k, repo, st
		h.store.put(e)
	}
}

func (h *Handler) passOnRequest(r *http.Request, decision any) *http.Request {
	if h.passOn == nil {
		return r
	}
	return h.passOn(r, decision)
}

// accept is the key part for the Accept header values; one value (the common case) costs no allocation.
func accept(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values, "\n")
}

// cacheable reports whether a GET or HEAD may be answered from the cache: manifests, and blob HEADs when BlobHeads
// is set, without a query or conditional or range headers (distribution's answer to those depends on more than the
// path: its 304 on the digest a tag resolves to now).
func (h *Handler) cacheable(r *http.Request, kind pathKind) bool {
	if kind == kindBlob && !(h.blobHeads && r.Method == http.MethodHead) {
		return false
	}
	if r.URL.RawQuery != "" {
		return false
	}
	for _, k := range [...]string{"If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"} {
		if len(r.Header[k]) > 0 {
			return false
		}
	}
	return true
}

// write passes a request that may change repo's manifests or tags to next, dropping repo's entries before (no
// answer from the cache while it runs) and after (no response read meanwhile is kept), then tells the peers.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, repo string) {
	h.store.invalidate(repo)
	defer func() {
		h.store.invalidate(repo)
		if h.publish != nil {
			h.publish(context.WithoutCancel(r.Context()), repo)
		}
	}()
	h.next.ServeHTTP(w, r)
}

// Invalidate drops the entries of repository repo; code that changes storage other than through the HTTP API (a
// garbage collector) calls it, or InvalidateAll, after each change. It does not tell the peers.
func (h *Handler) Invalidate(repo string) { h.store.invalidate(repo) }

// InvalidateAll drops every entry, and tells the peers to.
func (h *Handler) InvalidateAll(ctx context.Context) {
	h.store.invalidateAll()
	if h.publish != nil {
		h.publish(ctx, "")
	}
}

// Stats are a Handler's counts since it was created.
type Stats struct {
	Hits, Misses, Bypassed uint64 // manifest GETs and HEADs answered from the cache, read and kept, passed untrusted
	Bytes                  int64  // memory the entries account for
	Entries                int
}

// Stats returns the counts so far.
func (h *Handler) Stats() Stats {
	b, n := h.store.usage()
	return Stats{Hits: h.metrics.hits.Load(), Misses: h.metrics.misses.Load(), Bypassed: h.metrics.bypassed.Load(),
		Bytes: b, Entries: n}
}

// Live reports whether the cache answers requests now (with Peers: its subscription is confirmed).
func (h *Handler) Live() bool { return h.live.Load() }

// setLive turns answering from the cache on or off; turning it on starts from an empty cache.
func (h *Handler) setLive(live bool) {
	if live {
		h.store.invalidateAll()
	} else {
		h.store.epoch.Add(1) // responses being read now are not kept
	}
	h.live.Store(live)
}

// serve writes a stored response.
func serve(w http.ResponseWriter, r *http.Request, e *entry) {
	dst := w.Header()
	for k, v := range e.header {
		dst[k] = v // shared slices: net/http only reads them
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

type pathKind int

const (
	kindManifest pathKind = iota + 1
	kindBlob
)

// parsePath names the repository of a manifest or blob request as distribution's router does (access.Route); ok is
// false for every other route.
func parsePath(r *http.Request) (repo string, kind pathKind, ok bool) {
	if !strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/blobs/") {
		return "", 0, false // the common case of the other routes, without the router
	}
	route, repo, ok := access.Route(r)
	switch {
	case !ok || repo == "":
		return "", 0, false
	case route == v2.RouteNameManifest:
		return repo, kindManifest, true
	case route == v2.RouteNameBlob:
		return repo, kindBlob, true
	}
	return "", 0, false
}

// recorder passes a response through and keeps a copy of a 200 manifest response small enough to cache.
type recorder struct {
	http.ResponseWriter
	code     int
	header   http.Header // snapshot at WriteHeader
	body     bytes.Buffer
	tooLarge bool
}

func (rc *recorder) WriteHeader(code int) {
	if rc.code == 0 {
		rc.code = code
		if code == http.StatusOK {
			rc.header = rc.ResponseWriter.Header().Clone()
		}
	}
	rc.ResponseWriter.WriteHeader(code)
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.code == 0 {
		rc.WriteHeader(http.StatusOK)
	}
	if rc.code == http.StatusOK && !rc.tooLarge {
		if rc.body.Len()+len(b) > MaxManifestBytes {
			rc.tooLarge, rc.body = true, bytes.Buffer{}
		} else {
			rc.body.Write(b)
		}
	}
	return rc.ResponseWriter.Write(b)
}

func (rc *recorder) Flush() {
	if f, ok := rc.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rc *recorder) Unwrap() http.ResponseWriter { return rc.ResponseWriter }

// entry is the response as an entry, if it is a complete manifest response: 200, with a digest, and (for GET) the
// whole body its Content-Length announced.
func (rc *recorder) entry(method string) (*entry, bool) {
	if rc.code != http.StatusOK || rc.tooLarge || rc.header.Get("Docker-Content-Digest") == "" {
		return nil, false
	}
	n, err := strconv.Atoi(rc.header.Get("Content-Length"))
	if err != nil || (method == http.MethodGet && n != rc.body.Len()) || (method == http.MethodHead && rc.body.Len() != 0) {
		return nil, false
	}
	return &entry{header: rc.header, body: bytes.Clone(rc.body.Bytes())}, true
}
