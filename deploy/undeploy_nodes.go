package deploy

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// undeployNodes removes what deploy put on the nodes for the registries of namespace ns: first the certs.d entries
// (the trust DaemonSet rolls to --remove and must finish on every node), then the node DaemonSets and ConfigMaps,
// then NodesNamespace when nothing of any registry is left in it.
func undeployNodes(ctx context.Context, c Clients, opts UndeployOptions, res *UndeployResult) error {
	if c.Kube == nil {
		return nil
	}
	ns := opts.Namespace
	sel := labels.SelectorFromSet(map[string]string{LabelRegistryNamespace: ns}).String()
	dss, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsForbidden(err) {
		// Whoever may not read the nodes' namespace could not have deployed anything there either (node-proxy,
		// node trust); a cluster admin's undeploy removes it.
		fmt.Fprintf(opts.Progress, "namespace %s not checked (not allowed to list its daemonsets)\n", NodesNamespace)
		return nil
	}
	if err != nil {
		return explain(err, "list", fmt.Sprintf("daemonsets in namespace %q", NodesNamespace))
	}
	names := map[string]bool{}
	for _, d := range dss.Items {
		names[d.Labels[LabelRegistryName]] = true
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err == nil {
		for _, cm := range cms.Items {
			names[cm.Labels[LabelRegistryName]] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		deleted, err := untrust(ctx, c, ns, name, opts.Progress, opts.DryRun)
		res.Deleted = append(res.Deleted, deleted...)
		if err != nil {
			return err
		}
		deleted, err = deleteNodeObjects(ctx, c, ns, name, opts.DryRun, opts.Progress)
		res.Deleted = append(res.Deleted, deleted...)
		if err != nil {
			return err
		}
	}
	if len(sorted) > 0 && opts.DryRun == DryRunNone {
		return deleteNodesNamespaceIfEmpty(ctx, c, opts, res)
	}
	return nil
}

func deleteNodesNamespaceIfEmpty(ctx context.Context, c Clients, opts UndeployOptions, res *UndeployResult) error {
	nsObj, err := c.Kube.CoreV1().Namespaces().Get(ctx, NodesNamespace, metav1.GetOptions{})
	if err != nil || nsObj.Annotations[CreatedByAnnotation] != managedByValue {
		return nil
	}
	rest := labels.SelectorFromSet(map[string]string{labelManagedBy: managedByValue}).String()
	dss, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: rest})
	if err != nil {
		return nil
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: rest})
	if err != nil {
		return nil
	}
	left := 0
	for _, d := range dss.Items {
		if d.DeletionTimestamp == nil {
			left++
		}
	}
	for _, cm := range cms.Items {
		if cm.DeletionTimestamp == nil {
			left++
		}
	}
	if left > 0 {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	if err := c.Kube.CoreV1().Namespaces().Delete(ctx, NodesNamespace, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return explain(err, "delete", "namespace "+NodesNamespace)
	}
	res.Deleted = append(res.Deleted, "namespace/"+NodesNamespace)
	fmt.Fprintf(opts.Progress, "namespace/%s deleted (nothing of any registry left in it)\n", NodesNamespace)
	return nil
}
