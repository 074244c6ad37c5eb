package registry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/registry-kit/registry-kit/registry/gc"
)

type recorded struct {
	got    [][]digest.Digest
	fenced bool
}

func (r *recorded) Record(_ context.Context, ds []digest.Digest) error {
	r.got = append(r.got, ds)
	if r.fenced {
		return gc.ErrFenced
	}
	return nil
}

func TestGCHooks(t *testing.T) {
	layer, cfg := digest.FromString("layer"), digest.FromString("config")
	manifest := `{"schemaVersion":2,"config":{"digest":"` + cfg.String() + `","size":6},"layers":[{"digest":"` + layer.String() + `","size":5}]}`
	md := digest.FromString(manifest)
	tests := []struct {
		name, method, target, body string
		fenced                     bool
		want                       []digest.Digest // nil: not journaled
		wantCode                   int
	}{
		{name: "manifest put by tag", method: http.MethodPut, target: "/v2/a/b/manifests/v1", body: manifest,
			want: []digest.Digest{md, cfg, layer}, wantCode: 200},
		{name: "manifest put by digest", method: http.MethodPut, target: "/v2/a/manifests/" + md.String(), body: manifest,
			want: []digest.Digest{md, cfg, layer, md}, wantCode: 200},
		{name: "upload completion", method: http.MethodPut, target: "/v2/a/blobs/uploads/u1?digest=" + layer.String(),
			want: []digest.Digest{layer}, wantCode: 200},
		{name: "mount", method: http.MethodPost, target: "/v2/a/blobs/uploads/?mount=" + layer.String() + "&from=b",
			want: []digest.Digest{layer}, wantCode: 200},
		{name: "chunk", method: http.MethodPatch, target: "/v2/a/blobs/uploads/u1", body: "data", wantCode: 200},
		{name: "upload start", method: http.MethodPost, target: "/v2/a/blobs/uploads/", wantCode: 200},
		{name: "pull", method: http.MethodGet, target: "/v2/a/manifests/v1", wantCode: 200},
		{name: "fenced write", method: http.MethodPut, target: "/v2/a/manifests/v1", body: manifest, fenced: true,
			want: []digest.Digest{md, cfg, layer}, wantCode: 503},
		{name: "reads pass the fence", method: http.MethodGet, target: "/v2/a/manifests/v1", fenced: true, wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorded{fenced: tt.fenced}
			var seen string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				seen = string(b)
				if providerFrom(r.Context()) == nil {
					t.Error("no blob descriptor cache in the request context")
				}
			})
			w := httptest.NewRecorder()
			hooks := gcHooks(rec, newBlobCache(nil), next)
			hooks.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)))
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			var got []digest.Digest
			if len(rec.got) > 0 {
				got = rec.got[0]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("journaled (-want +got):\n%s", diff)
			}
			if tt.wantCode == 503 {
				if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"UNAVAILABLE"`) {
					t.Errorf("fenced answer: Retry-After %q, body %s", w.Header().Get("Retry-After"), w.Body)
				}
			} else if seen != tt.body {
				t.Errorf("distribution got body %q, want %q", seen, tt.body)
			}
		})
	}
}
