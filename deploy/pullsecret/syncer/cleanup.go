package syncer

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// DeleteCopies deletes every copy made from a source Secret in sourceNamespace, in every namespace, and takes
// them out of the imagePullSecrets of the ServiceAccounts whose AddedAnnotation says the controller put them
// there. Nothing else is touched. With dryRun it only lists. It returns "namespace/name" of each copy.
func DeleteCopies(ctx context.Context, client kubernetes.Interface, sourceNamespace string, dryRun bool) ([]string, error) {
	list, err := client.CoreV1().Secrets("").List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{CopyLabel: CopyLabelValue}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing pull secret copies: %w", err)
	}
	var deleted []string
	byNamespace := map[string][]string{}
	for _, s := range list.Items {
		src, _, _ := strings.Cut(s.Annotations[SourceAnnotation], "/")
		if src != sourceNamespace {
			continue
		}
		if !dryRun {
			err := client.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
			if err != nil && !apierrors.IsNotFound(err) {
				return deleted, fmt.Errorf("deleting secret %s/%s: %w", s.Namespace, s.Name, err)
			}
		}
		deleted = append(deleted, s.Namespace+"/"+s.Name)
		byNamespace[s.Namespace] = append(byNamespace[s.Namespace], s.Name)
	}
	if dryRun {
		return deleted, nil
	}
	for ns, names := range byNamespace {
		sas, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return deleted, fmt.Errorf("listing service accounts of namespace %q: %w", ns, err)
		}
		for _, sa := range sas.Items {
			for _, name := range names {
				if slices.Contains(addedSet(&sa), name) {
					if err := removeRef(ctx, client, ns, sa.Name, name); err != nil {
						return deleted, err
					}
				}
			}
		}
	}
	return deleted, nil
}
