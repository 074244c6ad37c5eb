package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/registry-kit/registry-kit/auth/satoken"
	"github.com/registry-kit/registry-kit/registry"
)

// serviceAccountKeys are serve's keys for Kubernetes ServiceAccount token auth (auth/satoken).
var serviceAccountKeys = []string{
	"service-account-audience", "service-account-issuer", "service-account-jwks-url", "service-account-jwks-ca",
	"service-account-kubeconfig", "service-account-cache-ttl",
}

func addServiceAccountFlags(f *pflag.FlagSet) {
	f.String("service-account-audience", "", "also accept Kubernetes ServiceAccount tokens issued for this audience, as the password of user "+
		satoken.Username+" (what `credential-provider --service-account-tokens` returns); needs --access-policy")
	f.String("service-account-issuer", "", "the API server's --service-account-issuer (default: read from the API server's OIDC discovery document)")
	f.String("service-account-jwks-url", "", "URL of the issuer's JSON Web Key Set (default: the API server's "+satoken.JWKSPath+", with the kubeconfig's or the pod's credentials)")
	f.String("service-account-jwks-ca", "", "PEM CA bundle trusted for --service-account-jwks-url")
	f.String("service-account-kubeconfig", "", "kubeconfig to reach the API server for the issuer's keys (default: in-cluster credentials)")
	f.Duration("service-account-cache-ttl", 0, "how long a verified token is remembered at most (default 2m, never past its expiry)")
}

func serviceAccountConfig(str func(string) string, duration func(string) time.Duration) satoken.Config {
	return satoken.Config{
		Audience:   str("service-account-audience"),
		Issuer:     str("service-account-issuer"),
		JWKSURL:    str("service-account-jwks-url"),
		JWKSCAFile: str("service-account-jwks-ca"),
		Kubeconfig: str("service-account-kubeconfig"),
		CacheTTL:   duration("service-account-cache-ttl"),
	}
}

func printServiceAccountConfig(m map[string]any, r registry.Config) {
	sa := r.ServiceAccountTokens
	m["service-account-audience"], m["service-account-issuer"] = sa.Audience, sa.Issuer
	m["service-account-jwks-url"], m["service-account-jwks-ca"] = sa.JWKSURL, sa.JWKSCAFile
	m["service-account-kubeconfig"], m["service-account-cache-ttl"] = sa.Kubeconfig, sa.CacheTTL.String()
}
