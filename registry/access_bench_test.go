package registry

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// BenchmarkManifestHead compares an authenticated manifest HEAD with and without an access policy against the same
// request without authentication (PERFORMANCE.md's P1: authenticated >= 0.9x no-auth).
//
//	go test -run '^$' -bench ManifestHead -benchtime 3s ./registry
func BenchmarkManifestHead(b *testing.B) {
	for _, mode := range []string{"no-auth", "auth", "auth+policy"} {
		b.Run(mode, func(b *testing.B) {
			t := &testing.T{}
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
				policy := "rules:\n  - users: [ci]\n    repos: ['team-a/**', 'team-b/*']\n    actions: [pull, push]\n  - users: ['*']\n    repos: ['public/**']\n    actions: [pull]\n"
				if err := os.WriteFile(cfg.AccessPolicy, []byte(policy), 0o600); err != nil {
					b.Fatal(err)
				}
			}
			ts := startServer(t, cfg)
			defer ts.stop()
			ps := &policyServer{testServer: ts}
			if err := remote.Write(ps.ref(t, "team-a/app:1"), mustRandom(t), remote.WithAuth(auth)); err != nil {
				b.Fatal(err)
			}
			url := ts.url + "/v2/team-a/app/manifests/1"
			warm, _ := http.NewRequest(http.MethodHead, url, nil)
			warm.SetBasicAuth("ci", "ci-pw")
			if resp, err := http.DefaultClient.Do(warm); err == nil {
				resp.Body.Close() // one bcrypt, then the verified-credential cache answers
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodHead, url, nil)
					req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
					if !cfg.NoAuth {
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
			if strings.Contains(ts.logs.String(), "ci-pw") {
				b.Error("password in logs")
			}
		})
	}
}
