package satoken

import (
	"sync"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/satokentest"
)

const (
	testIssuer   = satokentest.IssuerURL
	testAudience = satokentest.Audience
)

type claims = satokentest.Claims

var podClaims = satokentest.PodClaims

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

func newVerifier(t *testing.T, is *satokentest.Issuer, clk *clock) *Verifier {
	t.Helper()
	keys, err := NewJWKS(JWKSOptions{URL: is.URL() + JWKSPath, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierOptions{Issuer: testIssuer, Audience: testAudience, Keys: keys, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
