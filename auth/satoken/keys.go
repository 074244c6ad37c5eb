package satoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// JWKSPath is where the API server serves the service account issuer's public keys; DiscoveryPath is its OIDC
// discovery document (both readable by every ServiceAccount through the default
// system:service-account-issuer-discovery binding).
const (
	JWKSPath      = "/openid/v1/jwks"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// JWKSOptions configure a JWKS key source. URL is required.
type JWKSOptions struct {
	URL    string
	Client *http.Client // nil: http.DefaultClient
	// TTL is how long a fetched key set is used before it is fetched again (default 5m); a token naming a key the
	// set does not hold fetches it again at once, but not more often than MinRefresh (default 10s).
	TTL, MinRefresh time.Duration
	Logger          *slog.Logger // nil: discard

	now func() time.Time
}

// JWKS is a KeySource fetching a JSON Web Key Set over HTTP and caching it. When a fetch fails, the last good set
// stays in use (and the failure is logged).
type JWKS struct {
	opts JWKSOptions

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time // of set
	tried   time.Time // last fetch attempt
	lastErr error
}

var _ KeySource = (*JWKS)(nil)

// NewJWKS returns a key source for o.URL; nothing is fetched until keys are asked for.
func NewJWKS(o JWKSOptions) (*JWKS, error) {
	if o.URL == "" {
		return nil, errors.New("no JWKS URL")
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	return &JWKS{opts: o}, nil
}

// Keys returns the cached set while it is younger than TTL (and refresh is false), else fetches it.
func (j *JWKS) Keys(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.opts.now()
	fresh := j.set != nil && now.Sub(j.fetched) < j.opts.TTL
	if fresh && !refresh {
		return j.set, nil
	}
	if !j.tried.IsZero() && now.Sub(j.tried) < j.opts.MinRefresh && (refresh || j.set == nil) {
		if j.set != nil {
			return j.set, nil
		}
		return nil, j.lastErr
	}
	j.tried = now
	set, err := fetchJWKS(ctx, j.opts.Client, j.opts.URL)
	if err != nil {
		j.lastErr = err
		if j.set != nil {
			j.opts.Logger.Warn("fetching the service account issuer's keys; keeping the keys fetched before", "url", j.opts.URL,
				"fetched", j.fetched, "err", err)
			return j.set, nil
		}
		return nil, err
	}
	j.set, j.fetched, j.lastErr = set, now, nil
	return set, nil
}

func fetchJWKS(ctx context.Context, c *http.Client, url string) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, c, url, &set); err != nil {
		return nil, fmt.Errorf("fetching service account keys: %w", err)
	}
	var usable []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			usable = append(usable, k)
		}
	}
	if len(usable) == 0 {
		return nil, fmt.Errorf("fetching service account keys: %s holds no public signing key", url)
	}
	return &jose.JSONWebKeySet{Keys: usable}, nil
}

// Discovery is the part of an OIDC discovery document the verifier uses.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// Discover reads base + DiscoveryPath.
func Discover(ctx context.Context, c *http.Client, base string) (Discovery, error) {
	var d Discovery
	url := strings.TrimSuffix(base, "/") + DiscoveryPath
	if err := getJSON(ctx, c, url, &d); err != nil {
		return Discovery{}, fmt.Errorf("reading the service account issuer's discovery document: %w", err)
	}
	if d.Issuer == "" {
		return Discovery{}, fmt.Errorf("reading the service account issuer's discovery document: %s has no issuer", url)
	}
	return d, nil
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (the registry's credentials may not read the issuer's keys: bind the ClusterRole system:service-account-issuer-discovery)"
		}
		return fmt.Errorf("GET %s: %s%s", url, resp.Status, hint)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not JSON: %w", url, err)
	}
	return nil
}
