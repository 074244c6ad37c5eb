package deploy

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

var (
	rolesResource        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	roleBindingsResource = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	clusterRoles         = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	clusterRoleBindings  = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	leasesResource       = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
)

// undeployPullSync removes what `deploy --sync-pull-secrets` added besides the Deployment (already deleted by
// then): the controller's Role and RoleBinding, its ClusterRole and ClusterRoleBinding when they bind this
// namespace's controller, its Lease, and, with DeleteCopies, the copies it made and the references it added.
//
// deployed says the controller's own objects were among what undeploy found; without them (and without
// DeleteCopies) a subject holding only the base --print-rbac rights may not read RBAC objects at all, and a refusal
// means there is nothing of the controller's it could remove.
func undeployPullSync(ctx context.Context, c Clients, opts UndeployOptions, res *UndeployResult, deployed bool) error {
	ns := opts.Namespace
	skipMissing := func(err error, gvr schema.GroupVersionResource, ns string) error {
		if !deployed && !opts.DeleteCopies && apierrors.IsForbidden(err) {
			return nil
		}
		return skipMissing(err, gvr, ns)
	}
	for _, gvr := range []schema.GroupVersionResource{roleBindingsResource, rolesResource} {
		u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, syncer.AppName, metav1.GetOptions{})
		if err := skipMissing(err, gvr, ns); err != nil || u == nil {
			if err != nil {
				return err
			}
			continue
		}
		if appliedByUs(u) {
			if err := deleteOne(ctx, c, gvr, u, opts, res); err != nil {
				return err
			}
		}
	}
	binding, err := c.Dynamic.Resource(clusterRoleBindings).Get(ctx, syncer.AppName, metav1.GetOptions{})
	if err := skipMissing(err, clusterRoleBindings, ""); err != nil {
		return err
	}
	if binding != nil && appliedByUs(binding) && bindsNamespace(binding, ns) {
		if err := deleteOne(ctx, c, clusterRoleBindings, binding, opts, res); err != nil {
			return err
		}
		role, err := c.Dynamic.Resource(clusterRoles).Get(ctx, syncer.AppName, metav1.GetOptions{})
		if err := skipMissing(err, clusterRoles, ""); err != nil {
			return err
		}
		if role != nil && appliedByUs(role) {
			if err := deleteOne(ctx, c, clusterRoles, role, opts, res); err != nil {
				return err
			}
		}
	}
	if lease, err := c.Dynamic.Resource(leasesResource).Namespace(ns).Get(ctx, syncer.AppName, metav1.GetOptions{}); err == nil {
		if err := deleteOne(ctx, c, leasesResource, lease, opts, res); err != nil {
			return err
		}
	}
	if !opts.DeleteCopies {
		return nil
	}
	if opts.DryRun == DryRunNone {
		if err := waitControllerGone(ctx, c, ns); err != nil {
			return err
		}
	}
	copies, err := syncer.DeleteCopies(ctx, c.Kube, ns, opts.DryRun != DryRunNone)
	for _, s := range copies {
		r := "secret/" + s + " deleted (pull secret copy)"
		if opts.DryRun != DryRunNone {
			r += fmt.Sprintf(" (%s dry run)", opts.DryRun)
		}
		res.Deleted = append(res.Deleted, "secret/"+s)
		fmt.Fprintln(opts.Progress, r)
	}
	return err
}

// skipMissing turns NotFound into nil (the object, or the kind, is not there).
func skipMissing(err error, gvr schema.GroupVersionResource, ns string) error {
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	where := gvr.GroupResource().String() + " " + syncer.AppName
	if ns != "" {
		where += fmt.Sprintf(" in namespace %q", ns)
	}
	return explain(err, "get", where)
}

func bindsNamespace(binding *unstructured.Unstructured, ns string) bool {
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["namespace"] == ns {
			return true
		}
	}
	return false
}

// waitControllerGone waits until the controller's pods have ended, so none recreates a copy being deleted.
func waitControllerGone(ctx context.Context, c Clients, ns string) error {
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + syncer.AppName}
	var left int
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, sel)
		if err != nil {
			return false, explain(err, "list", fmt.Sprintf("pods in namespace %q", ns))
		}
		left = len(pods.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the pull-secret controller's pods to end before deleting its copies (%d left): %w", left, err)
	}
	return nil
}
