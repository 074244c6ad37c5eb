package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// UndeployOptions say what Undeploy removes.
type UndeployOptions struct {
	// Namespace the registry was deployed to.
	Namespace string
	// DeleteData also deletes the PersistentVolumeClaims deploy created (and with them the images), and then the
	// namespace if deploy created it (CreatedByAnnotation) and no other claim is left in it.
	DeleteData bool
	// DeleteCopies also deletes the pull secret copies the pull-secret controller made (and the ServiceAccount
	// references it added), in every namespace.
	DeleteCopies bool
	DryRun       DryRun
	// Progress receives one line per object; nil discards them.
	Progress io.Writer
	Logger   *slog.Logger
}

// UndeployResult lists what was deleted and what was kept.
type UndeployResult struct {
	Deleted, Kept []string
}

// undeployKinds are the namespaced kinds deploy creates (from the generator or the example overlays), in
// deletion order: the workload first so nothing restarts while its inputs disappear.
var undeployKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "serviceaccounts"},
}

var (
	pvcResource       = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	namespaceResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Undeploy deletes the objects in opts.Namespace that the registry-kit field manager applied, and nothing else:
// objects made by hand or by `registry-kit pull-secret` stay. The PersistentVolumeClaim (the registry's images)
// and the namespace are kept unless opts.DeleteData.
func Undeploy(ctx context.Context, c Clients, opts UndeployOptions) (*UndeployResult, error) {
	if c.Dynamic == nil {
		return nil, fmt.Errorf("undeploy: no dynamic client")
	}
	if opts.Namespace == "" {
		return nil, fmt.Errorf("undeploy: no namespace given")
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	log := discardLogger(opts.Logger)
	ns := opts.Namespace
	nsObj, err := c.Dynamic.Resource(namespaceResource).Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("undeploy: namespace %q does not exist (nothing deployed there)", ns)
	}
	if err != nil {
		return nil, explain(err, "get", fmt.Sprintf("namespaces %q", ns))
	}

	res := &UndeployResult{}
	// The nodes first: removing their certs.d entries needs the trust DaemonSet, and a failure stops here.
	if err := undeployNodes(ctx, c, opts, res); err != nil {
		return res, err
	}
	if err := undeployLocalRegistryHosting(ctx, c, opts, res); err != nil {
		return res, err
	}
	pullSyncDeployed := false
	kinds := undeployKinds
	if opts.DeleteData {
		kinds = append(append([]schema.GroupVersionResource(nil), kinds...), pvcResource)
	}
	for _, gvr := range kinds {
		list, err := c.Dynamic.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue // the cluster does not serve this kind
		}
		if err != nil {
			return res, explain(err, "list", fmt.Sprintf("%s in namespace %q", gvr.GroupResource(), ns))
		}
		for i := range list.Items {
			u := &list.Items[i]
			if !appliedByUs(u) {
				continue
			}
			pullSyncDeployed = pullSyncDeployed || u.GetName() == syncer.AppName
			if err := deleteOne(ctx, c, gvr, u, opts, res); err != nil {
				return res, err
			}
		}
	}
	if err := undeployPullSync(ctx, c, opts, res, pullSyncDeployed); err != nil {
		return res, err
	}
	if err := undeployServiceAccountAuth(ctx, c, opts, res); err != nil {
		return res, err
	}
	if !opts.DeleteData {
		claims, err := c.Dynamic.Resource(pvcResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return res, explain(err, "list", fmt.Sprintf("persistentvolumeclaims in namespace %q", ns))
		}
		for i := range claims.Items {
			if appliedByUs(&claims.Items[i]) {
				r := fmt.Sprintf("%s kept (holds the registry's images; --delete-data deletes it)", ref(&claims.Items[i]))
				res.Kept = append(res.Kept, r)
				fmt.Fprintln(opts.Progress, r)
			}
		}
	}
	if err := undeployNamespace(ctx, c, nsObj, opts, res); err != nil {
		return res, err
	}
	log.Debug("undeployed", "namespace", ns, "deleted", len(res.Deleted), "kept", len(res.Kept))
	return res, nil
}

// undeployNamespace deletes the namespace when deploy created it (CreatedByAnnotation) and no claim is left in it
// (deleting a namespace deletes everything in it, so a claim made by someone else, or one undeploy kept, keeps
// it). A namespace that existed before deploy is never deleted, even when an older registry-kit applied it.
func undeployNamespace(ctx context.Context, c Clients, nsObj *unstructured.Unstructured, opts UndeployOptions, res *UndeployResult) error {
	if !createdByUs(nsObj) {
		if opts.DeleteData {
			r := fmt.Sprintf("namespace/%s kept (registry-kit deploy did not create it)", nsObj.GetName())
			res.Kept = append(res.Kept, r)
			fmt.Fprintln(opts.Progress, r)
		}
		return nil
	}
	claims, err := c.Dynamic.Resource(pvcResource).Namespace(nsObj.GetName()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return explain(err, "list", fmt.Sprintf("persistentvolumeclaims in namespace %q", nsObj.GetName()))
	}
	remaining := 0
	for i := range claims.Items {
		if claims.Items[i].GetDeletionTimestamp() == nil && !(opts.DryRun != DryRunNone && appliedByUs(&claims.Items[i]) && opts.DeleteData) {
			remaining++
		}
	}
	if remaining > 0 {
		r := fmt.Sprintf("namespace/%s kept (a persistentvolumeclaim is left in it)", nsObj.GetName())
		res.Kept = append(res.Kept, r)
		fmt.Fprintln(opts.Progress, r)
		return nil
	}
	return deleteOne(ctx, c, namespaceResource, nsObj, opts, res)
}

func deleteOne(ctx context.Context, c Clients, gvr schema.GroupVersionResource, u *unstructured.Unstructured, opts UndeployOptions, res *UndeployResult) error {
	var ri interface {
		Delete(context.Context, string, metav1.DeleteOptions, ...string) error
	} = c.Dynamic.Resource(gvr)
	if u.GetNamespace() != "" {
		ri = c.Dynamic.Resource(gvr).Namespace(u.GetNamespace())
	}
	del := metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationForeground)}
	if opts.DryRun == DryRunServer {
		del.DryRun = []string{metav1.DryRunAll}
	}
	r := kindRef(gvr, u)
	if opts.DryRun != DryRunClient {
		err := ri.Delete(ctx, u.GetName(), del)
		if err != nil && !apierrors.IsNotFound(err) {
			return explain(err, "delete", describeRef(r, u.GetNamespace()))
		}
	}
	suffix := ""
	if opts.DryRun != DryRunNone {
		suffix = fmt.Sprintf(" (%s dry run)", opts.DryRun)
	}
	res.Deleted = append(res.Deleted, r)
	fmt.Fprintf(opts.Progress, "%s deleted%s\n", r, suffix)
	return nil
}

func kindRef(gvr schema.GroupVersionResource, u *unstructured.Unstructured) string {
	if u.GetKind() != "" {
		return ref(u)
	}
	gr := gvr.Resource
	if gvr.Group != "" {
		gr += "." + gvr.Group
	}
	return gr + "/" + u.GetName()
}

func describeRef(r, ns string) string {
	if ns == "" {
		return r
	}
	return fmt.Sprintf("%s in namespace %q", r, ns)
}

// appliedByUs reports whether the registry-kit field manager applied the object.
func appliedByUs(u *unstructured.Unstructured) bool {
	for _, mf := range u.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }
