package deploy

import (
	"bytes"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
	"github.com/registry-kit/registry-kit/manifests"
)

// RBACRoleName is the name of the Role RBACFor grants inside the registry's namespace; RBACClusterRoleName that of
// the ClusterRole for the namespace itself and the nodes.
const RBACRoleName = "registry-kit-deploy"

// RBACClusterRoleName is the ClusterRole of RBACFor(namespace): one per namespace, since it names it.
func RBACClusterRoleName(namespace string) string { return RBACRoleName + ":" + namespace }

// RBACObjects are the least-privilege permissions Deploy and Undeploy need for a registry in namespace: a Role
// for everything inside it, and a ClusterRole for the only cluster-scoped things, the namespace itself (by name)
// and the list of nodes. There is no right to create namespaces: RBAC cannot limit "create" to one name, and the
// Role needs the namespace to exist before it can be bound anyway.
func RBACObjects(namespace string, opts ...RBACOption) (*rbacv1.Role, *rbacv1.ClusterRole) {
	labels := map[string]string{manifests.LabelName: manifests.AppName}
	inNamespace := []string{"get", "list", "create", "patch", "delete"}
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: RBACRoleName, Namespace: namespace, Labels: labels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets", "services", "persistentvolumeclaims", "configmaps", "serviceaccounts"}, Verbs: inNamespace},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: inNamespace},
			{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: inNamespace},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: inNamespace},
			{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"list"}},
		},
	}
	cluster := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: RBACClusterRoleName(namespace), Labels: labels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{namespace}, Verbs: []string{"get", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list"}},
		},
	}
	var o rbacOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.pullSync {
		role.Rules = append(role.Rules, pullSyncRoleRules()...)
		cluster.Rules = append(cluster.Rules, pullSyncClusterRules()...)
	}
	return role, cluster
}

// RBACOption adds to what RBACObjects grants.
type RBACOption func(*rbacOptions)

type rbacOptions struct{ pullSync bool }

// WithPullSync adds what `deploy --sync-pull-secrets` and `undeploy --delete-copies` need on top: managing the
// controller's own Role, ClusterRole and bindings (by name; "bind" and "escalate" on those names let deploy grant
// the controller its rights without holding them), its Lease, and for --delete-copies listing and deleting the
// copies in every namespace and patching ServiceAccounts' references to them.
func WithPullSync() RBACOption { return func(o *rbacOptions) { o.pullSync = true } }

func pullSyncRoleRules() []rbacv1.PolicyRule {
	name := []string{syncer.AppName}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"create"}},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, ResourceNames: name, Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, ResourceNames: name, Verbs: []string{"bind", "escalate"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: name, Verbs: []string{"get", "delete"}},
	}
}

func pullSyncClusterRules() []rbacv1.PolicyRule {
	name := []string{syncer.AppName}
	return []rbacv1.PolicyRule{
		// RBAC cannot limit "create" to a name; everything after creation is limited to the controller's own objects.
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles", "clusterrolebindings"}, Verbs: []string{"create"}},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles", "clusterrolebindings"}, ResourceNames: name, Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, ResourceNames: name, Verbs: []string{"bind", "escalate"}},
		// undeploy --delete-copies: the copies are found by label in every namespace.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "patch"}},
	}
}

const rbacHeader = `# The permissions "registry-kit deploy -n {{ns}}" and "registry-kit undeploy -n {{ns}}" need, and no more: a Role for
# everything inside namespace {{ns}}, and a ClusterRole for the only cluster-scoped things: the namespace {{ns}} itself
# (by name) and the list of nodes (to find a node-reachable address). No Secret outside {{ns}} can be read, and no
# other namespace touched.
#
# The Role lives in {{ns}}, so {{ns}} must exist before it is applied, and the subject gets no right to create
# namespaces (RBAC cannot limit "create" to one name: it would allow creating any namespace). As a cluster admin:
#   kubectl create namespace {{ns}}
#   kubectl annotate namespace {{ns}} registry-kit.dev/created-by=registry-kit   # optional: hand {{ns}} over to registry-kit
#   registry-kit deploy --print-rbac -n {{ns}} | kubectl apply -f -
#   kubectl create rolebinding registry-kit-deploy -n {{ns}} --role={{role}} --user=alice
#   kubectl create clusterrolebinding {{crole}} --clusterrole={{crole}} --user=alice
# (or --serviceaccount=NAMESPACE:NAME instead of --user). With the annotation, deploy applies the namespace (Pod
# Security label enforce=restricted) and "undeploy --delete-data" deletes it with everything in it; without it,
# both leave the namespace as it is (label it yourself: kubectl label namespace {{ns}} pod-security.kubernetes.io/enforce=restricted).
#
# Server-side apply needs "patch", plus "create" for objects that do not exist yet; "get" reads the live object to
# report created/configured/unchanged and to keep existing Secrets; "list" on pods and events explains a registry
# that does not become ready; "list" finds what undeploy deletes, "delete" is undeploy's. With --storage s3 there
# are also a PodDisruptionBudget and (--with-redis) a second Deployment and Service. "--print-rbac
# --sync-pull-secrets" adds what the pull-secret controller's deployment and "undeploy --delete-copies" need.
`

// RBACFor is RBACObjects(namespace) as YAML, with comments saying how to bind it: what
// `registry-kit deploy --print-rbac -n namespace` prints.
func RBACFor(namespace string, opts ...RBACOption) ([]byte, error) {
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	role, cluster := RBACObjects(namespace, opts...)
	var b bytes.Buffer
	b.WriteString(strings.NewReplacer("{{ns}}", namespace, "{{role}}", role.Name, "{{crole}}", cluster.Name).Replace(rbacHeader))
	for i, o := range []any{role, cluster} {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encoding the RBAC objects: %w", err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
