package cli

import (
	"encoding/json"
	"strings"
	"testing"

	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/registry-kit/registry-kit/auth/satoken"
)

func TestCredentialProviderServiceAccountTokens(t *testing.T) {
	stdout, _, err := runCLI(t, "", "credential-provider", "config", "--match", "127.0.0.1:5000", "--service-account-tokens", "--audience", "rk-prod")
	if err != nil {
		t.Fatal(err)
	}
	p := strictProviderConfig(t, stdout).Providers[0]
	if ta := p.TokenAttributes; ta == nil || ta.ServiceAccountTokenAudience != "rk-prod" || ta.CacheType != "Token" {
		t.Errorf("tokenAttributes %+v", ta)
	}
	if got := strings.Join(p.Args, " "); got != "credential-provider --service-account-tokens --cache-duration 10m0s" {
		t.Errorf("args %q", got)
	}
	if _, _, err := runCLI(t, "", "credential-provider", "config", "--match", "r:1", "--service-account-tokens", "--credentials-file", "/x"); err == nil ||
		!strings.Contains(err.Error(), "--credentials-file: not used with --service-account-tokens") {
		t.Errorf("--credentials-file with tokens: %v", err)
	}

	// The plugin, as the kubelet runs it with that config.
	const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOmRlZmF1bHQifQ.c2ln" // fake, no exp
	req := `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"127.0.0.1:5000/team-a/app","serviceAccountToken":"` + token + `"}`
	stdout, _, err = runCLI(t, req, p.Args...)
	if err != nil {
		t.Fatal(err)
	}
	var resp credentialproviderv1.CredentialProviderResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatal(err)
	}
	if a := resp.Auth["127.0.0.1:5000"]; a.Username != satoken.Username || a.Password != token || len(resp.Auth) != 1 {
		t.Errorf("auth %+v", resp.Auth)
	}
	_, _, err = runCLI(t, strings.Replace(req, token, "", 1), p.Args...)
	if err == nil || !strings.Contains(err.Error(), "no serviceAccountToken") {
		t.Errorf("request without a token: %v", err)
	}
	if _, _, err := runCLI(t, req, "credential-provider", "--service-account-tokens", "--config", "/x"); err == nil || !strings.Contains(err.Error(), "--config: not used") {
		t.Errorf("--config with tokens: %v", err)
	}
}

func TestDeployServiceAccountAuthFlags(t *testing.T) {
	changed := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, x := range names {
				if x == n {
					return true
				}
			}
			return false
		}
	}
	off := serviceAccountAuthFlags{audience: "registry-kit"}
	if sa, err := off.toOptions(changed()); sa != nil || err != nil {
		t.Errorf("off: %v, %v", sa, err)
	}
	if _, err := off.toOptions(changed("service-account-issuer")); err == nil || !strings.Contains(err.Error(), "--service-account-issuer: needs --service-account-auth") {
		t.Errorf("issuer without auth: %v", err)
	}
	on := serviceAccountAuthFlags{enabled: true, audience: "a,b"}
	if _, err := on.toOptions(changed("service-account-auth")); err == nil || !strings.Contains(err.Error(), "one audience") {
		t.Errorf("two audiences: %v", err)
	}
	on.audience = "registry-kit"
	if sa, err := on.toOptions(changed("service-account-auth")); err != nil || sa.Audience != "registry-kit" {
		t.Errorf("on: %+v, %v", sa, err)
	}
}
