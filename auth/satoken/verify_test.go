package satoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/internal/satokentest"
)

func TestVerify(t *testing.T) {
	ti := satokentest.New(t)
	ti.AddEC("ec-1")
	now := time.Now().Truncate(time.Second)
	clk := &clock{t: now}
	v := newVerifier(t, ti, clk)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := podClaims("team-a", "default", now)
	with := func(f func(*claims)) claims {
		c := podClaims("team-a", "default", now)
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		token   string
		want    Identity
		wantErr error
		detail  string
	}{
		{name: "valid RSA", token: ti.Sign("rsa-1", nil, good),
			want: Identity{Namespace: "team-a", Name: "default", UID: "uid-default", PodName: "app", PodUID: "pod-uid", Expiry: now.Add(time.Hour)}},
		{name: "valid ECDSA", token: ti.Sign("ec-1", nil, good),
			want: Identity{Namespace: "team-a", Name: "default", UID: "uid-default", PodName: "app", PodUID: "pod-uid", Expiry: now.Add(time.Hour)}},
		{name: "several audiences, one ours", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.Audience = jwt.Audience{"vault", testAudience} })),
			want: Identity{Namespace: "team-a", Name: "default", UID: "uid-default", PodName: "app", PodUID: "pod-uid", Expiry: now.Add(time.Hour)}},
		{name: "forged: another key under the issuer's key id", token: ti.Sign("rsa-1", other, good), wantErr: ErrSignature},
		{name: "forged: a key id the issuer does not publish", token: ti.Sign("mine", other, good), wantErr: ErrSignature, detail: `key id "mine", which the issuer does not publish`},
		{name: "wrong audience", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.Audience = jwt.Audience{"https://kubernetes.default.svc"} })),
			wantErr: ErrAudience, detail: `token audiences ["https://kubernetes.default.svc"], want "registry-kit"`},
		{name: "expired", token: ti.Sign("rsa-1", nil, with(func(c *claims) {
			c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(now.Add(-2*time.Hour)), jwt.NewNumericDate(now.Add(-2*time.Hour)), jwt.NewNumericDate(now.Add(-time.Hour))
		})), wantErr: ErrExpired, detail: "1h0m0s ago"},
		{name: "not yet valid", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute)) })), wantErr: ErrNotYetValid},
		{name: "issued in the future", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(10 * time.Minute)) })), wantErr: ErrNotYetValid},
		{name: "wrong issuer", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.Issuer = "https://other-cluster.example" })),
			wantErr: ErrIssuer, detail: `token issuer "https://other-cluster.example"`},
		{name: "no expiry (legacy Secret token)", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.Expiry = nil })), wantErr: ErrClaims, detail: "legacy"},
		{name: "not a service account", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.Subject = "alice" })), wantErr: ErrClaims},
		{name: "subject and claims disagree", token: ti.Sign("rsa-1", nil, with(func(c *claims) { c.K8s["namespace"] = "team-b" })), wantErr: ErrClaims},
		{name: "not a JWT", token: "s3cret-password", wantErr: ErrMalformed},
		{name: "unsigned JWT", token: "eyJhbGciOiJub25lIn0." + strings.Split(ti.Sign("rsa-1", nil, good), ".")[1] + ".", wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.detail) {
					t.Errorf("error %q does not say %q", err, tt.detail)
				}
				if strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), strings.Split(tt.token, ".")[0]+".") {
					t.Errorf("error quotes the token: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if got.User() != "system:serviceaccount:team-a:default" {
				t.Errorf("user %q", got.User())
			}
		})
	}
}

func TestVerifyCache(t *testing.T) {
	ti := satokentest.New(t)
	now := time.Now().Truncate(time.Second)
	clk := &clock{t: now}
	v := newVerifier(t, ti, clk)
	c := podClaims("team-a", "default", now)
	c.Expiry = jwt.NewNumericDate(now.Add(90 * time.Second))
	tok := ti.Sign("rsa-1", nil, c)
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := ti.Fetches(); n != 1 {
		t.Errorf("keys fetched %d times for one token verified three times, want 1", n)
	}
	if v.cache.len() != 1 {
		t.Errorf("cache holds %d entries", v.cache.len())
	}
	// The cache never outlives the token: past exp (and the leeway) the token is refused, not answered from it.
	clk.add(90*time.Second + jwt.DefaultLeeway + time.Second)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after expiry: %v, want ErrExpired", err)
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	ti := satokentest.New(t)
	now := time.Now().Truncate(time.Second)
	keys, _ := NewJWKS(JWKSOptions{URL: ti.URL() + JWKSPath})
	v, err := NewVerifier(VerifierOptions{Issuer: testIssuer, Audience: testAudience, Keys: keys, CacheSize: 5, now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := v.Verify(context.Background(), ti.Sign("rsa-1", nil, podClaims("ns", "sa"+string(rune('a'+i)), now))); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n > 5 {
		t.Errorf("cache holds %d entries, bound is 5", n)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	ti := satokentest.New(t)
	now := time.Now().Truncate(time.Second)
	clk := &clock{t: now}
	v := newVerifier(t, ti, clk)
	if _, err := v.Verify(context.Background(), ti.Sign("rsa-1", nil, podClaims("a", "b", now))); err != nil {
		t.Fatal(err)
	}
	// The issuer adds a key: a token signed with it fetches the keys again at once.
	ti.AddRSA("rsa-2")
	clk.add(11 * time.Second) // past MinRefresh since the first fetch
	if _, err := v.Verify(context.Background(), ti.Sign("rsa-2", nil, podClaims("a", "b", now))); err != nil {
		t.Fatalf("token signed with the new key: %v", err)
	}
	if n := ti.Fetches(); n != 2 {
		t.Errorf("keys fetched %d times, want 2", n)
	}
	// Forged tokens with made-up key ids do not make the registry hammer the API server.
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := v.Verify(context.Background(), ti.Sign("made-up", forger, podClaims("a", "b", now))); !errors.Is(err, ErrSignature) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if n := ti.Fetches(); n > 3 {
		t.Errorf("keys fetched %d times after 5 forged tokens within MinRefresh, want at most 3", n)
	}
}

func TestVerifierOptionsErrors(t *testing.T) {
	_, err := NewVerifier(VerifierOptions{})
	for _, want := range []string{"issuer is empty", "audience is empty", "no source"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}
