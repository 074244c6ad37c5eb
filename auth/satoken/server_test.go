package satoken_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-kit/registry-kit/auth/satoken"
	"github.com/registry-kit/registry-kit/internal/registrytest"
	"github.com/registry-kit/registry-kit/internal/satokentest"
	"github.com/registry-kit/registry-kit/registry"
)

const adminPassword = "admin-Pa55word" // fake

// TestServeServiceAccountTokens: a real registry-kit serve with an access policy accepts ServiceAccount tokens
// beside its htpasswd users. A team-a token pulls team-a/app (the policy grants namespace team-a pull on
// team-a/**), and gets 403 DENIED pulling team-b/app or pushing; forged, expired and wrong-audience tokens get 401;
// htpasswd users work as before.
func TestServeServiceAccountTokens(t *testing.T) {
	issuer := satokentest.New(t)
	host := registrytest.Start(t, registrytest.Options{
		Users: map[string]string{"admin": adminPassword},
		Policy: `rules:
  - users: [admin]
    repos: ["**"]
    actions: ["*"]
  - namespaces: [team-a]
    repos: ["team-a/**"]
    actions: [pull]
`,
		Configure: func(c *registry.Config) {
			c.ServiceAccountTokens = satoken.Config{Audience: satokentest.Audience, Issuer: satokentest.IssuerURL,
				JWKSURL: issuer.URL() + satokentest.JWKSPath}
		},
	}).Host
	admin := &authn.Basic{Username: "admin", Password: adminPassword}
	for _, repo := range []string{"team-a/app", "team-b/app"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(mustRef(t, host+"/"+repo+":v1"), img, remote.WithAuth(admin)); err != nil {
			t.Fatalf("htpasswd user pushing %s: %v", repo, err)
		}
	}
	now := time.Now()
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	expired := satokentest.PodClaims("team-a", "default", now.Add(-3*time.Hour))
	otherAudience := satokentest.PodClaims("team-a", "default", now)
	otherAudience.Audience = jwt.Audience{"https://kubernetes.default.svc.cluster.local"}
	sa := func(token string) authn.Authenticator {
		return &authn.Basic{Username: satoken.Username, Password: token}
	}

	tests := []struct {
		name       string
		auth       authn.Authenticator
		repo       string
		push       bool
		wantStatus int // 0: success
	}{
		{name: "team-a token pulls team-a/app", auth: sa(issuer.Token("team-a", "default")), repo: "team-a/app"},
		{name: "another team-a ServiceAccount pulls team-a/app", auth: sa(issuer.Token("team-a", "builder")), repo: "team-a/app"},
		{name: "team-a token pulling team-b/app: 403", auth: sa(issuer.Token("team-a", "default")), repo: "team-b/app", wantStatus: http.StatusForbidden},
		{name: "team-b token pulling team-a/app: 403", auth: sa(issuer.Token("team-b", "default")), repo: "team-a/app", wantStatus: http.StatusForbidden},
		{name: "team-a token pushing team-a/app: 403", auth: sa(issuer.Token("team-a", "default")), repo: "team-a/app", push: true, wantStatus: http.StatusForbidden},
		{name: "forged token: 401", auth: sa(issuer.Sign("rsa-1", forger, satokentest.PodClaims("team-a", "default", now))), repo: "team-a/app", wantStatus: http.StatusUnauthorized},
		{name: "expired token: 401", auth: sa(issuer.Sign("rsa-1", nil, expired)), repo: "team-a/app", wantStatus: http.StatusUnauthorized},
		{name: "token for another audience: 401", auth: sa(issuer.Sign("rsa-1", nil, otherAudience)), repo: "team-a/app", wantStatus: http.StatusUnauthorized},
		{name: "a password as the token: 401", auth: sa(adminPassword), repo: "team-a/app", wantStatus: http.StatusUnauthorized},
		{name: "htpasswd user still pulls", auth: admin, repo: "team-b/app"},
		{name: "htpasswd user still pushes", auth: admin, repo: "team-a/app", push: true},
		{name: "wrong htpasswd password: 401", auth: &authn.Basic{Username: "admin", Password: "wrong"}, repo: "team-a/app", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustRef(t, host+"/"+tt.repo+":v1")
			var err error
			if tt.push {
				var img, _ = random.Image(64, 1)
				err = remote.Write(mustRef(t, host+"/"+tt.repo+":pushed"), img, remote.WithAuth(tt.auth))
			} else {
				err = pull(ref, tt.auth)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("want success: %v", err)
				}
				return
			}
			var te *transport.Error
			if !errors.As(err, &te) || te.StatusCode != tt.wantStatus {
				t.Fatalf("want HTTP %d, got %v", tt.wantStatus, err)
			}
		})
	}
}

// pull reads the manifest, config and every layer, as a kubelet's runtime does.
func pull(ref name.Reference, auth authn.Authenticator) error {
	img, err := remote.Image(ref, remote.WithAuth(auth))
	if err != nil {
		return err
	}
	if _, err := img.ConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		rc.Close()
	}
	return nil
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
