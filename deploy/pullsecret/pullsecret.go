package pullsecret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// ManagedByLabel marks Secrets registry-kit wrote.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// DefaultExcludedNamespaces are skipped by AllNamespaces unless the caller says otherwise.
var DefaultExcludedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// ErrRefused wraps every reason Apply wrote nothing.
var ErrRefused = errors.New("nothing was changed")

// Options say which Secret to write where.
type Options struct {
	Name              string   // Secret name
	DockerConfigJSON  []byte   // the .dockerconfigjson payload (see auth/dockerconfig.Build)
	Namespaces        []string // explicit target namespaces
	AllNamespaces     bool     // every namespace except ExcludeNamespaces (and terminating ones)
	ExcludeNamespaces []string
	ServiceAccount    string // add the Secret to this ServiceAccount's imagePullSecrets in each namespace; "" for none
	Overwrite         bool   // replace an existing dockerconfigjson Secret of the same name
	Logger            *slog.Logger
}

// Validate checks the options without a cluster.
func (o Options) Validate() error {
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
		errs = append(errs, fmt.Errorf("secret name %q: %s", o.Name, msg))
	}
	if len(o.DockerConfigJSON) == 0 {
		errs = append(errs, errors.New("no .dockerconfigjson payload"))
	}
	if o.AllNamespaces && len(o.Namespaces) > 0 {
		errs = append(errs, errors.New("give namespaces or all namespaces, not both"))
	}
	if !o.AllNamespaces && len(o.Namespaces) == 0 {
		errs = append(errs, errors.New("no target namespace"))
	}
	for _, ns := range o.Namespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", ns, msg))
		}
	}
	if o.ServiceAccount != "" {
		for _, msg := range validation.IsDNS1123Subdomain(o.ServiceAccount) {
			errs = append(errs, fmt.Errorf("service account %q: %s", o.ServiceAccount, msg))
		}
	}
	return errors.Join(errs...)
}

// Secret returns the pull Secret object for one namespace (namespace may be empty for a manifest that
// takes its namespace from where it is applied).
func Secret(name, namespace string, payload []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels:    map[string]string{ManagedByLabel: "registry-kit"},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: payload},
	}
}

// Action is what Apply did to one object.
type Action string

// Actions.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
	Patched   Action = "patched"
	Skipped   Action = "skipped"
)

// NamespaceResult reports one namespace.
type NamespaceResult struct {
	Namespace      string
	Secret         Action
	ServiceAccount Action // Skipped when no ServiceAccount was asked for
}

// plan is what Apply decided for one namespace after checking it.
type plan struct {
	namespace string
	existing  *corev1.Secret
}

// Apply checks every target namespace, then creates or updates the Secret in each and adds it to the
// ServiceAccount's imagePullSecrets (keeping the ones already there). If any check fails it returns an
// error wrapping ErrRefused listing every problem, and has written nothing.
func Apply(ctx context.Context, client kubernetes.Interface, o Options) ([]NamespaceResult, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	namespaces, err := targetNamespaces(ctx, client, o)
	if err != nil {
		return nil, err
	}
	plans, err := check(ctx, client, o, namespaces)
	if err != nil {
		return nil, err
	}
	var results []NamespaceResult
	for _, p := range plans {
		r := NamespaceResult{Namespace: p.namespace, ServiceAccount: Skipped}
		if r.Secret, err = writeSecret(ctx, client, o, p); err != nil {
			return results, err
		}
		log.Info("pull secret", "namespace", p.namespace, "name", o.Name, "action", r.Secret)
		if o.ServiceAccount != "" {
			if r.ServiceAccount, err = addToServiceAccount(ctx, client, p.namespace, o.ServiceAccount, o.Name); err != nil {
				return append(results, r), err
			}
			log.Info("service account", "namespace", p.namespace, "name", o.ServiceAccount, "action", r.ServiceAccount)
		}
		results = append(results, r)
	}
	return results, nil
}

func targetNamespaces(ctx context.Context, client kubernetes.Interface, o Options) ([]string, error) {
	if !o.AllNamespaces {
		ns := slices.Clone(o.Namespaces)
		sort.Strings(ns)
		return slices.Compact(ns), nil
	}
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var out []string
	for _, ns := range list.Items {
		if slices.Contains(o.ExcludeNamespaces, ns.Name) || ns.Status.Phase == corev1.NamespaceTerminating {
			continue
		}
		out = append(out, ns.Name)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no namespace left after excluding %v", ErrRefused, o.ExcludeNamespaces)
	}
	return out, nil
}

// check reads every target and collects every reason to refuse.
func check(ctx context.Context, client kubernetes.Interface, o Options, namespaces []string) ([]plan, error) {
	var plans []plan
	var errs []error
	for _, ns := range namespaces {
		n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("namespace %q does not exist", ns))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("reading namespace %q: %w", ns, err))
			continue
		case n.Status.Phase == corev1.NamespaceTerminating:
			errs = append(errs, fmt.Errorf("namespace %q is terminating", ns))
			continue
		}
		p := plan{namespace: ns}
		existing, err := client.CoreV1().Secrets(ns).Get(ctx, o.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("reading secret %s/%s: %w", ns, o.Name, err))
		case existing.Type != corev1.SecretTypeDockerConfigJson:
			errs = append(errs, fmt.Errorf("secret %s/%s already exists with type %q: refusing to replace a secret of another type (pick another name or delete it)", ns, o.Name, existing.Type))
		case !o.Overwrite && !bytes.Equal(existing.Data[corev1.DockerConfigJsonKey], o.DockerConfigJSON):
			errs = append(errs, fmt.Errorf("secret %s/%s already exists with other credentials: pass --overwrite to replace it", ns, o.Name))
		default:
			p.existing = existing
		}
		if o.ServiceAccount != "" {
			_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, o.ServiceAccount, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				errs = append(errs, fmt.Errorf("service account %s/%s does not exist (a new namespace gets \"default\" within seconds; retry)", ns, o.ServiceAccount))
			case err != nil:
				errs = append(errs, fmt.Errorf("reading service account %s/%s: %w", ns, o.ServiceAccount, err))
			}
		}
		plans = append(plans, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return plans, nil
}

func writeSecret(ctx context.Context, client kubernetes.Interface, o Options, p plan) (Action, error) {
	secrets := client.CoreV1().Secrets(p.namespace)
	if p.existing == nil {
		if _, err := secrets.Create(ctx, Secret(o.Name, p.namespace, o.DockerConfigJSON), metav1.CreateOptions{}); err != nil {
			return "", fmt.Errorf("creating secret %s/%s: %w", p.namespace, o.Name, err)
		}
		return Created, nil
	}
	if bytes.Equal(p.existing.Data[corev1.DockerConfigJsonKey], o.DockerConfigJSON) {
		return Unchanged, nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := secrets.Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Type != corev1.SecretTypeDockerConfigJson {
			return fmt.Errorf("secret changed type to %q meanwhile", cur.Type)
		}
		cur.Data = map[string][]byte{corev1.DockerConfigJsonKey: o.DockerConfigJSON}
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		cur.Labels[ManagedByLabel] = "registry-kit"
		_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("updating secret %s/%s: %w", p.namespace, o.Name, err)
	}
	return Updated, nil
}

// addToServiceAccount appends the secret to imagePullSecrets unless it is there, with optimistic
// concurrency (resourceVersion) and retries on conflict, so concurrent edits are never lost.
func addToServiceAccount(ctx context.Context, client kubernetes.Interface, namespace, sa, secret string) (Action, error) {
	action := Unchanged
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, sa, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.ContainsFunc(cur.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret }) {
			action = Unchanged
			return nil
		}
		cur.ImagePullSecrets = append(cur.ImagePullSecrets, corev1.LocalObjectReference{Name: secret})
		if _, err := client.CoreV1().ServiceAccounts(namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
		action = Patched
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("adding %q to imagePullSecrets of service account %s/%s: %w", secret, namespace, sa, err)
	}
	return action, nil
}
