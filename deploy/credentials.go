package deploy

import (
	"context"
	"crypto/rand"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-kit/registry-kit/manifests"
)

// Credentials are the contents of the two Secrets a registry-kit Deployment mounts. Empty fields were not found.
type Credentials struct {
	Htpasswd   []byte
	HTTPSecret []byte
}

// ExistingCredentials reads the htpasswd and HTTP secret of the registry called name in namespace, so a second
// deploy feeds them back to the generator (manifests.Options.Htpasswd and HTTPSecret) instead of rotating them.
// Secrets that do not exist (or a namespace that does not) give empty fields, not an error.
func ExistingCredentials(ctx context.Context, c Clients, namespace, name string) (Credentials, error) {
	var creds Credentials
	read := func(secret, key string) ([]byte, error) {
		s, err := c.Kube.CoreV1().Secrets(namespace).Get(ctx, secret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, explain(err, "get", fmt.Sprintf("secrets %q in namespace %q", secret, namespace))
		}
		return s.Data[key], nil
	}
	var err error
	if creds.Htpasswd, err = read(manifests.HtpasswdSecretName(name), manifests.HtpasswdKey); err != nil {
		return creds, err
	}
	if creds.HTTPSecret, err = read(manifests.HTTPSecretName(name), manifests.HTTPSecretKey); err != nil {
		return creds, err
	}
	return creds, nil
}

// AddMissingSecrets completes objects built from a kustomize overlay: for each registry-kit Deployment whose
// htpasswd or HTTP secret is neither among objs nor in the cluster, it generates that Secret (a random admin
// password, a random HTTP secret) and returns objs with it added. The generated admin user, if any, is returned
// so its password can be shown once.
func AddMissingSecrets(ctx context.Context, c Clients, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, *manifests.User, error) {
	have := map[string]bool{}
	for _, u := range objs {
		if u.GetKind() == "Secret" {
			have[u.GetNamespace()+"/"+u.GetName()] = true
		}
	}
	out := append([]*unstructured.Unstructured(nil), objs...)
	var generated *manifests.User
	for _, d := range objs {
		name := d.GetLabels()[manifests.LabelInstance]
		if d.GetKind() != "Deployment" || !isOurs(d) || name == "" {
			continue
		}
		ns := d.GetNamespace()
		htName, httpName := manifests.HtpasswdSecretName(name), manifests.HTTPSecretName(name)
		if !mountsSecret(d, htName) && !mountsSecret(d, httpName) {
			continue
		}
		creds, err := ExistingCredentials(ctx, c, ns, name)
		if err != nil {
			return nil, nil, err
		}
		needHt := len(creds.Htpasswd) == 0 && !have[ns+"/"+htName] && mountsSecret(d, htName)
		needHTTP := len(creds.HTTPSecret) == 0 && !have[ns+"/"+httpName] && mountsSecret(d, httpName)
		if !needHt && !needHTTP {
			continue
		}
		set, err := manifests.Generate(manifests.Options{
			Namespace: ns, Name: name, OmitNamespace: true, Rand: rand.Reader,
			Htpasswd: creds.Htpasswd, HTTPSecret: creds.HTTPSecret,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("generating secrets for deployment %q in namespace %q: %w", name, ns, err)
		}
		if needHt {
			u, err := ToUnstructured(set.HtpasswdSecret)
			if err != nil {
				return nil, nil, err
			}
			u.SetLabels(d.GetLabels())
			out = append(out, u)
			generated = set.GeneratedUser
		}
		if needHTTP {
			u, err := ToUnstructured(set.HTTPSecret)
			if err != nil {
				return nil, nil, err
			}
			u.SetLabels(d.GetLabels())
			out = append(out, u)
		}
	}
	return out, generated, nil
}

func mountsSecret(d *unstructured.Unstructured, secret string) bool {
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		vm, _ := v.(map[string]any)
		if n, _, _ := unstructured.NestedString(vm, "secret", "secretName"); n == secret {
			return true
		}
	}
	return false
}

// ToUnstructured converts a typed object (such as one of manifests.Set.Objects) to the form Deploy applies.
func ToUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s to unstructured: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// AllToUnstructured converts every object.
func AllToUnstructured(objs []runtime.Object) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		u, err := ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}
