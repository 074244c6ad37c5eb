package deploy

import (
	"errors"
	"fmt"
	"io"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-kit/registry-kit/manifests"
)

// ServiceAccountAuth asks Deploy to make the registry accept the pods' own ServiceAccount tokens (KEP-4412): the
// registry verifies them against the cluster's service account issuer (its keys read from the API server with the
// registry pod's own token), and the kubelets may request tokens for Audience.
type ServiceAccountAuth struct {
	// Audience is the token audience (serve's --service-account-audience, the kubelet's
	// tokenAttributes.serviceAccountTokenAudience). Required.
	Audience string
	// Issuer is the API server's --service-account-issuer; empty: the registry reads it from the API server.
	Issuer string
}

// NodeAudienceVerb is the verb the NodeRestriction admission plugin checks (ServiceAccountNodeAudienceRestriction,
// on by default since Kubernetes 1.33) before a kubelet may request a token for an audience no pod on its node
// mounts: RBAC must grant it on a resource named like the audience.
const NodeAudienceVerb = "request-serviceaccounts-token-audience"

// IssuerDiscoveryRole is the built-in ClusterRole that lets its subjects read the service account issuer's OIDC
// discovery document and keys (bound to every ServiceAccount by default; deploy binds the registry's explicitly).
const IssuerDiscoveryRole = "system:service-account-issuer-discovery"

// serviceAccountArgPrefix starts every serve flag of this feature.
const serviceAccountArgPrefix = "--service-account-"

// serviceAccountAuthObjects turns on token auth in the registry Deployment among objs (flags, and the pod's own
// ServiceAccount token mounted so it can read the issuer's keys) and returns the cluster-scoped RBAC it needs.
func serviceAccountAuthObjects(objs []*unstructured.Unstructured, sa ServiceAccountAuth) ([]*unstructured.Unstructured, error) {
	if sa.Audience == "" {
		return nil, errors.New("--service-account-auth: the audience is empty")
	}
	reg := registryDeployment(objs)
	if reg == nil {
		return nil, errors.New("--service-account-auth: no registry-kit Deployment among the objects to deploy")
	}
	if err := needPolicy(objs, reg.GetName()); err != nil {
		return nil, err
	}
	if err := setServiceAccountArgs(reg, sa); err != nil {
		return nil, err
	}
	podSA, _, _ := unstructured.NestedString(reg.Object, "spec", "template", "spec", "serviceAccountName")
	if podSA == "" {
		podSA = "default"
	}
	ns := reg.GetNamespace()
	return serviceAccountRBAC(ns, reg.GetName(), podSA, sa.Audience)
}

// needPolicy refuses an htpasswd Secret without an access policy: serve would refuse to start, since every
// ServiceAccount of the cluster could otherwise push and delete.
func needPolicy(objs []*unstructured.Unstructured, name string) error {
	for _, u := range objs {
		if u.GetKind() != "Secret" || u.GetName() != manifests.HtpasswdSecretName(name) {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		strData, _, _ := unstructured.NestedStringMap(u.Object, "stringData")
		if data[manifests.AccessPolicyKey] == "" && strData[manifests.AccessPolicyKey] == "" {
			return fmt.Errorf("--service-account-auth: the Secret %s/%s has no %s: without an access policy every ServiceAccount of the cluster could pull, push and delete",
				u.GetNamespace(), u.GetName(), manifests.AccessPolicyKey)
		}
	}
	return nil
}

func setServiceAccountArgs(reg *unstructured.Unstructured, sa ServiceAccountAuth) error {
	containers, _, _ := unstructured.NestedSlice(reg.Object, "spec", "template", "spec", "containers")
	found := false
	for i, c := range containers {
		cm, ok := c.(map[string]any)
		if !ok || cm["name"] != manifests.ContainerName {
			continue
		}
		found = true
		args, _, _ := unstructured.NestedStringSlice(cm, "args")
		kept := args[:0:0]
		for _, a := range args {
			if !strings.HasPrefix(a, serviceAccountArgPrefix) {
				kept = append(kept, a)
			}
		}
		kept = append(kept, serviceAccountArgPrefix+"audience="+sa.Audience)
		if sa.Issuer != "" {
			kept = append(kept, serviceAccountArgPrefix+"issuer="+sa.Issuer)
		}
		if err := unstructured.SetNestedStringSlice(cm, kept, "args"); err != nil {
			return fmt.Errorf("--service-account-auth: %w", err)
		}
		containers[i] = cm
	}
	if !found {
		return fmt.Errorf("--service-account-auth: the Deployment %s/%s has no container %q", reg.GetNamespace(), reg.GetName(), manifests.ContainerName)
	}
	if err := unstructured.SetNestedSlice(reg.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return fmt.Errorf("--service-account-auth: %w", err)
	}
	// The registry reads the issuer's keys from the API server with its own (API-audience) token.
	return unstructured.SetNestedField(reg.Object, true, "spec", "template", "spec", "automountServiceAccountToken")
}

// ServiceAccountRBACName is the name of the ClusterRole and ClusterRoleBindings deploy creates for the registry
// name in namespace ns (cluster-scoped: one set per registry).
func ServiceAccountRBACName(ns, name string) string {
	return "registry-kit:" + ns + ":" + name + ":serviceaccount-tokens"
}

// ServiceAccountRBAC is what token auth needs from RBAC, for the registry name in namespace ns running as
// ServiceAccount podSA: a ClusterRole letting the kubelets (group system:nodes) request tokens for audience,
// bound to them, and a binding of IssuerDiscoveryRole to the registry's ServiceAccount.
func ServiceAccountRBAC(ns, name, podSA, audience string) (*rbacv1.ClusterRole, []*rbacv1.ClusterRoleBinding) {
	rbacName := ServiceAccountRBACName(ns, name)
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Labels: map[string]string{
			manifests.LabelName: manifests.AppName, manifests.LabelInstance: name, labelManagedBy: managedByValue,
		}}
	}
	gv := rbacv1.SchemeGroupVersion.String()
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRole"},
		ObjectMeta: meta(rbacName),
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{audience}, Verbs: []string{NodeAudienceVerb}}},
	}
	nodes := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRoleBinding"},
		ObjectMeta: meta(rbacName),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: rbacName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
	discovery := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv, Kind: "ClusterRoleBinding"},
		ObjectMeta: meta(rbacName + ":issuer-discovery"),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: IssuerDiscoveryRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: podSA, Namespace: ns}},
	}
	return role, []*rbacv1.ClusterRoleBinding{nodes, discovery}
}

func serviceAccountRBAC(ns, name, podSA, audience string) ([]*unstructured.Unstructured, error) {
	role, bindings := ServiceAccountRBAC(ns, name, podSA, audience)
	objs := []runtime.Object{role}
	for _, b := range bindings {
		objs = append(objs, b)
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("--service-account-auth: %w", err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		out = append(out, u)
	}
	return out, nil
}

// ServiceAccountSteps prints what is left to do on the nodes and in the access policy once the registry accepts
// ServiceAccount tokens: install the plugin, give the kubelet the config, grant namespaces.
func ServiceAccountSteps(w io.Writer, r *Result, sa ServiceAccountAuth) {
	match := r.PullPrefix
	if match == "" {
		match = "HOST:PORT"
	}
	fmt.Fprintf(w, `
Pods pull with their own ServiceAccount token (audience %q): no pull Secret needed. On each node:
  1. install this binary as /usr/local/lib/kubelet/credential-providers/registry-kit
  2. registry-kit credential-provider config --match %s --service-account-tokens --audience %s \
       > /etc/kubernetes/credential-provider-config.yaml
  3. restart the kubelet with
       --image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml
       --image-credential-provider-bin-dir=/usr/local/lib/kubelet/credential-providers
     (Kubernetes 1.34+, where the kubelet feature KubeletServiceAccountTokenForCredentialProviders is on by default;
     the ClusterRole %s lets the kubelets request this audience)
Then grant namespaces in the access policy (key %s of Secret %s/%s), e.g.:
  - namespaces: [team-a]
    repos: ["team-a/**"]
    actions: [pull]
`, sa.Audience, match, sa.Audience, ServiceAccountRBACName(r.Namespace, registryName(r)), manifests.AccessPolicyKey,
		r.Namespace, manifests.HtpasswdSecretName(registryName(r)))
}

// registryName is the registry's name (its Deployment's), from the applied objects.
func registryName(r *Result) string {
	for _, a := range r.Applied {
		if u := a.Object; u.GetKind() == "Deployment" && isOurs(u) && !isRedis(u) {
			return u.GetName()
		}
	}
	return manifests.DefaultName
}
