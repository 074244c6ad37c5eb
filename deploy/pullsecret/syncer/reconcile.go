package syncer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
)

// Event reasons the controller records.
const (
	ReasonCreated        = "PullSecretCreated"
	ReasonUpdated        = "PullSecretUpdated"
	ReasonNotOverwritten = "PullSecretNotOverwritten"
	ReasonSourceInvalid  = "PullSecretSourceInvalid"
	ReasonAdded          = "ImagePullSecretAdded"
)

// reconciler makes one namespace right. It reads through the informers' listers and writes through client.
type reconciler struct {
	client          kubernetes.Interface
	cfg             Config
	namespaces      corelisters.NamespaceLister
	serviceAccounts corelisters.ServiceAccountLister
	copies          corelisters.SecretLister // only Secrets named cfg.TargetName
	sources         corelisters.SecretLister // only the source Secret
	recorder        record.EventRecorder
	log             *slog.Logger
	metrics         *metrics
	now             func() time.Time
}

// reconcile brings namespace name in line with the configuration: a selected namespace gets the copy and its
// selected ServiceAccounts the reference; a namespace that is no longer selected loses what the controller added
// there, and nothing else.
func (r *reconciler) reconcile(ctx context.Context, name string) error {
	ns, err := r.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil // deleted: its Secrets and ServiceAccounts went with it
	}
	if err != nil {
		return fmt.Errorf("reading namespace %q from the cache: %w", name, err)
	}
	if ok, reason := r.cfg.Namespaces.Match(ns); !ok {
		if reason == NamespaceGoing {
			return nil
		}
		return r.withdraw(ctx, name)
	}
	src, err := r.sources.Secrets(r.cfg.Source.Namespace).Get(r.cfg.Source.Name)
	if apierrors.IsNotFound(err) {
		r.log.Warn("source secret does not exist: nothing to copy", "source", r.cfg.Source.String())
		return nil // its creation enqueues every namespace
	}
	if err != nil {
		return fmt.Errorf("reading source secret %s from the cache: %w", r.cfg.Source, err)
	}
	if src.Type != corev1.SecretTypeDockerConfigJson && src.Type != corev1.SecretTypeDockercfg {
		r.recorder.Eventf(src, corev1.EventTypeWarning, ReasonSourceInvalid,
			"source secret has type %q, not %s: nothing is copied", src.Type, corev1.SecretTypeDockerConfigJson)
		return nil
	}
	if name != src.Namespace || r.cfg.TargetName != src.Name {
		ok, err := r.ensureCopy(ctx, name, src)
		if err != nil || !ok {
			return err
		}
	}
	return r.patchServiceAccounts(ctx, name)
}

func owned(s *corev1.Secret) bool { return s.Labels[CopyLabel] == CopyLabelValue }

// ensureCopy creates or updates the copy in namespace ns. It reports false, and writes nothing, when a Secret of
// that name exists that the controller did not make.
func (r *reconciler) ensureCopy(ctx context.Context, ns string, src *corev1.Secret) (bool, error) {
	secrets := r.client.CoreV1().Secrets(ns)
	cur, err := r.copies.Secrets(ns).Get(r.cfg.TargetName)
	if apierrors.IsNotFound(err) {
		created, err := secrets.Create(ctx, r.copyOf(ns, src), metav1.CreateOptions{})
		if err == nil {
			r.metrics.secretWrites.WithLabelValues("created").Inc()
			r.recorder.Eventf(created, corev1.EventTypeNormal, ReasonCreated, "copied from %s", r.cfg.Source)
			r.log.Info("pull secret created", "namespace", ns, "name", r.cfg.TargetName)
			return true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("creating secret %s/%s: %w", ns, r.cfg.TargetName, err)
		}
		// The cache is behind: read what is there.
		if cur, err = secrets.Get(ctx, r.cfg.TargetName, metav1.GetOptions{}); err != nil {
			return false, fmt.Errorf("reading secret %s/%s: %w", ns, r.cfg.TargetName, err)
		}
	} else if err != nil {
		return false, fmt.Errorf("reading secret %s/%s from the cache: %w", ns, r.cfg.TargetName, err)
	}
	if !owned(cur) {
		r.metrics.conflicts.Inc()
		r.recorder.Eventf(cur, corev1.EventTypeWarning, ReasonNotOverwritten,
			"not made by registry-kit pull-secret sync, so left alone: the namespace gets no copy of %s until it is deleted or renamed", r.cfg.Source)
		r.log.Warn("secret of the target name exists and is not a copy: left alone", "namespace", ns, "name", r.cfg.TargetName)
		return false, nil
	}
	if cur.Type == src.Type && maps.EqualFunc(cur.Data, src.Data, bytes.Equal) && cur.Annotations[SourceAnnotation] == r.cfg.Source.String() {
		return true, nil
	}
	if cur.Type != src.Type {
		// The type of a Secret cannot be changed: replace it.
		if err := secrets.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("replacing secret %s/%s of type %q: %w", ns, cur.Name, cur.Type, err)
		}
		if _, err := secrets.Create(ctx, r.copyOf(ns, src), metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("creating secret %s/%s: %w", ns, r.cfg.TargetName, err)
		}
		r.metrics.secretWrites.WithLabelValues("updated").Inc()
		return true, nil
	}
	next := cur.DeepCopy()
	next.Data = maps.Clone(src.Data)
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[SourceAnnotation] = r.cfg.Source.String()
	updated, err := secrets.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return false, fmt.Errorf("updating secret %s/%s: %w", ns, cur.Name, err)
	}
	r.metrics.secretWrites.WithLabelValues("updated").Inc()
	r.recorder.Eventf(updated, corev1.EventTypeNormal, ReasonUpdated, "updated from %s: the source changed", r.cfg.Source)
	r.log.Info("pull secret updated", "namespace", ns, "name", cur.Name)
	return true, nil
}

func (r *reconciler) copyOf(ns string, src *corev1.Secret) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        r.cfg.TargetName,
			Namespace:   ns,
			Labels:      map[string]string{CopyLabel: CopyLabelValue, managedByLabel: managedByValue},
			Annotations: map[string]string{SourceAnnotation: r.cfg.Source.String()},
		},
		Type: src.Type,
		Data: maps.Clone(src.Data),
	}
}

// patchServiceAccounts adds the copy to the imagePullSecrets of every selected ServiceAccount in ns.
func (r *reconciler) patchServiceAccounts(ctx context.Context, ns string) error {
	sas, err := r.serviceAccounts.ServiceAccounts(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing service accounts of namespace %q from the cache: %w", ns, err)
	}
	for _, sa := range sas {
		if !r.cfg.ServiceAccounts.Match(sa) || hasRef(sa, r.cfg.TargetName) {
			continue
		}
		if err := r.addRef(ctx, ns, sa.Name); err != nil {
			return err
		}
	}
	return nil
}

func hasRef(sa *corev1.ServiceAccount, name string) bool {
	return slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

// addRef reads the ServiceAccount afresh (the cache may be behind the controller's own last patch) and adds the
// reference, recording it in AddedAnnotation; resourceVersion in the patch makes a concurrent edit a conflict
// (retried), never a lost update.
func (r *reconciler) addRef(ctx context.Context, ns, name string) error {
	sa, err := r.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading service account %s/%s: %w", ns, name, err)
	}
	if hasRef(sa, r.cfg.TargetName) {
		return nil
	}
	refs := append(slices.Clone(sa.ImagePullSecrets), corev1.LocalObjectReference{Name: r.cfg.TargetName})
	added := addedSet(sa)
	if !slices.Contains(added, r.cfg.TargetName) {
		added = append(added, r.cfg.TargetName)
	}
	if err := r.patchSA(ctx, sa, refs, added); err != nil {
		return err
	}
	r.metrics.saPatches.WithLabelValues("added").Inc()
	r.metrics.patchDelay.Observe(r.now().Sub(sa.CreationTimestamp.Time).Seconds())
	r.recorder.Eventf(sa, corev1.EventTypeNormal, ReasonAdded, "added %s to imagePullSecrets (pods created from now on pull with it)", r.cfg.TargetName)
	r.log.Info("service account patched", "namespace", ns, "name", name, "secret", r.cfg.TargetName)
	return nil
}

func addedSet(sa *corev1.ServiceAccount) []string {
	v := sa.Annotations[AddedAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (r *reconciler) patchSA(ctx context.Context, sa *corev1.ServiceAccount, refs []corev1.LocalObjectReference, added []string) error {
	var annotation any // null deletes the annotation
	if len(added) > 0 {
		annotation = strings.Join(added, ",")
	}
	var list any
	if len(refs) > 0 {
		list = refs
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": sa.ResourceVersion,
			"annotations":     map[string]any{AddedAnnotation: annotation},
		},
		"imagePullSecrets": list,
	})
	if err != nil {
		return fmt.Errorf("encoding the patch of service account %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	_, err = r.client.CoreV1().ServiceAccounts(sa.Namespace).Patch(ctx, sa.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("patching imagePullSecrets of service account %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return nil
}

// withdraw removes from a namespace that is no longer selected the copy (if the controller made it) and the
// references the controller added; references someone else added stay.
func (r *reconciler) withdraw(ctx context.Context, ns string) error {
	sas, err := r.serviceAccounts.ServiceAccounts(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing service accounts of namespace %q from the cache: %w", ns, err)
	}
	for _, sa := range sas {
		if slices.Contains(addedSet(sa), r.cfg.TargetName) {
			if err := removeRef(ctx, r.client, ns, sa.Name, r.cfg.TargetName); err != nil {
				return err
			}
			r.metrics.saPatches.WithLabelValues("removed").Inc()
		}
	}
	cur, err := r.copies.Secrets(ns).Get(r.cfg.TargetName)
	if apierrors.IsNotFound(err) || (err == nil && !owned(cur)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading secret %s/%s from the cache: %w", ns, r.cfg.TargetName, err)
	}
	err = r.client.CoreV1().Secrets(ns).Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting secret %s/%s: %w", ns, cur.Name, err)
	}
	r.metrics.secretWrites.WithLabelValues("deleted").Inc()
	r.log.Info("pull secret withdrawn: the namespace is no longer selected", "namespace", ns, "name", cur.Name)
	return nil
}

// removeRef takes secret out of the ServiceAccount's imagePullSecrets if AddedAnnotation says the controller put
// it there.
func removeRef(ctx context.Context, client kubernetes.Interface, ns, name, secret string) error {
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading service account %s/%s: %w", ns, name, err)
	}
	added := addedSet(sa)
	if !slices.Contains(added, secret) {
		return nil
	}
	added = slices.DeleteFunc(added, func(s string) bool { return s == secret })
	refs := slices.DeleteFunc(slices.Clone(sa.ImagePullSecrets), func(r corev1.LocalObjectReference) bool { return r.Name == secret })
	r := &reconciler{client: client}
	return r.patchSA(ctx, sa, refs, added)
}
