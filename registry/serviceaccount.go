package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/satoken"
)

// validateServiceAccountTokens checks the ServiceAccount token settings: they need authentication and an access
// policy (without one, every ServiceAccount of the cluster could push and delete everything).
func (c Config) validateServiceAccountTokens() []error {
	sa := c.ServiceAccountTokens
	var errs []error
	if err := sa.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !sa.Enabled() {
		return errs
	}
	switch {
	case c.NoAuth:
		errs = append(errs, errors.New("service-account-audience: needs authentication: it cannot be combined with no-auth"))
	case c.AccessPolicyPath() == "":
		errs = append(errs, errors.New("service-account-audience: needs an access policy (--access-policy): without one every "+
			"ServiceAccount of the cluster could pull, push and delete every repository; grant namespaces with rules such as "+
			"{namespaces: [team-a], repos: [\"team-a/**\"], actions: [pull]}"))
	}
	return errs
}

// withServiceAccountTokens wraps the htpasswd controller so that ServiceAccount tokens are accepted too, when
// configured; inner is returned unchanged otherwise.
func withServiceAccountTokens(cfg Config, inner auth.AccessController, logger *slog.Logger, reg prometheus.Registerer) (auth.AccessController, error) {
	sa := cfg.ServiceAccountTokens
	if !sa.Enabled() {
		return inner, nil
	}
	fail := func(err error) (auth.AccessController, error) {
		if cl, ok := inner.(io.Closer); ok {
			_ = cl.Close()
		}
		return nil, err
	}
	v, err := sa.NewVerifier(context.Background(), logger)
	if err != nil {
		return fail(err)
	}
	c, err := satoken.NewController(inner, v, satoken.ControllerOptions{Realm: cfg.Realm, Logger: logger, Registerer: reg})
	if err != nil {
		return fail(err)
	}
	return c, nil
}
