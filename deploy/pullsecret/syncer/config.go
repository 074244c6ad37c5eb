package syncer

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Marks on what the controller writes.
const (
	// CopyLabel (value CopyLabelValue) marks the Secrets the controller made; only those are updated or deleted.
	CopyLabel      = "registry-kit.dev/pull-secret-sync"
	CopyLabelValue = "copy"
	// SourceAnnotation on a copy names its source Secret (namespace/name).
	SourceAnnotation = "registry-kit.dev/pull-secret-source"
	// AddedAnnotation on a ServiceAccount lists (comma-separated) the pull secrets the controller added to its
	// imagePullSecrets: only those are ever removed again.
	AddedAnnotation = "registry-kit.dev/pull-secrets-added"
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedByValue  = "registry-kit"
)

// DefaultExcludePatterns are the namespaces skipped unless the exclude list is given explicitly.
var DefaultExcludePatterns = []string{"kube-*"}

// NamespaceSelector says which namespaces get the copy: those whose labels match Labels (nil: every namespace),
// whose name matches one of Include (empty: any name) and none of Exclude. Include and Exclude are shell patterns
// (path.Match: *, ?, [a-z]).
type NamespaceSelector struct {
	Labels  labels.Selector
	Include []string
	Exclude []string
}

// ServiceAccountSelector says which ServiceAccounts of a selected namespace are patched: every one (All), those
// named in Names, or those whose labels match Labels. Nothing set patches none.
type ServiceAccountSelector struct {
	All    bool
	Names  []string
	Labels labels.Selector
}

// Config is what the controller keeps in sync.
type Config struct {
	// Source is the Secret copied (of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg).
	Source types.NamespacedName
	// TargetName is the copies' name; default Source.Name.
	TargetName      string
	Namespaces      NamespaceSelector
	ServiceAccounts ServiceAccountSelector
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.TargetName == "" {
		c.TargetName = c.Source.Name
	}
	if c.Namespaces.Labels == nil {
		c.Namespaces.Labels = labels.Everything()
	}
	return c
}

// Validate names every problem in the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Source.Namespace == "" || c.Source.Name == "" {
		errs = append(errs, fmt.Errorf("source secret %q: want NAMESPACE/NAME", c.Source.String()))
	} else {
		for _, msg := range validation.IsDNS1123Label(c.Source.Namespace) {
			errs = append(errs, fmt.Errorf("source secret namespace %q: %s", c.Source.Namespace, msg))
		}
		for _, msg := range validation.IsDNS1123Subdomain(c.Source.Name) {
			errs = append(errs, fmt.Errorf("source secret name %q: %s", c.Source.Name, msg))
		}
	}
	if c.TargetName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(c.TargetName) {
			errs = append(errs, fmt.Errorf("target secret name %q: %s", c.TargetName, msg))
		}
	}
	for _, p := range slices.Concat(c.Namespaces.Include, c.Namespaces.Exclude) {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("namespace pattern %q: %w", p, err))
		}
	}
	sa := c.ServiceAccounts
	n := 0
	for _, set := range []bool{sa.All, len(sa.Names) > 0, sa.Labels != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("service accounts: give all, a list of names or a label selector, not several"))
	}
	for _, name := range sa.Names {
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			errs = append(errs, fmt.Errorf("service account %q: %s", name, msg))
		}
	}
	return errors.Join(errs...)
}

// ParseSource reads NAMESPACE/NAME.
func ParseSource(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("source secret %q: want NAMESPACE/NAME", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// Reason says why a namespace is or is not selected.
type Reason string

// Reasons.
const (
	Selected        Reason = "selected"
	ExcludedByName  Reason = "excluded by name"
	NotIncluded     Reason = "not in the include list"
	LabelsDoNotFit  Reason = "labels do not match the selector"
	NamespaceGoing  Reason = "terminating"
	SourceNamespace Reason = "holds the source secret"
)

// Match reports whether namespace ns is selected, and why not when it is not.
func (s NamespaceSelector) Match(ns *corev1.Namespace) (bool, Reason) {
	if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		return false, NamespaceGoing
	}
	if matchAny(s.Exclude, ns.Name) {
		return false, ExcludedByName
	}
	if len(s.Include) > 0 && !matchAny(s.Include, ns.Name) {
		return false, NotIncluded
	}
	if s.Labels != nil && !s.Labels.Matches(labels.Set(ns.Labels)) {
		return false, LabelsDoNotFit
	}
	return true, Selected
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Match reports whether the ServiceAccount is to be patched.
func (s ServiceAccountSelector) Match(sa *corev1.ServiceAccount) bool {
	switch {
	case s.All:
		return true
	case len(s.Names) > 0:
		return slices.Contains(s.Names, sa.Name)
	case s.Labels != nil:
		return s.Labels.Matches(labels.Set(sa.Labels))
	}
	return false
}

// MissingLabels returns label key=value pairs that, added to a namespace, would make the selector's equality
// requirements match (for doctor's advice); nil when the selector has no such requirement.
func MissingLabels(sel labels.Selector, have map[string]string) []string {
	if sel == nil {
		return nil
	}
	reqs, _ := sel.Requirements()
	var out []string
	for _, r := range reqs {
		if r.Matches(labels.Set(have)) {
			continue
		}
		vals := r.Values().UnsortedList()
		slices.Sort(vals)
		switch r.Operator() {
		case "=", "==", "in":
			if len(vals) > 0 {
				out = append(out, r.Key()+"="+vals[0])
			}
		case "exists":
			out = append(out, r.Key()+"=true")
		}
	}
	return out
}
