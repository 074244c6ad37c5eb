// Package satokentest is a Kubernetes service account issuer for tests: signing keys, tokens with the claims the
// API server puts in a pod-bound token, and an HTTP server publishing the OIDC discovery document and JWKS at the
// API server's paths.
package satokentest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of the claims PodClaims makes.
const (
	IssuerURL = "https://kubernetes.default.svc.cluster.local"
	Audience  = "registry-kit"
	// JWKSPath and DiscoveryPath are where the API server publishes them.
	JWKSPath      = "/openid/v1/jwks"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// Issuer signs tokens and serves its public keys until the test ends.
type Issuer struct {
	t       testing.TB
	mu      sync.Mutex
	keys    map[string]any // kid -> private key
	fetches atomic.Int32
	srv     *httptest.Server
}

// New starts an issuer with one RSA key, "rsa-1".
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{t: t, keys: map[string]any{}}
	is.AddRSA("rsa-1")
	mux := http.NewServeMux()
	mux.HandleFunc(JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		is.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(is.publicSet())
	})
	mux.HandleFunc(DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": IssuerURL, "jwks_uri": "https://10.0.0.1:6443" + JWKSPath})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// URL is the base URL of the issuer's server (its keys are at URL()+JWKSPath).
func (is *Issuer) URL() string { return is.srv.URL }

// Fetches counts the requests for the keys.
func (is *Issuer) Fetches() int { return int(is.fetches.Load()) }

// AddRSA adds (and publishes) an RSA key under kid.
func (is *Issuer) AddRSA(kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		is.t.Fatal(err)
	}
	is.add(kid, k)
	return k
}

// AddEC adds (and publishes) a P-256 key under kid.
func (is *Issuer) AddEC(kid string) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		is.t.Fatal(err)
	}
	is.add(kid, k)
	return k
}

func (is *Issuer) add(kid string, k any) {
	is.mu.Lock()
	is.keys[kid] = k
	is.mu.Unlock()
}

func (is *Issuer) publicSet() jose.JSONWebKeySet {
	is.mu.Lock()
	defer is.mu.Unlock()
	var set jose.JSONWebKeySet
	for kid, k := range is.keys {
		jk := jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"}
		set.Keys = append(set.Keys, jk.Public())
	}
	return set
}

// Claims are the claims of a token: the registered ones and the API server's kubernetes.io claims.
type Claims struct {
	jwt.Claims
	K8s map[string]any `json:"kubernetes.io,omitempty"`
}

// PodClaims are the claims of a token the kubelet requests for a pod of ServiceAccount ns/sa: issued now for
// Audience, valid for an hour.
func PodClaims(ns, sa string, now time.Time) Claims {
	return Claims{
		Claims: jwt.Claims{
			Issuer: IssuerURL, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: jwt.Audience{Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		K8s: map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]string{"name": sa, "uid": "uid-" + sa},
			"pod":            map[string]string{"name": "app", "uid": "pod-uid"},
		},
	}
}

// Sign signs c with the issuer's key kid, or with key (a forger's) under that kid when key is not nil.
func (is *Issuer) Sign(kid string, key any, c Claims) string {
	is.t.Helper()
	if key == nil {
		is.mu.Lock()
		key = is.keys[kid]
		is.mu.Unlock()
	}
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		is.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

// Token is a valid token for a pod of ServiceAccount ns/sa.
func (is *Issuer) Token(ns, sa string) string {
	return is.Sign("rsa-1", nil, PodClaims(ns, sa, time.Now()))
}
