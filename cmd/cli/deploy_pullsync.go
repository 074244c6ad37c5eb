package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// syncEverywhere is the --sync-pull-secrets value when the flag is given without a selector.
const syncEverywhere = "(every namespace)"

// pullSyncFlags are deploy's flags for the pull-secret controller.
type pullSyncFlags struct {
	selector        string
	source          string
	target          string
	serviceAccounts string
}

func (p *pullSyncFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&p.selector, "sync-pull-secrets", "", "also deploy the pull-secret controller: a copy of the pull secret in every namespace matching this label selector (every namespace but kube-* without one), added to their ServiceAccounts")
	f.Lookup("sync-pull-secrets").NoOptDefVal = syncEverywhere
	f.StringVar(&p.source, "pull-secret-source", deploy.DefaultPullSyncSource, "with --sync-pull-secrets: the dockerconfigjson Secret in the registry's namespace the controller copies (deploy writes it when it generates the admin password)")
	f.StringVar(&p.serviceAccounts, "sync-service-accounts", "default", `with --sync-pull-secrets: ServiceAccounts to patch: "default", "all", "none" or a list of names`)
}

// toPullSync returns nil when --sync-pull-secrets was not given.
// target is --pull-secret-name, the name of the copies (shared with --pull-secret-namespaces).
func (p *pullSyncFlags) toPullSync(changed func(string) bool, target string) (*deploy.PullSync, error) {
	p.target = target
	if !changed("sync-pull-secrets") {
		for _, name := range []string{"pull-secret-source", "sync-service-accounts"} {
			if changed(name) {
				return nil, fmt.Errorf("--%s: needs --sync-pull-secrets", name)
			}
		}
		return nil, nil
	}
	var errs []error
	ps := &deploy.PullSync{SourceName: p.source, Controller: syncer.ManifestOptions{TargetName: p.target, ServiceAccounts: p.serviceAccounts}}
	if p.selector != syncEverywhere {
		if p.selector == "" {
			errs = append(errs, errors.New("--sync-pull-secrets=: empty selector (give none for every namespace)"))
		} else if _, err := labels.Parse(p.selector); err != nil {
			errs = append(errs, fmt.Errorf("--sync-pull-secrets %q: %w", p.selector, err))
		}
		ps.Controller.NamespaceSelector = p.selector
	}
	for flag, v := range map[string]string{"--pull-secret-source": p.source, "--pull-secret-name": p.target} {
		if v == "" && flag == "--pull-secret-name" {
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(v) {
			errs = append(errs, fmt.Errorf("%s %q: %s", flag, v, msg))
		}
	}
	if _, err := parseServiceAccounts(p.serviceAccounts, "", false); err != nil {
		errs = append(errs, fmt.Errorf("--sync-service-accounts: %w", err))
	}
	return ps, errors.Join(errs...)
}
