package satoken

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/registry-kit/registry-kit/auth/access"
)

// Username is the Basic user name under which a client presents a ServiceAccount token as the password. The
// credential provider returns it, so containerd sends "Authorization: Basic base64(Username:TOKEN)". An htpasswd
// user of this name cannot log in while ServiceAccount tokens are accepted.
const Username = "kubernetes-serviceaccount"

// The reasons a token is refused. Every error Verify returns matches ErrInvalidToken and exactly one of these with
// errors.Is, and never contains the token.
var (
	ErrInvalidToken = errors.New("invalid service account token")
	ErrMalformed    = errors.New("not a signed JWT")
	ErrSignature    = errors.New("signature does not verify with the issuer's keys")
	ErrIssuer       = errors.New("issued by another issuer")
	ErrAudience     = errors.New("issued for another audience")
	ErrExpired      = errors.New("expired")
	ErrNotYetValid  = errors.New("not valid yet")
	ErrClaims       = errors.New("not a Kubernetes service account token")
	ErrKeys         = errors.New("the issuer's keys cannot be fetched")
)

// Reason is a short label for the cause of err, for metrics and logs: malformed, signature, issuer, audience,
// expired, not-yet-valid, claims, keys or other.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrMalformed, "malformed"}, {ErrSignature, "signature"}, {ErrIssuer, "issuer"}, {ErrAudience, "audience"},
		{ErrExpired, "expired"}, {ErrNotYetValid, "not-yet-valid"}, {ErrClaims, "claims"}, {ErrKeys, "keys"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

// tokenError is a refusal: the reason, and details that are safe to show (claimed issuer or audiences, times).
type tokenError struct {
	reason error
	detail string
}

func (e *tokenError) Error() string {
	s := ErrInvalidToken.Error() + ": " + e.reason.Error()
	if e.detail != "" {
		s += " (" + e.detail + ")"
	}
	return s
}

func (e *tokenError) Is(target error) bool { return target == ErrInvalidToken || target == e.reason }

func refuse(reason error, format string, args ...any) error {
	return &tokenError{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// Identity is the ServiceAccount a verified token names, and the pod it was bound to (when it was).
type Identity struct {
	Namespace, Name, UID string
	PodName, PodUID      string
	Expiry               time.Time
}

// User is the identity's user name: system:serviceaccount:<namespace>:<name>.
func (id Identity) User() string { return access.ServiceAccountUser(id.Namespace, id.Name) }

// KeySource yields the issuer's public keys. Keys(ctx, false) may answer from a cache; Keys(ctx, true) is asked
// when a token names a key the cached set does not hold, and may fetch again (a source limits how often).
type KeySource interface {
	Keys(ctx context.Context, refresh bool) (*jose.JSONWebKeySet, error)
}

// VerifierOptions configure a Verifier. Issuer, Audience and Keys are required.
type VerifierOptions struct {
	Issuer   string // the iss claim, exactly (the API server's --service-account-issuer)
	Audience string // must be one of the token's audiences
	Keys     KeySource
	Logger   *slog.Logger // nil: discard
	// CacheSize bounds the verified tokens remembered (default 10000); CacheTTL is how long one is remembered at
	// most (default 2m; never past the token's expiry). A negative CacheTTL disables the cache.
	CacheSize int
	CacheTTL  time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 1m (as the go-jose default). Negative: none.
	Leeway time.Duration

	now func() time.Time // tests
}

// Verifier checks ServiceAccount tokens offline against the issuer's keys.
type Verifier struct {
	opts  VerifierOptions
	cache *resultCache
}

// signingAlgorithms are those the API server signs service account tokens with (RSA and ECDSA keys).
var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// NewVerifier checks the options and returns a Verifier.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	var errs []error
	if o.Issuer == "" {
		errs = append(errs, errors.New("the service account issuer is empty"))
	}
	if o.Audience == "" {
		errs = append(errs, errors.New("the service account token audience is empty"))
	}
	if o.Keys == nil {
		errs = append(errs, errors.New("no source of the issuer's keys"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache size %d is negative", o.CacheSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring service account token verification: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 2 * time.Minute
	}
	if o.Leeway == 0 {
		o.Leeway = jwt.DefaultLeeway
	} else if o.Leeway < 0 {
		o.Leeway = 0
	}
	if o.now == nil {
		o.now = time.Now
	}
	v := &Verifier{opts: o}
	if o.CacheTTL > 0 {
		v.cache = newResultCache(o.CacheSize)
	}
	return v, nil
}

// Options are the verifier's settings after defaults.
func (v *Verifier) Options() VerifierOptions { return v.opts }

// k8sClaims are the private claims the API server puts in a bound token.
type k8sClaims struct {
	Kubernetes *struct {
		Namespace      string `json:"namespace"`
		ServiceAccount *struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
		Pod *struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

// Verify checks token and returns the ServiceAccount it names. A token verified before is answered from the cache
// until min(its expiry, CacheTTL after the check).
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	now := v.opts.now()
	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(token))
		if id, ok := v.cache.get(key, now); ok {
			return id, nil
		}
	}
	id, err := v.verify(ctx, token, now)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		until := now.Add(v.opts.CacheTTL)
		if id.Expiry.Before(until) {
			until = id.Expiry
		}
		v.cache.put(key, id, until, now)
	}
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (Identity, error) {
	tok, err := jwt.ParseSigned(token, signingAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return Identity{}, refuse(ErrMalformed, "")
	}
	var std jwt.Claims
	var priv k8sClaims
	if err := v.checkSignature(ctx, tok, &std, &priv); err != nil {
		return Identity{}, err
	}
	if std.Expiry == nil {
		return Identity{}, refuse(ErrClaims, "no exp claim: legacy Secret-based tokens are not accepted")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.opts.Issuer, AnyAudience: jwt.Audience{v.opts.Audience}, Time: now}, v.opts.Leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Identity{}, refuse(ErrIssuer, "token issuer %q, want %q", std.Issuer, v.opts.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Identity{}, refuse(ErrAudience, "token audiences %q, want %q", []string(std.Audience), v.opts.Audience)
	case errors.Is(err, jwt.ErrExpired):
		return Identity{}, refuse(ErrExpired, "expired at %s, %s ago", std.Expiry.Time().UTC().Format(time.RFC3339), now.Sub(std.Expiry.Time()).Round(time.Second))
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Identity{}, refuse(ErrNotYetValid, "valid from %s; check the clocks of the registry and the API server", notBefore(std).UTC().Format(time.RFC3339))
	case err != nil:
		return Identity{}, refuse(ErrClaims, "%v", err)
	}
	return identity(std, priv)
}

func notBefore(c jwt.Claims) time.Time {
	if c.NotBefore != nil {
		return c.NotBefore.Time()
	}
	if c.IssuedAt != nil {
		return c.IssuedAt.Time()
	}
	return time.Time{}
}

// checkSignature verifies tok with the key its header names, fetching the keys again once when the cached set
// does not hold it (the issuer rotated its keys), and decodes the claims.
func (v *Verifier) checkSignature(ctx context.Context, tok *jwt.JSONWebToken, claims ...any) error {
	kid := tok.Headers[0].KeyID
	for _, refresh := range []bool{false, true} {
		set, err := v.opts.Keys.Keys(ctx, refresh)
		if err != nil {
			return &tokenError{reason: ErrKeys, detail: err.Error()}
		}
		candidates := set.Keys
		if kid != "" {
			candidates = set.Key(kid)
		}
		if len(candidates) == 0 {
			continue
		}
		for _, k := range candidates {
			if err := tok.Claims(k.Public(), claims...); err == nil {
				return nil
			}
		}
		return refuse(ErrSignature, "key id %q", kid)
	}
	return refuse(ErrSignature, "signed with key id %q, which the issuer does not publish", kid)
}

// identity reads the ServiceAccount from sub and checks it against the kubernetes.io claims.
func identity(std jwt.Claims, priv k8sClaims) (Identity, error) {
	ns, name, ok := access.ParseServiceAccount(std.Subject)
	if !ok {
		return Identity{}, refuse(ErrClaims, "subject %q is not system:serviceaccount:<namespace>:<name>", std.Subject)
	}
	id := Identity{Namespace: ns, Name: name, Expiry: std.Expiry.Time()}
	if k := priv.Kubernetes; k != nil {
		if k.Namespace != ns || (k.ServiceAccount != nil && k.ServiceAccount.Name != name) {
			return Identity{}, refuse(ErrClaims, "subject %q does not match its kubernetes.io claims", std.Subject)
		}
		if k.ServiceAccount != nil {
			id.UID = k.ServiceAccount.UID
		}
		if k.Pod != nil {
			id.PodName, id.PodUID = k.Pod.Name, k.Pod.UID
		}
	}
	return id, nil
}
