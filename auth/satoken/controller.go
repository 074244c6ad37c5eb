package satoken

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// Controller is a distribution AccessController accepting ServiceAccount tokens as the Basic password of Username
// and passing every other request to an inner controller (the htpasswd one). A token's user is
// system:serviceaccount:<namespace>:<name>; what it may do is for the access policy wrapped around this controller.
type Controller struct {
	inner  auth.AccessController
	v      *Verifier
	realm  string
	log    *slog.Logger
	tokens *prometheus.CounterVec
}

var (
	_ auth.AccessController = (*Controller)(nil)
	_ io.Closer             = (*Controller)(nil)
)

// ControllerOptions configure a Controller; Realm is the Basic realm of the challenge for a refused token.
type ControllerOptions struct {
	Realm      string
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
}

// NewController wraps inner with token verification by v.
func NewController(inner auth.AccessController, v *Verifier, o ControllerOptions) (*Controller, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_serviceaccount_tokens_total",
		Help: "ServiceAccount tokens presented to the registry, by result: accepted, or the reason they were refused " +
			"(malformed, signature, issuer, audience, expired, not-yet-valid, claims, keys).",
	}, []string{"result"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(tokens); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering service account token metrics: %w", err)
			}
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				tokens = existing
			}
		}
	}
	return &Controller{inner: inner, v: v, realm: o.Realm, log: o.Logger, tokens: tokens}, nil
}

// Authorized authenticates a ServiceAccount token presented as Username's password; any other request goes to
// the inner controller.
func (c *Controller) Authorized(r *http.Request, records ...auth.Access) (*auth.Grant, error) {
	user, token, ok := r.BasicAuth()
	if !ok || user != Username {
		return c.inner.Authorized(r, records...)
	}
	id, err := c.v.Verify(r.Context(), token)
	if err != nil {
		reason := Reason(err)
		c.tokens.WithLabelValues(reason).Inc()
		// err names the reason and claimed issuer/audience/times, never the token.
		c.log.Info("service account token refused", "reason", reason, "err", err, "client", r.RemoteAddr)
		return nil, challenge{realm: c.realm, err: err}
	}
	c.tokens.WithLabelValues("accepted").Inc()
	return &auth.Grant{User: auth.UserInfo{Name: id.User()}}, nil
}

// Close closes the inner controller when it is an io.Closer.
func (c *Controller) Close() error {
	if cl, ok := c.inner.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// challenge is the 401 answer to a refused token: the same Basic challenge as the htpasswd controller's.
type challenge struct {
	realm string
	err   error
}

var _ auth.Challenge = challenge{}

func (ch challenge) SetHeaders(_ *http.Request, w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", ch.realm))
}

func (ch challenge) Error() string {
	return fmt.Sprintf("basic authentication challenge for realm %q: %s", ch.realm, ch.err)
}

func (ch challenge) Unwrap() error { return ch.err }
