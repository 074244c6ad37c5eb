package deploy

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestServiceAccountAuthObjects(t *testing.T) {
	objs, _ := generatedObjects(t)
	sa := ServiceAccountAuth{Audience: "registry-kit", Issuer: "https://kubernetes.default.svc.cluster.local"}
	// Twice: a redeploy must not repeat the flags.
	var extra []*unstructured.Unstructured
	for range 2 {
		var err error
		if extra, err = serviceAccountAuthObjects(objs, sa); err != nil {
			t.Fatal(err)
		}
	}
	reg := registryDeployment(objs)
	containers, _, _ := unstructured.NestedSlice(reg.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	var got []string
	for _, a := range args {
		if strings.HasPrefix(a, "--service-account-") {
			got = append(got, a)
		}
	}
	if diff := cmp.Diff([]string{"--service-account-audience=registry-kit", "--service-account-issuer=https://kubernetes.default.svc.cluster.local"}, got); diff != "" {
		t.Errorf("serve flags (-want +got):\n%s", diff)
	}
	if mount, _, _ := unstructured.NestedBool(reg.Object, "spec", "template", "spec", "automountServiceAccountToken"); !mount {
		t.Error("the registry pod gets no token to read the issuer's keys with")
	}

	var role rbacv1.ClusterRole
	var nodes, discovery rbacv1.ClusterRoleBinding
	for i, dst := range []any{&role, &nodes, &discovery} {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(extra[i].Object, dst); err != nil {
			t.Fatal(err)
		}
	}
	name := ServiceAccountRBACName("docker-registry", reg.GetName())
	wantRule := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"registry-kit"}, Verbs: []string{"request-serviceaccounts-token-audience"}}}
	if diff := cmp.Diff(wantRule, role.Rules); diff != "" || role.Name != name {
		t.Errorf("ClusterRole %s (-want +got):\n%s", role.Name, diff)
	}
	if nodes.RoleRef.Name != name || len(nodes.Subjects) != 1 || nodes.Subjects[0].Kind != "Group" || nodes.Subjects[0].Name != "system:nodes" {
		t.Errorf("node binding %+v", nodes)
	}
	if discovery.RoleRef.Name != IssuerDiscoveryRole || discovery.Subjects[0].Kind != "ServiceAccount" ||
		discovery.Subjects[0].Namespace != "docker-registry" || discovery.Subjects[0].Name != "default" {
		t.Errorf("discovery binding %+v", discovery)
	}
	for _, u := range extra {
		if !isOurs(u) {
			t.Errorf("%s %s lacks the managed-by label", u.GetKind(), u.GetName())
		}
	}

	var out bytes.Buffer
	ServiceAccountSteps(&out, &Result{Namespace: "docker-registry", PullPrefix: "localhost:30500", Applied: []Applied{{Object: reg}}}, sa)
	for _, s := range []string{"credential-provider config --match localhost:30500 --service-account-tokens --audience registry-kit",
		"--image-credential-provider-config=", "- namespaces: [team-a]", "Secret docker-registry/registry-htpasswd"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("steps lack %q:\n%s", s, out.String())
		}
	}
}

func TestServiceAccountAuthNeedsPolicy(t *testing.T) {
	objs, _ := generatedObjects(t)
	for _, u := range objs {
		if u.GetKind() == "Secret" && strings.HasSuffix(u.GetName(), "-htpasswd") {
			unstructured.RemoveNestedField(u.Object, "data", "access-policy.yaml")
		}
	}
	if _, err := serviceAccountAuthObjects(objs, ServiceAccountAuth{Audience: "a"}); err == nil || !strings.Contains(err.Error(), "has no access-policy.yaml") {
		t.Errorf("error %v", err)
	}
}

func TestServiceAccountAuthNoRegistry(t *testing.T) {
	if _, err := serviceAccountAuthObjects(nil, ServiceAccountAuth{Audience: "a"}); err == nil || !strings.Contains(err.Error(), "no registry-kit Deployment") {
		t.Errorf("error %v", err)
	}
}

// TestUndeployServiceAccountAuth: undeploy removes the cluster-scoped RBAC deploy --service-account-auth applied
// for the registry it deletes, and nothing of another namespace's registry.
func TestUndeployServiceAccountAuth(t *testing.T) {
	name := ServiceAccountRBACName("docker-registry", "registry")
	other := ServiceAccountRBACName("elsewhere", "registry")
	dyn := fakeDynamic(
		createdNamespace("docker-registry"),
		owned(obj("apps/v1", "Deployment", "docker-registry", "registry"), FieldManager),
		owned(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", name), FieldManager),
		owned(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name), FieldManager),
		owned(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name+":issuer-discovery"), FieldManager),
		owned(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", other), FieldManager),
	)
	res, err := Undeploy(context.Background(), Clients{Dynamic: dyn}, UndeployOptions{Namespace: "docker-registry"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clusterrole.rbac.authorization.k8s.io/" + name, "clusterrolebinding.rbac.authorization.k8s.io/" + name,
		"clusterrolebinding.rbac.authorization.k8s.io/" + name + ":issuer-discovery"} {
		if !slices.Contains(res.Deleted, want) {
			t.Errorf("undeploy did not delete %s: %v", want, res.Deleted)
		}
	}
	if _, err := dyn.Resource(clusterRoles).Get(context.Background(), other, metav1.GetOptions{}); err != nil {
		t.Errorf("another namespace's ClusterRole is gone: %v", err)
	}
}
