package cli

import (
	"errors"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/registry-kit/registry-kit/auth/credprovider"
	"github.com/registry-kit/registry-kit/deploy"
)

// serviceAccountAuthFlags are deploy's flags for ServiceAccount-token auth.
type serviceAccountAuthFlags struct {
	enabled  bool
	audience string
	issuer   string
}

func (s *serviceAccountAuthFlags) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&s.enabled, "service-account-auth", false, "let pods pull with their own ServiceAccount token through the kubelet credential provider (no pull Secrets): "+
		"the registry verifies the tokens, the access policy grants namespaces, and the kubelets may request the audience (RBAC)")
	f.StringVar(&s.audience, "service-account-audience", credprovider.DefaultAudience, "with --service-account-auth: the token audience (the same in the nodes' credential provider config)")
	f.StringVar(&s.issuer, "service-account-issuer", "", "with --service-account-auth: the API server's --service-account-issuer (default: the registry reads it from the API server)")
}

// toOptions returns nil without --service-account-auth.
func (s *serviceAccountAuthFlags) toOptions(changed func(string) bool) (*deploy.ServiceAccountAuth, error) {
	if !s.enabled {
		for _, name := range []string{"service-account-audience", "service-account-issuer"} {
			if changed(name) {
				return nil, errors.New("--" + name + ": needs --service-account-auth")
			}
		}
		return nil, nil
	}
	var errs []error
	if s.audience == "" || strings.ContainsAny(s.audience, " \t\n,") {
		errs = append(errs, errors.New("--service-account-audience: give one audience, without spaces or commas"))
	}
	return &deploy.ServiceAccountAuth{Audience: s.audience, Issuer: s.issuer}, errors.Join(errs...)
}

// writeSteps prints the node-side steps after a deploy with --service-account-auth.
func (s *serviceAccountAuthFlags) writeSteps(w io.Writer, dopts deploy.Options, res *deploy.Result) {
	if dopts.ServiceAccountAuth == nil || res == nil || dopts.DryRun != deploy.DryRunNone {
		return
	}
	deploy.ServiceAccountSteps(w, res, *dopts.ServiceAccountAuth)
}
