package credprovider

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	"k8s.io/kubelet/pkg/apis/credentialprovider"

	"github.com/registry-kit/registry-kit/auth/satoken"
)

func TestGenerateConfigServiceAccountTokens(t *testing.T) {
	cfg, err := GenerateConfig(ConfigOptions{MatchImages: []string{"127.0.0.1:5000"}, CacheDuration: DefaultCacheDuration,
		ServiceAccountTokens: true, Audience: "registry-kit"})
	if err != nil {
		t.Fatal(err)
	}
	decoded := checkGolden(t, cfg, "service-account-tokens.yaml")
	ta := decoded.Providers[0].TokenAttributes
	if ta == nil || ta.ServiceAccountTokenAudience != "registry-kit" || ta.CacheType != kubeletconfigv1.TokenServiceAccountTokenCacheType ||
		ta.RequireServiceAccount == nil || !*ta.RequireServiceAccount {
		t.Errorf("tokenAttributes %+v: want audience registry-kit, cacheType Token, requireServiceAccount true", ta)
	}
	if err := Validate(decoded); err != nil {
		t.Errorf("kubelet validation: %v", err)
	}
}

func TestValidateTokenAttributes(t *testing.T) {
	yes, no := true, false
	base := func(f func(*kubeletconfigv1.CredentialProvider)) *kubeletconfigv1.CredentialProviderConfig {
		cfg, err := GenerateConfig(ConfigOptions{MatchImages: []string{"r:1"}, ServiceAccountTokens: true})
		if err != nil {
			t.Fatal(err)
		}
		f(&cfg.Providers[0])
		return cfg
	}
	tests := []struct {
		name string
		cfg  *kubeletconfigv1.CredentialProviderConfig
		want string
	}{
		{"no audience", base(func(p *kubeletconfigv1.CredentialProvider) { p.TokenAttributes.ServiceAccountTokenAudience = "" }), "serviceAccountTokenAudience: required"},
		{"no cache type", base(func(p *kubeletconfigv1.CredentialProvider) { p.TokenAttributes.CacheType = "" }), `cacheType "": want Token or ServiceAccount`},
		{"requireServiceAccount unset", base(func(p *kubeletconfigv1.CredentialProvider) { p.TokenAttributes.RequireServiceAccount = nil }), "requireServiceAccount: required"},
		{"required keys without a service account", base(func(p *kubeletconfigv1.CredentialProvider) {
			p.TokenAttributes.RequireServiceAccount = &no
			p.TokenAttributes.RequiredServiceAccountAnnotationKeys = []string{"a"}
		}), "needs requireServiceAccount: true"},
		{"key in both lists", base(func(p *kubeletconfigv1.CredentialProvider) {
			p.TokenAttributes.RequireServiceAccount = &yes
			p.TokenAttributes.RequiredServiceAccountAnnotationKeys = []string{"a"}
			p.TokenAttributes.OptionalServiceAccountAnnotationKeys = []string{"a"}
		}), `"a" is already in requiredServiceAccountAnnotationKeys`},
		{"old plugin API", base(func(p *kubeletconfigv1.CredentialProvider) {
			p.APIVersion = "credentialprovider.kubelet.k8s.io/v1beta1"
		}), "tokenAttributes: only supported with apiVersion credentialprovider.kubelet.k8s.io/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := GenerateConfig(ConfigOptions{MatchImages: []string{"r"}, Audience: "x"}); err == nil || !strings.Contains(err.Error(), "only applies with service account tokens") {
		t.Errorf("audience without tokens: %v", err)
	}
}

// fakeJWT is shaped like a ServiceAccount token with the given subject and expiry (unsigned: the plugin does not
// verify, the registry does).
func fakeJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, exp.Unix()))) + ".c2ln"
}

func tokenRequest(image, token string) string {
	return `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"` + image +
		`","serviceAccountToken":"` + token + `","serviceAccountAnnotations":{}}`
}

// TestServeServiceAccountToken: each pod's answer carries its own token and nothing else; the kubelet caches it
// per token (cacheType Token in the config) for no longer than the token lives; so one ServiceAccount's
// credential never serves another's pull.
func TestServeServiceAccountToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	teamA := fakeJWT("system:serviceaccount:team-a:default", now.Add(time.Hour))
	teamB := fakeJWT("system:serviceaccount:team-b:default", now.Add(5*time.Minute))
	answer := func(t *testing.T, image, token string, maxCache time.Duration) *credentialprovider.CredentialProviderResponse {
		t.Helper()
		var out bytes.Buffer
		if err := ServeServiceAccountToken(strings.NewReader(tokenRequest(image, token)), &out, maxCache, now); err != nil {
			t.Fatal(err)
		}
		return kubeletDecode(t, out.Bytes())
	}
	a := answer(t, "127.0.0.1:5000/team-a/app:v1", teamA, 10*time.Minute)
	b := answer(t, "127.0.0.1:5000/team-a/app:v1", teamB, 10*time.Minute)
	wantA := map[string]credentialprovider.AuthConfig{"127.0.0.1:5000": {Username: satoken.Username, Password: teamA}}
	wantB := map[string]credentialprovider.AuthConfig{"127.0.0.1:5000": {Username: satoken.Username, Password: teamB}}
	if diff := cmp.Diff(wantA, a.Auth); diff != "" {
		t.Errorf("team-a answer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantB, b.Auth); diff != "" {
		t.Errorf("team-b answer, same image (-want +got):\n%s", diff)
	}
	if a.CacheKeyType != credentialprovider.RegistryPluginCacheKeyType {
		t.Errorf("cacheKeyType %q", a.CacheKeyType)
	}
	if got := a.CacheDuration.Duration; got != 10*time.Minute {
		t.Errorf("team-a cache duration %s, want the 10m maximum (the token lives 1h)", got)
	}
	if got := b.CacheDuration.Duration; got != 5*time.Minute-tokenExpiryMargin {
		t.Errorf("team-b cache duration %s, want %s: never past the token's expiry", got, 5*time.Minute-tokenExpiryMargin)
	}
	if got := answer(t, "127.0.0.1:5000/x", fakeJWT("s", now.Add(10*time.Second)), time.Hour).CacheDuration.Duration; got != 0 {
		t.Errorf("a token about to expire is cached for %s, want 0", got)
	}
	if got := answer(t, "127.0.0.1:5000/x", "opaque-token", time.Hour).CacheDuration.Duration; got != 0 {
		t.Errorf("a token without a readable expiry is cached for %s, want 0", got)
	}

	var out bytes.Buffer
	err := ServeServiceAccountToken(strings.NewReader(request("127.0.0.1:5000/app")), &out, time.Minute, now)
	if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "--service-account-tokens") || out.Len() != 0 {
		t.Errorf("request without a token: %v (wrote %d bytes)", err, out.Len())
	}
	err = ServeServiceAccountToken(strings.NewReader(tokenRequest("Not An Image", teamA)), &out, time.Minute, now)
	if !errors.Is(err, ErrBadRequest) || strings.Contains(err.Error(), teamA) {
		t.Errorf("bad image: %v", err)
	}
}
