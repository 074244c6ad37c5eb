package manifestcache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeRegistry answers manifest GETs with the digest of the tag's current content; PUT sets it. It stands in for
// distribution in the tests of the cache's own decisions; registry's tests run the cache against the real one.
type fakeRegistry struct {
	tags  map[string]string
	reads atomic.Int64
	// duringRead runs in the middle of a GET, after the tag was read.
	duringRead func()
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.tags[r.URL.Path] = string(b)
		w.WriteHeader(http.StatusCreated)
	case http.MethodDelete:
		delete(f.tags, r.URL.Path)
		w.WriteHeader(http.StatusAccepted)
	case http.MethodGet, http.MethodHead:
		f.reads.Add(1)
		v, ok := f.tags[r.URL.Path]
		if !ok {
			http.Error(w, "unknown", http.StatusNotFound)
			return
		}
		if f.duringRead != nil {
			f.duringRead()
		}
		w.Header().Set("Docker-Content-Digest", "d-"+v)
		w.Header().Set("Content-Length", strconv.Itoa(len(v)))
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, v)
		}
	}
}

func do(h http.Handler, method, path, body string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerServesAndInvalidates(t *testing.T) {
	f := &fakeRegistry{tags: map[string]string{"/v2/a/manifests/t": "one", "/v2/b/manifests/t": "bee"}}
	h := New(f, Options{MaxBytes: 1 << 20})
	first := do(h, http.MethodGet, "/v2/a/manifests/t", "", nil)
	second := do(h, http.MethodGet, "/v2/a/manifests/t", "", nil)
	if f.reads.Load() != 1 {
		t.Errorf("%d reads of storage for two GETs, want 1", f.reads.Load())
	}
	if diff := cmp.Diff(first.Header(), second.Header()); diff != "" || first.Body.String() != second.Body.String() {
		t.Errorf("cached response differs (-first +second):\n%s\nbodies %q %q", diff, first.Body, second.Body)
	}
	if got := do(h, http.MethodGet, "/v2/b/manifests/t", "", nil).Body.String(); got != "bee" {
		t.Errorf("b:t = %q, want its own manifest", got)
	}
	do(h, http.MethodPut, "/v2/a/manifests/t", "two", nil)
	if got := do(h, http.MethodGet, "/v2/a/manifests/t", "", nil).Body.String(); got != "two" {
		t.Errorf("after PUT a:t = %q, want two", got)
	}
	// Another Accept header is another entry: distribution's answer depends on it.
	do(h, http.MethodGet, "/v2/a/manifests/t", "", http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}})
	if n := h.Stats().Entries; n != 3 {
		t.Errorf("%d entries, want 3 (a:t twice by Accept, b:t)", n)
	}
	// HEAD is cached without a body.
	do(h, http.MethodHead, "/v2/a/manifests/t", "", nil)
	if w := do(h, http.MethodHead, "/v2/a/manifests/t", "", nil); w.Body.Len() != 0 || w.Header().Get("Content-Length") != "3" {
		t.Errorf("cached HEAD: body %q, Content-Length %q", w.Body, w.Header().Get("Content-Length"))
	}
}

// TestHandlerWriteDuringRead: a GET that read the old manifest while a PUT replaced it does not leave the old one in
// the cache.
func TestHandlerWriteDuringRead(t *testing.T) {
	f := &fakeRegistry{tags: map[string]string{"/v2/a/manifests/t": "one"}}
	h := New(f, Options{MaxBytes: 1 << 20})
	f.duringRead = func() {
		f.duringRead = nil
		do(h, http.MethodPut, "/v2/a/manifests/t", "two", nil)
	}
	if got := do(h, http.MethodGet, "/v2/a/manifests/t", "", nil).Body.String(); got != "one" {
		t.Fatalf("racing GET = %q", got)
	}
	if got := do(h, http.MethodGet, "/v2/a/manifests/t", "", nil).Body.String(); got != "two" {
		t.Errorf("GET after the PUT = %q, want two", got)
	}
}

func TestHandlerAuthorizesEveryRequest(t *testing.T) {
	f := &fakeRegistry{tags: map[string]string{"/v2/a/manifests/t": "one"}}
	h := New(f, Options{MaxBytes: 1 << 20, Authorize: func(r *http.Request, repo string) (any, bool) {
		return nil, r.Header.Get("User") == "ok" && repo == "a"
	}})
	do(h, http.MethodGet, "/v2/a/manifests/t", "", http.Header{"User": {"ok"}})
	// Refused requests go to next (which answers the refusal in the real server; the fake serves anything).
	do(h, http.MethodGet, "/v2/a/manifests/t", "", http.Header{"User": {"bad"}})
	if st := h.Stats(); st.Hits != 0 {
		t.Errorf("an unauthorized request was answered from the cache: %+v", st)
	}
}

func TestHandlerPassesOthers(t *testing.T) {
	f := &fakeRegistry{tags: map[string]string{"/v2/a/manifests/t": "one"}}
	h := New(f, Options{MaxBytes: 1 << 20})
	for _, tc := range []struct {
		name string
		hdr  http.Header
		path string
	}{
		{name: "conditional", path: "/v2/a/manifests/t", hdr: http.Header{"If-None-Match": {`"d-one"`}}},
		{name: "query", path: "/v2/a/manifests/t?x=1"},
		{name: "not plain name", path: "/v2/A/manifests/t"},
		{name: "missing", path: "/v2/a/manifests/nope"},
	} {
		do(h, http.MethodGet, tc.path, "", tc.hdr)
		do(h, http.MethodGet, tc.path, "", tc.hdr)
		if st := h.Stats(); st.Hits != 0 || st.Entries != 0 {
			t.Errorf("%s: cached: %+v", tc.name, st)
		}
	}
}

// TestHandlerBlobHeads: with BlobHeads, blob HEADs are cached until the blob is deleted; blob GETs never are.
func TestHandlerBlobHeads(t *testing.T) {
	const blob = "/v2/a/blobs/sha256:0123"
	for _, on := range []bool{false, true} {
		f := &fakeRegistry{tags: map[string]string{blob: "data"}}
		h := New(f, Options{MaxBytes: 1 << 20, BlobHeads: on})
		do(h, http.MethodHead, blob, "", nil)
		do(h, http.MethodHead, blob, "", nil)
		do(h, http.MethodGet, blob, "", nil)
		do(h, http.MethodGet, blob, "", nil)
		want := int64(4)
		if on {
			want = 3
		}
		if f.reads.Load() != want {
			t.Errorf("BlobHeads %v: %d reads, want %d", on, f.reads.Load(), want)
		}
		do(h, http.MethodDelete, blob, "", nil)
		if w := do(h, http.MethodHead, blob, "", nil); w.Code != http.StatusNotFound {
			t.Errorf("BlobHeads %v: HEAD after DELETE = %d, want 404", on, w.Code)
		}
	}
}
