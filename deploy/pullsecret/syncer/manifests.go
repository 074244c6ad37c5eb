package syncer

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Names of the objects that run the controller in a cluster. The ClusterRole and ClusterRoleBinding are
// cluster-wide, so one controller runs per cluster.
const (
	AppName      = "registry-kit-pull-secret-sync"
	ComponentKey = "app.kubernetes.io/component"
	nameLabel    = "app.kubernetes.io/name"
	healthPort   = 8080
	nonRootID    = 65532
)

// ManifestOptions say how the controller is deployed.
type ManifestOptions struct {
	// Namespace holds the controller, its Lease and the source Secret.
	Namespace string
	// Image is registry-kit's own image.
	Image           string
	ImagePullPolicy corev1.PullPolicy
	// SourceName is the source Secret in Namespace; TargetName the copies' name (default SourceName).
	SourceName, TargetName string
	// NamespaceSelector is a label selector ("" for every namespace); Exclude defaults to kube-*.
	NamespaceSelector string
	Include, Exclude  []string
	// ServiceAccounts is the --service-accounts value (default "default").
	ServiceAccounts string
	// Replicas defaults to 2 (one leads, one stands by).
	Replicas int32
}

func (o ManifestOptions) withDefaults() ManifestOptions {
	if o.TargetName == "" {
		o.TargetName = o.SourceName
	}
	if o.Exclude == nil {
		o.Exclude = DefaultExcludePatterns
	}
	if o.ServiceAccounts == "" {
		o.ServiceAccounts = "default"
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	return o
}

// Args are the controller's command line.
func (o ManifestOptions) Args() []string {
	o = o.withDefaults()
	args := []string{"pull-secret", "sync",
		"--source", o.Namespace + "/" + o.SourceName,
		"--target-name", o.TargetName,
		"--exclude-namespace", strings.Join(o.Exclude, ","),
		"--service-accounts", o.ServiceAccounts,
		"--listen", fmt.Sprintf(":%d", healthPort),
	}
	if o.NamespaceSelector != "" {
		args = append(args, "--namespace-selector", o.NamespaceSelector)
	}
	if len(o.Include) > 0 {
		args = append(args, "--include-namespace", strings.Join(o.Include, ","))
	}
	return args
}

// Manifests returns the objects that run the controller: its ServiceAccount, a ClusterRole and binding limited to
// what it needs cluster-wide (Secrets of the target name, ServiceAccounts, Namespaces, Events), a Role and binding
// in its own namespace (its Lease, the source Secret), and the Deployment.
func Manifests(o ManifestOptions) ([]runtime.Object, error) {
	o = o.withDefaults()
	var errs []error
	if o.Namespace == "" || o.SourceName == "" || o.Image == "" {
		errs = append(errs, errors.New("pull-secret sync manifests: namespace, source name and image are required"))
	}
	if o.Replicas < 1 {
		errs = append(errs, fmt.Errorf("pull-secret sync replicas %d: want at least 1", o.Replicas))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	labels := map[string]string{nameLabel: AppName, ComponentKey: "pull-secret-sync", managedByLabel: managedByValue}
	meta := func(namespaced bool) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: AppName, Labels: labels}
		if namespaced {
			m.Namespace = o.Namespace
		}
		return m
	}
	rbac := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: AppName, Namespace: o.Namespace}}
	return []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(true)},
		&rbacv1.ClusterRole{TypeMeta: rbac("ClusterRole"), ObjectMeta: meta(false), Rules: clusterRules(o.TargetName)},
		&rbacv1.ClusterRoleBinding{TypeMeta: rbac("ClusterRoleBinding"), ObjectMeta: meta(false), Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AppName}},
		&rbacv1.Role{TypeMeta: rbac("Role"), ObjectMeta: meta(true), Rules: namespaceRules(o.SourceName)},
		&rbacv1.RoleBinding{TypeMeta: rbac("RoleBinding"), ObjectMeta: meta(true), Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AppName}},
		deployment(o, labels, meta(true)),
	}, nil
}

// clusterRules: Secrets only of the copies' name (create cannot be limited by name in RBAC; list and watch are,
// because the informer asks with fieldSelector metadata.name), ServiceAccounts read and patched, Namespaces listed
// and watched, Events written.
func clusterRules(target string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{target},
			Verbs: []string{"get", "list", "watch", "update", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
		// patch: the event recorder folds a repeated Event into a count on the first one.
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// namespaceRules: the Lease the replicas elect a leader with, and the source Secret.
func namespaceRules(source string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{AppName},
			Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{source},
			Verbs: []string{"get", "list", "watch"}},
	}
}

func deployment(o ManifestOptions, labels map[string]string, meta metav1.ObjectMeta) *appsv1.Deployment {
	selector := map[string]string{nameLabel: AppName}
	probe := &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		PeriodSeconds: 10, TimeoutSeconds: 3, FailureThreshold: 3,
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            AppName,
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](nonRootID),
						RunAsGroup:     ptr.To[int64](nonRootID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "sync",
						Image:           o.Image,
						ImagePullPolicy: o.ImagePullPolicy,
						Args:            o.Args(),
						Env:             []corev1.EnvVar{fieldEnv("POD_NAMESPACE", "metadata.namespace"), fieldEnv("POD_NAME", "metadata.name")},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: healthPort, Protocol: corev1.ProtocolTCP}},
						LivenessProbe:   probe,
						ReadinessProbe:  probe,
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
				},
			},
		},
	}
}
