package credprovider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/auth/satoken"
)

// DefaultAudience is the token audience `credential-provider config --service-account-tokens` and `deploy
// --service-account-auth` use unless told otherwise. It must not be an audience the API server itself accepts.
const DefaultAudience = "registry-kit"

// tokenExpiryMargin is how long before its expiry a token is no longer handed out from the kubelet's cache, so a
// pull that starts with it does not end with a token the registry has begun to refuse.
const tokenExpiryMargin = 30 * time.Second

// tokenAttributes is the kubelet's tokenAttributes for registry-kit: the pod's ServiceAccount token for audience,
// cached per token (cacheType Token: the credential is the token, so it must never serve a pod with another token),
// and only for pods that have a ServiceAccount (requireServiceAccount: every pod but a static one).
func tokenAttributes(audience string) *kubeletconfigv1.ServiceAccountTokenAttributes {
	require := true
	return &kubeletconfigv1.ServiceAccountTokenAttributes{
		ServiceAccountTokenAudience: audience,
		CacheType:                   kubeletconfigv1.TokenServiceAccountTokenCacheType,
		RequireServiceAccount:       &require,
	}
}

// validateTokenAttributes applies the kubelet's rules for tokenAttributes (pkg/credentialprovider/plugin/config.go).
func validateTokenAttributes(path string, p kubeletconfigv1.CredentialProvider) []error {
	ta := p.TokenAttributes
	if ta == nil {
		return nil
	}
	var errs []error
	if p.APIVersion != credentialproviderv1.SchemeGroupVersion.String() {
		errs = append(errs, fmt.Errorf("%s.tokenAttributes: only supported with apiVersion %s", path, credentialproviderv1.SchemeGroupVersion))
	}
	if ta.ServiceAccountTokenAudience == "" || strings.TrimSpace(ta.ServiceAccountTokenAudience) != ta.ServiceAccountTokenAudience {
		errs = append(errs, fmt.Errorf("%s.tokenAttributes.serviceAccountTokenAudience: required, without surrounding spaces", path))
	}
	switch ta.CacheType {
	case kubeletconfigv1.TokenServiceAccountTokenCacheType, kubeletconfigv1.ServiceAccountServiceAccountTokenCacheType:
	default:
		errs = append(errs, fmt.Errorf("%s.tokenAttributes.cacheType %q: want Token or ServiceAccount", path, ta.CacheType))
	}
	if ta.RequireServiceAccount == nil {
		errs = append(errs, fmt.Errorf("%s.tokenAttributes.requireServiceAccount: required", path))
	} else if !*ta.RequireServiceAccount && len(ta.RequiredServiceAccountAnnotationKeys) > 0 {
		errs = append(errs, fmt.Errorf("%s.tokenAttributes.requiredServiceAccountAnnotationKeys: needs requireServiceAccount: true", path))
	}
	seen := map[string]string{}
	for _, l := range []struct {
		name string
		keys []string
	}{{"requiredServiceAccountAnnotationKeys", ta.RequiredServiceAccountAnnotationKeys}, {"optionalServiceAccountAnnotationKeys", ta.OptionalServiceAccountAnnotationKeys}} {
		for _, k := range l.keys {
			if prev, dup := seen[k]; dup {
				errs = append(errs, fmt.Errorf("%s.tokenAttributes.%s: %q is already in %s", path, l.name, k, prev))
			}
			seen[k] = l.name
		}
	}
	return errs
}

// ServeServiceAccountToken answers one CredentialProviderRequest carrying the pod's ServiceAccount token (the
// kubelet sends one when the provider has tokenAttributes): the credential for the image's registry is the token
// itself, as the password of satoken.Username, which `registry-kit serve --service-account-audience` verifies. The
// answer may be cached for at most maxCache and never past the token's expiry (less a margin); a token whose
// expiry cannot be read is not cached at all. Errors never contain the token.
func ServeServiceAccountToken(in io.Reader, out io.Writer, maxCache time.Duration, now time.Time) error {
	req, err := decodeRequest(in)
	if err != nil {
		return err
	}
	resp, err := respondWithToken(req, maxCache, now)
	if err != nil {
		return err
	}
	return writeResponse(out, resp)
}

// ErrNoToken is returned by ServeServiceAccountToken for a request without a ServiceAccount token.
var ErrNoToken = errors.New("the request carries no serviceAccountToken")

func respondWithToken(req *credentialproviderv1.CredentialProviderRequest, maxCache time.Duration, now time.Time) (*credentialproviderv1.CredentialProviderResponse, error) {
	if req.ServiceAccountToken == "" {
		return nil, fmt.Errorf("%w: the kubelet passes the pod's token only when this provider has tokenAttributes in its "+
			"CredentialProviderConfig (`registry-kit credential-provider config --service-account-tokens`) and the kubelet "+
			"supports them (Kubernetes 1.34+, feature gate KubeletServiceAccountTokenForCredentialProviders)", ErrNoToken)
	}
	host, err := dockerconfig.RegistryHost(req.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	cache := time.Duration(0)
	if exp, ok := tokenExpiry(req.ServiceAccountToken); ok {
		cache = min(maxCache, exp.Sub(now)-tokenExpiryMargin)
		cache = max(cache, 0).Truncate(time.Second)
	}
	return &credentialproviderv1.CredentialProviderResponse{
		TypeMeta:      metav1.TypeMeta{APIVersion: credentialproviderv1.SchemeGroupVersion.String(), Kind: responseKind},
		CacheKeyType:  credentialproviderv1.RegistryPluginCacheKeyType,
		CacheDuration: &metav1.Duration{Duration: cache},
		Auth: map[string]credentialproviderv1.AuthConfig{
			host: {Username: satoken.Username, Password: req.ServiceAccountToken},
		},
	}, nil
}

// tokenExpiry reads a JWT's exp claim without verifying it (the registry verifies; this only bounds caching).
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	secs, err := c.Exp.Int64()
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}
