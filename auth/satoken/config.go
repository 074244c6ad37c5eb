package satoken

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config is how `registry-kit serve` accepts ServiceAccount tokens; the zero Config (no Audience) accepts none.
// Errors name the keys as the CLI spells its flags.
type Config struct {
	// Audience turns token auth on: the audience the kubelet requests tokens for (the credential provider
	// config's tokenAttributes.serviceAccountTokenAudience). It must not be one the API server accepts.
	Audience string
	// Issuer is the API server's --service-account-issuer; empty means read from the API server's discovery
	// document (which needs the Kubernetes API: Kubeconfig or in-cluster).
	Issuer string
	// JWKSURL is where the issuer's keys are fetched; empty means the API server's /openid/v1/jwks, with the
	// credentials of Kubeconfig (or of the pod, in a cluster).
	JWKSURL string
	// JWKSCAFile is a PEM bundle trusted for JWKSURL (besides the system roots).
	JWKSCAFile string
	// Kubeconfig is the kubeconfig used to reach the API server; empty means the pod's in-cluster credentials.
	Kubeconfig string
	// CacheTTL bounds how long a verified token is remembered (default 2m, never past its expiry).
	CacheTTL time.Duration
}

// Enabled reports whether tokens are accepted.
func (c Config) Enabled() bool { return c.Audience != "" }

// Validate reports every problem, naming the flag.
func (c Config) Validate() error {
	if !c.Enabled() {
		if c.Issuer != "" || c.JWKSURL != "" || c.Kubeconfig != "" || c.JWKSCAFile != "" {
			return errors.New("service-account-audience: required with the other --service-account-* flags")
		}
		return nil
	}
	var errs []error
	if strings.ContainsAny(c.Audience, " \t\n,") {
		errs = append(errs, fmt.Errorf("service-account-audience: %q must be one audience, without spaces or commas", c.Audience))
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("service-account-jwks-url: %q is not an http(s) URL", c.JWKSURL))
		}
		if c.Issuer == "" {
			errs = append(errs, errors.New("service-account-issuer: required with service-account-jwks-url (the keys alone do not say who issues tokens)"))
		}
	}
	if c.JWKSCAFile != "" && c.JWKSURL == "" {
		errs = append(errs, errors.New("service-account-jwks-ca: only applies with service-account-jwks-url"))
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("service-account-cache-ttl: %s is negative", c.CacheTTL))
	}
	return errors.Join(errs...)
}

// NewVerifier builds the verifier c describes: it reads the issuer from the API server when c.Issuer is empty,
// and fetches the keys once so a misconfiguration shows at start (a failure to fetch them is only logged: they
// are fetched again when a token arrives).
func (c Config) NewVerifier(ctx context.Context, logger *slog.Logger) (*Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client, jwksURL, err := c.keysClient()
	if err != nil {
		return nil, err
	}
	issuer := c.Issuer
	if issuer == "" {
		base := strings.TrimSuffix(jwksURL, JWKSPath)
		d, err := Discover(ctx, client, base)
		if err != nil {
			return nil, fmt.Errorf("service-account-issuer: not given, and %w", err)
		}
		issuer = d.Issuer
	}
	keys, err := NewJWKS(JWKSOptions{URL: jwksURL, Client: client, Logger: logger})
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(VerifierOptions{Issuer: issuer, Audience: c.Audience, Keys: keys, Logger: logger, CacheTTL: c.CacheTTL})
	if err != nil {
		return nil, err
	}
	if _, err := keys.Keys(ctx, false); err != nil {
		logger.Warn("service account tokens: the issuer's keys cannot be fetched yet; tokens are refused until they can",
			"url", jwksURL, "err", err)
	}
	logger.Info("accepting Kubernetes service account tokens", "issuer", issuer, "audience", c.Audience, "keys", jwksURL,
		"user", Username)
	return v, nil
}

// keysClient is the HTTP client and URL for the issuer's keys: the given JWKS URL, or the API server's.
func (c Config) keysClient() (*http.Client, string, error) {
	if c.JWKSURL != "" {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if c.JWKSCAFile != "" {
			pem, err := os.ReadFile(c.JWKSCAFile)
			if err != nil {
				return nil, "", fmt.Errorf("service-account-jwks-ca: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("service-account-jwks-ca: %s holds no PEM certificate", c.JWKSCAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		return &http.Client{Transport: tr}, c.JWKSURL, nil
	}
	cfg, err := c.restConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("service-account-kubeconfig: %w", err)
	}
	return client, strings.TrimSuffix(cfg.Host, "/") + JWKSPath, nil
}

func (c Config) restConfig() (*rest.Config, error) {
	if c.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("service-account-kubeconfig: %w", err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("service-account tokens: not running in a cluster (%w); give --service-account-kubeconfig, or --service-account-jwks-url and --service-account-issuer", err)
	}
	return cfg, nil
}
