package satoken

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/internal/satokentest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{name: "off", cfg: Config{}},
		{name: "in cluster", cfg: Config{Audience: "registry-kit"}},
		{name: "explicit keys", cfg: Config{Audience: "registry-kit", Issuer: "https://k", JWKSURL: "https://k/openid/v1/jwks"}},
		{name: "flags without audience", cfg: Config{Issuer: "https://k"}, want: "service-account-audience: required"},
		{name: "two audiences", cfg: Config{Audience: "a,b"}, want: `"a,b" must be one audience`},
		{name: "keys without issuer", cfg: Config{Audience: "a", JWKSURL: "https://k/jwks"}, want: "service-account-issuer: required with service-account-jwks-url"},
		{name: "bad keys URL", cfg: Config{Audience: "a", Issuer: "i", JWKSURL: "k/jwks"}, want: `service-account-jwks-url: "k/jwks" is not an http(s) URL`},
		{name: "CA without URL", cfg: Config{Audience: "a", JWKSCAFile: "/ca.pem"}, want: "service-account-jwks-ca: only applies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConfigDiscovery: with a kubeconfig and no issuer, the issuer comes from the API server's discovery document
// and the keys from its /openid/v1/jwks.
func TestConfigDiscovery(t *testing.T) {
	is := satokentest.New(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+is.URL()+`"}}]
users: [{name: u, user: {token: api-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := Config{Audience: testAudience, Kubeconfig: kubeconfig}.NewVerifier(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Options().Issuer; got != testIssuer {
		t.Errorf("issuer %q, want %q from discovery", got, testIssuer)
	}
	id, err := v.Verify(context.Background(), is.Token("team-a", "default"))
	if err != nil || id.User() != "system:serviceaccount:team-a:default" {
		t.Fatalf("Verify: %v, %v", id, err)
	}
}

func TestConfigNotInCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := Config{Audience: "a"}.NewVerifier(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "give --service-account-kubeconfig") {
		t.Fatalf("error %v", err)
	}
}
