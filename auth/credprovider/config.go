package credprovider

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"sigs.k8s.io/yaml"
)

// ProviderName is registry-kit's provider name: the kubelet runs <bin-dir>/<name>, so the binary must be
// installed under this name in --image-credential-provider-bin-dir.
const ProviderName = "registry-kit"

// Cloud plugins' documented settings: matchImages, cache durations and arguments as their projects ship them
// (kubernetes/cloud-provider-aws docs/credential_provider.md and the EKS AMI; kubernetes-sigs/cloud-provider-azure
// "Kubelet Credential Provider"; kubernetes/cloud-provider-gcp's GCE node configuration).
var (
	ecrMatchImages = []string{
		"*.dkr.ecr.*.amazonaws.com",
		"*.dkr.ecr.*.amazonaws.com.cn",
		"*.dkr.ecr-fips.*.amazonaws.com",
		"*.dkr.ecr.*.c2s.ic.gov",
		"*.dkr.ecr.*.sc2s.sgov.gov",
	}
	acrMatchImages = []string{"*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"}
	gcpMatchImages = []string{"container.cloud.google.com", "gcr.io", "*.gcr.io", "*.pkg.dev"}
)

// DefaultACRConfig is the Azure cloud config file acr-credential-provider reads on AKS-style nodes.
const DefaultACRConfig = "/etc/kubernetes/azure.json"

// ConfigOptions says what goes into the CredentialProviderConfig.
type ConfigOptions struct {
	// MatchImages are registry-kit's registries as image-match patterns: host[:port][/path], globs allowed
	// in host labels ("127.0.0.1:5000", "*.registry.example.com"). The port must be the one images use.
	MatchImages []string
	// CredentialsFile is passed to the plugin as --config; empty means DefaultCredentialsFile.
	CredentialsFile string
	// CacheDuration is how long the kubelet caches registry-kit's answers (the plugin's --cache-duration and the
	// provider's defaultCacheDuration); zero means never cache (every pull reads the credentials file).
	CacheDuration time.Duration
	// WithECR, WithACR and WithGCP add the cloud providers' plugins (installed separately in the same bin dir).
	WithECR, WithACR, WithGCP bool
	// ACRConfig is the azure.json passed to acr-credential-provider; empty means DefaultACRConfig.
	ACRConfig string
	// ServiceAccountTokens makes registry-kit's provider pass each pod's own ServiceAccount token, issued for
	// Audience, as its registry credential (KEP-4412 tokenAttributes) instead of the node's credentials file.
	ServiceAccountTokens bool
	// Audience is the token audience with ServiceAccountTokens; empty means DefaultAudience.
	Audience string
}

// GenerateConfig returns the kubelet CredentialProviderConfig for o, validated with the kubelet's rules.
func GenerateConfig(o ConfigOptions) (*kubeletconfigv1.CredentialProviderConfig, error) {
	if len(o.MatchImages) == 0 {
		return nil, errors.New("generating credential provider config: no registry to match (give at least one HOST[:PORT])")
	}
	var errs []error
	for _, m := range o.MatchImages {
		if err := ValidateMatchImage(m); err != nil {
			errs = append(errs, err)
		}
	}
	if o.CacheDuration < 0 {
		errs = append(errs, fmt.Errorf("cache duration %s is negative", o.CacheDuration))
	}
	if o.Audience != "" && !o.ServiceAccountTokens {
		errs = append(errs, errors.New("an audience only applies with service account tokens"))
	}
	if strings.ContainsAny(o.Audience, " \t\n,") {
		errs = append(errs, fmt.Errorf("audience %q must be one audience, without spaces or commas", o.Audience))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("generating credential provider config: %w", err)
	}
	file := o.CredentialsFile
	if file == "" {
		file = DefaultCredentialsFile
	}
	cache := o.CacheDuration
	v1 := credentialproviderv1.SchemeGroupVersion.String()
	cfg := &kubeletconfigv1.CredentialProviderConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: kubeletconfigv1.SchemeGroupVersion.String(), Kind: "CredentialProviderConfig"},
		Providers: []kubeletconfigv1.CredentialProvider{{
			Name:                 ProviderName,
			MatchImages:          append([]string(nil), o.MatchImages...),
			DefaultCacheDuration: &metav1.Duration{Duration: cache},
			APIVersion:           v1,
			Args:                 []string{"credential-provider", "--config", file, "--cache-duration", cache.String()},
		}},
	}
	if o.ServiceAccountTokens {
		audience := o.Audience
		if audience == "" {
			audience = DefaultAudience
		}
		p := &cfg.Providers[0]
		p.Args = []string{"credential-provider", "--service-account-tokens", "--cache-duration", cache.String()}
		p.TokenAttributes = tokenAttributes(audience)
	}
	if o.WithECR {
		cfg.Providers = append(cfg.Providers, kubeletconfigv1.CredentialProvider{
			Name:                 "ecr-credential-provider",
			MatchImages:          append([]string(nil), ecrMatchImages...),
			DefaultCacheDuration: &metav1.Duration{Duration: 12 * time.Hour},
			APIVersion:           v1,
		})
	}
	if o.WithACR {
		acr := o.ACRConfig
		if acr == "" {
			acr = DefaultACRConfig
		}
		cfg.Providers = append(cfg.Providers, kubeletconfigv1.CredentialProvider{
			Name:                 "acr-credential-provider",
			MatchImages:          append([]string(nil), acrMatchImages...),
			DefaultCacheDuration: &metav1.Duration{Duration: 10 * time.Minute},
			APIVersion:           v1,
			Args:                 []string{acr},
		})
	}
	if o.WithGCP {
		cfg.Providers = append(cfg.Providers, kubeletconfigv1.CredentialProvider{
			Name:                 "auth-provider-gcp",
			MatchImages:          append([]string(nil), gcpMatchImages...),
			DefaultCacheDuration: &metav1.Duration{Duration: time.Minute},
			APIVersion:           v1,
			Args:                 []string{"get-credentials", "--v=3"},
		})
	}
	if err := Validate(cfg); err != nil {
		return nil, fmt.Errorf("generating credential provider config: %w", err)
	}
	return cfg, nil
}

// MarshalConfig renders cfg as the YAML file the kubelet reads.
func MarshalConfig(cfg *kubeletconfigv1.CredentialProviderConfig) ([]byte, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding credential provider config: %w", err)
	}
	return b, nil
}

// ValidateMatchImage checks one matchImages pattern the way the kubelet parses it, and rejects what would
// silently never match (a scheme, a tag, an empty host).
func ValidateMatchImage(m string) error {
	if m == "" {
		return errors.New("match image is empty")
	}
	if strings.Contains(m, "://") {
		return fmt.Errorf("match image %q must not have a scheme: use host[:port][/path]", m)
	}
	u, err := url.Parse("https://" + m)
	if err != nil {
		return fmt.Errorf("match image %q is invalid: %w", m, err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("match image %q must be host[:port][/path]", m)
	}
	if strings.ContainsAny(u.Path, ":@") {
		return fmt.Errorf("match image %q: a tag or digest never matches (the kubelet matches repositories)", m)
	}
	return nil
}

// Validate applies the kubelet's CredentialProviderConfig validation (pkg/credentialprovider/plugin/config.go).
func Validate(cfg *kubeletconfigv1.CredentialProviderConfig) error {
	var errs []error
	if len(cfg.Providers) == 0 {
		errs = append(errs, errors.New("providers: at least one provider is required"))
	}
	seen := map[string]bool{}
	for i, p := range cfg.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		if p.Name == "" || p.Name == "." || p.Name == ".." || strings.ContainsAny(p.Name, "/ ") {
			errs = append(errs, fmt.Errorf("%s.name %q: must be a file name in the bin dir", path, p.Name))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", path, p.Name))
		}
		seen[p.Name] = true
		switch p.APIVersion {
		case "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1":
		default:
			errs = append(errs, fmt.Errorf("%s.apiVersion %q: not supported", path, p.APIVersion))
		}
		if len(p.MatchImages) == 0 {
			errs = append(errs, fmt.Errorf("%s.matchImages: at least one is required", path))
		}
		for _, m := range p.MatchImages {
			if err := ValidateMatchImage(m); err != nil {
				errs = append(errs, fmt.Errorf("%s.matchImages: %w", path, err))
			}
		}
		if p.DefaultCacheDuration == nil || p.DefaultCacheDuration.Duration < 0 {
			errs = append(errs, fmt.Errorf("%s.defaultCacheDuration: required and >= 0", path))
		}
		errs = append(errs, validateTokenAttributes(path, p)...)
	}
	return errors.Join(errs...)
}
