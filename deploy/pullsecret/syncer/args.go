package syncer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
)

// ParseServiceAccounts reads the --service-accounts value ("default", "all", "none" or a comma-separated list of
// names) or, when given, the --service-account-selector label selector.
func ParseServiceAccounts(list, selector string) (ServiceAccountSelector, error) {
	if selector != "" {
		sel, err := labels.Parse(selector)
		if err != nil {
			return ServiceAccountSelector{}, fmt.Errorf("service account selector %q: %w", selector, err)
		}
		return ServiceAccountSelector{Labels: sel}, nil
	}
	switch strings.TrimSpace(list) {
	case "all":
		return ServiceAccountSelector{All: true}, nil
	case "none", "":
		return ServiceAccountSelector{}, nil
	}
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return ServiceAccountSelector{Names: names}, nil
}

// ConfigFromArgs reads the configuration back from a `pull-secret sync` command line (a controller's container
// args, as Manifests writes them), ignoring flags that are not about what is copied where.
func ConfigFromArgs(args []string) (Config, error) {
	fs := pflag.NewFlagSet("pull-secret sync", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.SetOutput(nil)
	source := fs.String("source", "", "")
	target := fs.String("target-name", "", "")
	nsSel := fs.String("namespace-selector", "", "")
	include := fs.StringSlice("include-namespace", nil, "")
	exclude := fs.StringSlice("exclude-namespace", DefaultExcludePatterns, "")
	sas := fs.String("service-accounts", "default", "")
	saSel := fs.String("service-account-selector", "", "")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("reading the controller's arguments: %w", err)
	}
	var errs []error
	cfg := Config{TargetName: *target, Namespaces: NamespaceSelector{Include: *include, Exclude: *exclude}}
	src, err := ParseSource(*source)
	errs = append(errs, err)
	cfg.Source = src
	if *nsSel != "" {
		sel, err := labels.Parse(*nsSel)
		errs = append(errs, err)
		cfg.Namespaces.Labels = sel
	}
	cfg.ServiceAccounts, err = ParseServiceAccounts(*sas, *saSel)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg.withDefaults(), nil
}

// TargetNameOf is the copies' name (the source's name unless TargetName is set).
func (c Config) TargetNameOf() string { return c.withDefaults().TargetName }
