package deploy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// CreatedByAnnotation (with value CreatedByValue) marks a namespace that registry-kit deploy created. Only such a
// namespace is ever applied (labelled) by deploy and deleted by undeploy: a namespace that existed before holds
// things that are not the registry's. An administrator who creates the namespace for a deployer with restricted
// rights may set it to hand the namespace over (see RBACFor).
const (
	CreatedByAnnotation = "registry-kit.dev/created-by"
	CreatedByValue      = "registry-kit"
)

// PodSecurityEnforceLabel is the Pod Security admission label deploy sets, to "restricted", on the namespaces it
// creates.
const PodSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

// createdByUs reports whether deploy created the namespace.
func createdByUs(ns *unstructured.Unstructured) bool {
	return ns.GetAnnotations()[CreatedByAnnotation] == CreatedByValue
}

// claimNamespaces decides what deploy does with each Namespace among objs: one that does not exist yet is
// created carrying CreatedByAnnotation; one deploy created is applied as before (the annotation stays in the
// apply, or server-side apply would drop it); one that existed before is left out and left alone, never owned nor
// relabelled, with a warning when it does not enforce the Pod Security level the registry pod meets.
// It returns the objects to apply and the warnings.
func claimNamespaces(ctx context.Context, c Clients, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, []string, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	var warnings []string
	for _, u := range objs {
		if u.GetKind() != "Namespace" || u.GroupVersionKind().Group != "" {
			out = append(out, u)
			continue
		}
		live, err := c.Dynamic.Resource(namespaceResource).Get(ctx, u.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, nil, explain(err, "get", fmt.Sprintf("namespaces %q", u.GetName()))
		case !createdByUs(live):
			warnings = append(warnings, foreignNamespaceWarning(live, u))
			continue
		}
		u = u.DeepCopy()
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[CreatedByAnnotation] = CreatedByValue
		u.SetAnnotations(ann)
		out = append(out, u)
	}
	return out, warnings, nil
}

// foreignNamespaceWarning says that deploy left an existing namespace as it is and, when the namespace does not
// enforce the Pod Security level the Namespace object asks for, which label to set by hand.
func foreignNamespaceWarning(live, want *unstructured.Unstructured) string {
	name := live.GetName()
	msg := fmt.Sprintf("namespace %q existed before and was not created by registry-kit: deploy leaves it as it is "+
		"(no labels set) and undeploy never deletes it", name)
	level := want.GetLabels()[PodSecurityEnforceLabel]
	if level == "" || live.GetLabels()[PodSecurityEnforceLabel] == level {
		return msg
	}
	return msg + fmt.Sprintf("; its Pod Security label is not set as the registry expects: if everything in it meets the %q "+
		"standard, set it with `kubectl label namespace %s %s=%s`", level, name, PodSecurityEnforceLabel, level)
}
