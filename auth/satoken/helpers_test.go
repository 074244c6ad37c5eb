package satoken

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

const (
	testIssuer   = "https://kubernetes.default.svc.cluster.local"
	testAudience = "registry-kit"
)

// testIssuerKeys is a service account issuer: signing keys, and a JWKS server publishing the public halves.
type testIssuerKeys struct {
	t       *testing.T
	mu      sync.Mutex
	keys    map[string]any // kid -> private key
	fetches atomic.Int32
	srv     *httptest.Server
}

func newTestIssuer(t *testing.T) *testIssuerKeys {
	t.Helper()
	ti := &testIssuerKeys{t: t, keys: map[string]any{}}
	ti.addRSA("rsa-1")
	mux := http.NewServeMux()
	mux.HandleFunc(JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		ti.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(ti.publicSet())
	})
	mux.HandleFunc(DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(Discovery{Issuer: testIssuer, JWKSURI: "https://10.0.0.1:6443" + JWKSPath})
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuerKeys) addRSA(kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		ti.t.Fatal(err)
	}
	ti.mu.Lock()
	ti.keys[kid] = k
	ti.mu.Unlock()
	return k
}

func (ti *testIssuerKeys) addEC(kid string) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ti.t.Fatal(err)
	}
	ti.mu.Lock()
	ti.keys[kid] = k
	ti.mu.Unlock()
	return k
}

func (ti *testIssuerKeys) publicSet() jose.JSONWebKeySet {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	var set jose.JSONWebKeySet
	for kid, k := range ti.keys {
		jk := jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"}
		set.Keys = append(set.Keys, jk.Public())
	}
	return set
}

// claims are the claims of a kubelet-requested, pod-bound token.
type claims struct {
	jwt.Claims
	K8s map[string]any `json:"kubernetes.io,omitempty"`
}

func podClaims(ns, sa string, now time.Time) claims {
	return claims{
		Claims: jwt.Claims{
			Issuer: testIssuer, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: jwt.Audience{testAudience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		K8s: map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]string{"name": sa, "uid": "uid-" + sa},
			"pod":            map[string]string{"name": "app", "uid": "pod-uid"},
		},
	}
}

// sign signs c with key under kid (the issuer's key of that kid when key is nil).
func (ti *testIssuerKeys) sign(kid string, key any, c claims) string {
	ti.t.Helper()
	if key == nil {
		ti.mu.Lock()
		key = ti.keys[kid]
		ti.mu.Unlock()
	}
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		ti.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		ti.t.Fatal(err)
	}
	return s
}

// clock is a settable fake time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (ti *testIssuerKeys) verifier(t *testing.T, clk *clock) *Verifier {
	t.Helper()
	keys, err := NewJWKS(JWKSOptions{URL: ti.srv.URL + JWKSPath, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierOptions{Issuer: testIssuer, Audience: testAudience, Keys: keys, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
