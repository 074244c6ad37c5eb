package registry

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// BenchmarkManifestHead compares an authenticated manifest HEAD with and without an access policy against the same
// request without authentication (P1: authenticated >= 0.9x no-auth). One server per mode serves every b.N.
//
//	go test -run '^$' -bench ManifestHead -benchtime 3s ./registry
func BenchmarkManifestHead(b *testing.B) {
	for _, mode := range []string{"no-auth", "auth", "auth+policy"} {
		url := benchServer(b, mode)
		b.Run(mode, func(b *testing.B) {
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodHead, url, nil)
					req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
					if mode != "no-auth" {
						req.SetBasicAuth("ci", "ci-pw")
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("HEAD: %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// benchServer starts a registry for mode, pushes team-a/app:1 and warms the verified-credential cache. It returns
// the manifest URL; the server stops when the benchmark ends.
func benchServer(b *testing.B, mode string) string {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir, cfg.LogLevel = "127.0.0.1:0", "", b.TempDir(), "error"
	cfg.NoAuth = mode == "no-auth"
	var auth authn.Authenticator = authn.Anonymous
	if !cfg.NoAuth {
		cfg.Htpasswd = filepath.Join(b.TempDir(), "htpasswd")
		if _, err := htpasswd.AddUser(cfg.Htpasswd, "ci", "ci-pw", 10); err != nil {
			b.Fatal(err)
		}
		auth = &authn.Basic{Username: "ci", Password: "ci-pw"}
	}
	if mode == "auth+policy" {
		cfg.AccessPolicy = filepath.Join(b.TempDir(), "p.yaml")
		policy := "rules:\n  - users: [ci]\n    repos: ['team-a/**', 'team-b/*']\n    actions: [pull, push]\n" +
			"  - users: ['*']\n    repos: ['public/**']\n    actions: [pull]\n"
		if err := os.WriteFile(cfg.AccessPolicy, []byte(policy), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := contextWithCancel()
	go func() { done <- srv.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	base := "http://" + srv.Addr().String()
	ref := mustParseRef(b, srv.Addr().String()+"/team-a/app:1")
	img, err := randomImage()
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		b.Fatal(err)
	}
	return base + "/v2/team-a/app/manifests/1"
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func mustParseRef(b *testing.B, s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func randomImage() (v1.Image, error) { return random.Image(64, 1) }
