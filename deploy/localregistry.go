package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/manifests"
)

// The KEP-1755 ConfigMap that tells tools (Tilt, ctlptl, skaffold, ...) where the cluster's local registry is.
const (
	LocalRegistryNamespace = "kube-public"
	LocalRegistryConfigMap = "local-registry-hosting"
	localRegistryKey       = "localRegistryHosting.v1"
	localRegistryHelp      = "https://github.com/registry-kit/registry-kit#why-is-my-pod-in-imagepullbackoff (or run: registry-kit doctor)"
)

// localRegistryHosting is the v1 document of KEP-1755.
type localRegistryHosting struct {
	Host                     string `json:"host,omitempty"`
	HostFromContainerRuntime string `json:"hostFromContainerRuntime,omitempty"`
	HostFromClusterNetwork   string `json:"hostFromClusterNetwork,omitempty"`
	Help                     string `json:"help,omitempty"`
}

// LocalRegistryHostingConfigMap describes the deployed registry as KEP-1755 asks: host (where this machine
// pushes), hostFromContainerRuntime (the nodes' pull prefix) and hostFromClusterNetwork (the Service's DNS name).
func LocalRegistryHostingConfigMap(r *Result) (*corev1.ConfigMap, error) {
	doc := localRegistryHosting{
		Host:                     r.PushAddress,
		HostFromContainerRuntime: r.PullPrefix,
		HostFromClusterNetwork:   net.JoinHostPort(r.Service+"."+r.Namespace+".svc", strconv.Itoa(manifests.RegistryPort)),
		Help:                     localRegistryHelp,
	}
	if doc.Host == "" {
		doc.Host = r.PullPrefix
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", localRegistryKey, err)
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: LocalRegistryNamespace, Name: LocalRegistryConfigMap, Labels: map[string]string{
			manifests.LabelManagedBy: manifests.AppName, LabelRegistryNamespace: r.Namespace, LabelRegistryName: r.Service}},
		Data: map[string]string{localRegistryKey: string(b)},
	}, nil
}

// applyLocalRegistryHosting keeps the KEP-1755 ConfigMap in line with this deploy. Not being allowed to is a
// warning, not a failure: the registry works without it.
func (r *Result) applyLocalRegistryHosting(ctx context.Context, c Clients, opts Options) error {
	if r.PullPrefix == "" || r.Service == "" {
		return nil
	}
	cm, err := LocalRegistryHostingConfigMap(r)
	if err != nil {
		return err
	}
	done, err := applyAll(ctx, c, []*unstructured.Unstructured{mustUnstructured(cm)}, applyOptions{force: true, dryRun: opts.DryRun})
	if errors.Is(err, ErrForbidden) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("not allowed to write ConfigMap %s/%s (KEP-1755 local registry hosting); tools that read it will not find this registry",
			LocalRegistryNamespace, LocalRegistryConfigMap))
		return nil
	}
	printApplied(opts.Progress, done, opts.DryRun)
	r.Applied = append(r.Applied, done...)
	return err
}

// undeployLocalRegistryHosting deletes the KEP-1755 ConfigMap when it describes a registry of namespace ns.
func undeployLocalRegistryHosting(ctx context.Context, c Clients, opts UndeployOptions, res *UndeployResult) error {
	if c.Kube == nil {
		return nil
	}
	cm, err := c.Kube.CoreV1().ConfigMaps(LocalRegistryNamespace).Get(ctx, LocalRegistryConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return nil
	}
	if err != nil {
		return explain(err, "get", "configmap "+LocalRegistryNamespace+"/"+LocalRegistryConfigMap)
	}
	if cm.Labels[LabelRegistryNamespace] != opts.Namespace || cm.Labels[manifests.LabelManagedBy] != manifests.AppName {
		return nil // another registry's, or not ours
	}
	suffix := ""
	if opts.DryRun != DryRunNone {
		suffix = fmt.Sprintf(", %s dry run", opts.DryRun)
	}
	if opts.DryRun != DryRunClient {
		del := metav1.DeleteOptions{}
		if opts.DryRun == DryRunServer {
			del.DryRun = []string{metav1.DryRunAll}
		}
		if err := c.Kube.CoreV1().ConfigMaps(LocalRegistryNamespace).Delete(ctx, LocalRegistryConfigMap, del); err != nil && !apierrors.IsNotFound(err) {
			return explain(err, "delete", "configmap "+LocalRegistryNamespace+"/"+LocalRegistryConfigMap)
		}
	}
	res.Deleted = append(res.Deleted, "configmap/"+LocalRegistryConfigMap)
	fmt.Fprintf(opts.Progress, "configmap/%s deleted (namespace %s%s)\n", LocalRegistryConfigMap, LocalRegistryNamespace, suffix)
	return nil
}
