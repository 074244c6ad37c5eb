package syncer

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// TestArgsRoundTrip: what Manifests puts on the controller's command line reads back (doctor relies on it) as the
// configuration it was made from.
func TestArgsRoundTrip(t *testing.T) {
	sel, _ := labels.Parse("pull-secrets=yes")
	tests := []struct {
		name string
		in   ManifestOptions
		want Config
	}{
		{name: "defaults", in: ManifestOptions{Namespace: "docker-registry", SourceName: "registry-kit-pull"},
			want: Config{Source: src("docker-registry", "registry-kit-pull"), TargetName: "registry-kit-pull",
				Namespaces:      NamespaceSelector{Labels: labels.Everything(), Exclude: []string{"kube-*"}},
				ServiceAccounts: ServiceAccountSelector{Names: []string{"default"}}}},
		{name: "everything set", in: ManifestOptions{Namespace: "reg", SourceName: "pull", TargetName: "regcred",
			NamespaceSelector: "pull-secrets=yes", Include: []string{"team-*", "web"}, Exclude: []string{"kube-*", "tmp-*"}, ServiceAccounts: "all"},
			want: Config{Source: src("reg", "pull"), TargetName: "regcred",
				Namespaces:      NamespaceSelector{Labels: sel, Include: []string{"team-*", "web"}, Exclude: []string{"kube-*", "tmp-*"}},
				ServiceAccounts: ServiceAccountSelector{All: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.in.Args()
			got, err := ConfigFromArgs(args[2:])
			if err != nil {
				t.Fatal(err)
			}
			str := func(s labels.Selector) string {
				if s == nil {
					return "<none>"
				}
				return s.String()
			}
			if diff := cmp.Diff(tc.want, got, cmp.Transformer("selector", str)); diff != "" {
				t.Errorf("config from %q (-want +got):\n%s", args, diff)
			}
		})
	}
}

func src(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// TestManifestsLeastPrivilege: the controller's RBAC has no wildcard, reads and changes Secrets only by name
// (create cannot be limited by name), never deletes ServiceAccounts or Namespaces, and its pod is restricted.
func TestManifestsLeastPrivilege(t *testing.T) {
	objs, err := Manifests(ManifestOptions{Namespace: "docker-registry", Image: "registry-kit:dev", SourceName: "registry-kit-pull", TargetName: "regcred"})
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	var dep *appsv1.Deployment
	for _, o := range objs {
		switch v := o.(type) {
		case *rbacv1.ClusterRole:
			rules = append(rules, v.Rules...)
		case *rbacv1.Role:
			rules = append(rules, v.Rules...)
		case *appsv1.Deployment:
			dep = v
		}
	}
	for _, r := range rules {
		all := strings.Join(slices.Concat(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames), " ")
		if strings.Contains(all, "*") {
			t.Errorf("wildcard in rule %+v", r)
		}
		if slices.Contains(r.Resources, "secrets") && len(r.ResourceNames) == 0 && !slices.Equal(r.Verbs, []string{"create"}) {
			t.Errorf("secrets rule without resourceNames grants %v", r.Verbs)
		}
		if (slices.Contains(r.Resources, "serviceaccounts") || slices.Contains(r.Resources, "namespaces")) &&
			slices.ContainsFunc(r.Verbs, func(v string) bool { return v == "delete" || v == "create" || v == "update" }) {
			t.Errorf("rule %+v changes more than imagePullSecrets", r)
		}
	}
	if dep == nil {
		t.Fatal("no Deployment")
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if !*pod.SecurityContext.RunAsNonRoot || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation ||
		!slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("pod is not restricted: %+v %+v", pod.SecurityContext, c.SecurityContext)
	}
}
