package access

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ServiceAccountPrefix starts the user name of a Kubernetes ServiceAccount, system:serviceaccount:<namespace>:<name>,
// as Kubernetes spells it in RBAC and audit logs (auth/satoken authenticates such users from their tokens). A rule
// names them with namespaces: [NS] (every ServiceAccount of NS) or serviceAccounts: [NS/NAME] (NAME may be "*");
// "*" as a namespace means every namespace.
const ServiceAccountPrefix = "system:serviceaccount:"

// ServiceAccountUser is the user name of ServiceAccount name in namespace ns.
func ServiceAccountUser(ns, name string) string { return ServiceAccountPrefix + ns + ":" + name }

// ParseServiceAccount splits system:serviceaccount:<namespace>:<name>; ok is false for any other user name.
func ParseServiceAccount(user string) (ns, name string, ok bool) {
	rest, found := strings.CutPrefix(user, ServiceAccountPrefix)
	if !found {
		return "", "", false
	}
	ns, name, found = strings.Cut(rest, ":")
	if !found || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}

// saRef is one serviceAccounts entry (or, with name "*", one namespaces entry).
type saRef struct{ ns, name string }

func (s saRef) matches(ns, name string) bool {
	return (s.ns == Everyone || s.ns == ns) && (s.name == Everyone || s.name == name)
}

func (s saRef) String() string {
	if s.name == Everyone {
		return "namespace " + s.ns
	}
	return "service account " + s.ns + "/" + s.name
}

// namesServiceAccount reports whether the rule names user, a ServiceAccount, and how.
func (r *Rule) namesServiceAccount(user string) (string, bool) {
	if len(r.serviceAccounts) == 0 {
		return "", false
	}
	ns, name, ok := ParseServiceAccount(user)
	if !ok {
		return "", false
	}
	for _, s := range r.serviceAccounts {
		if s.matches(ns, name) {
			return s.String(), true
		}
	}
	return "", false
}

func parseNamespace(ns string) error {
	if ns == Everyone {
		return nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	return nil
}

func parseServiceAccountRef(s string) (saRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return saRef{}, fmt.Errorf("service account %q: want NAMESPACE/NAME (NAME may be *)", s)
	}
	if err := parseNamespace(ns); err != nil {
		return saRef{}, fmt.Errorf("service account %q: %w", s, err)
	}
	if name != Everyone {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return saRef{}, fmt.Errorf("service account %q: name: %s", s, strings.Join(errs, "; "))
		}
	}
	return saRef{ns: ns, name: name}, nil
}
