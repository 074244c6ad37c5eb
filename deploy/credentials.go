package deploy

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-kit/registry-kit/manifests"
)

// Credentials are the contents of the Secrets a registry-kit Deployment (and its in-cluster Redis) reads. Empty
// fields were not found.
type Credentials struct {
	Htpasswd   []byte
	HTTPSecret []byte
	// RedisPassword is the password of the Redis cache (Secret <name>-redis).
	RedisPassword []byte
	// PullerPassword is the pull-only user's password (Secret <name>-puller); AccessPolicy the policy stored next
	// to the htpasswd file.
	PullerPassword []byte
	AccessPolicy   []byte
}

// ExistingCredentials reads the htpasswd, HTTP secret and Redis password of the registry called name in
// namespace, so a second deploy feeds them back to the generator (manifests.Options.Htpasswd, HTTPSecret and
// Redis.Password) instead of rotating them.
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
	if creds.RedisPassword, err = read(manifests.RedisSecretName(name), manifests.RedisPasswordKey); err != nil {
		return creds, err
	}
	if creds.PullerPassword, err = read(manifests.PullerSecretName(name), corev1.BasicAuthPasswordKey); err != nil {
		return creds, err
	}
	if creds.AccessPolicy, err = read(manifests.HtpasswdSecretName(name), manifests.AccessPolicyKey); err != nil {
		return creds, err
	}
	return creds, nil
}

// AddMissingSecrets completes objects built from a kustomize overlay: for each registry-kit Deployment whose
// htpasswd or HTTP secret is neither among objs nor in the cluster, it generates that Secret (a random admin
// password, a random HTTP secret) and returns objs with it added; likewise the Redis password Secret when a
// Deployment (the in-cluster Redis) needs it, that is reads it without marking it optional. The optional S3
// Secret is never generated: without it the pods use their workload identity. The generated admin user, if
// any, is returned so its password can be shown once.
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
		htName, httpName, redisName := manifests.HtpasswdSecretName(name), manifests.HTTPSecretName(name), manifests.RedisSecretName(name)
		wantHt, wantHTTP, wantRedis := mountsSecret(d, htName), mountsSecret(d, httpName), needsSecretEnv(d, redisName)
		if !wantHt && !wantHTTP && !wantRedis {
			continue
		}
		creds, err := ExistingCredentials(ctx, c, ns, name)
		if err != nil {
			return nil, nil, err
		}
		needHt := wantHt && len(creds.Htpasswd) == 0 && !have[ns+"/"+htName]
		needHTTP := wantHTTP && len(creds.HTTPSecret) == 0 && !have[ns+"/"+httpName]
		needRedis := wantRedis && len(creds.RedisPassword) == 0 && !have[ns+"/"+redisName]
		if !needHt && !needHTTP && !needRedis {
			continue
		}
		// Generate with every credential it would otherwise draw given, except the missing ones.
		gen := manifests.Options{
			Namespace: ns, Name: name, OmitNamespace: true, Rand: rand.Reader,
			Htpasswd: creds.Htpasswd, HTTPSecret: creds.HTTPSecret, PullerPassword: string(creds.PullerPassword),
		}
		if needRedis {
			gen.Storage = manifests.StorageS3
			gen.S3.Bucket = "unused"
			gen.Redis.InCluster = true
		}
		set, err := manifests.Generate(gen)
		if err != nil {
			return nil, nil, fmt.Errorf("generating secrets for deployment %q in namespace %q: %w", d.GetName(), ns, err)
		}
		for _, add := range []struct {
			need   bool
			secret *corev1.Secret
		}{{needHt, set.HtpasswdSecret}, {needHTTP, set.HTTPSecret}, {needRedis, set.RedisSecret},
			// A generated htpasswd has the pull-only user: its Secret comes along unless the cluster has it.
			{needHt && len(creds.PullerPassword) == 0 && !have[ns+"/"+set.PullerSecret.Name], set.PullerSecret}} {
			if !add.need {
				continue
			}
			u, err := ToUnstructured(add.secret)
			if err != nil {
				return nil, nil, err
			}
			u.SetLabels(d.GetLabels())
			out = append(out, u)
			have[ns+"/"+u.GetName()] = true
		}
		if needHt {
			generated = set.GeneratedUser
		}
	}
	return out, generated, nil
}

// needsSecretEnv reports whether a container of Deployment d reads a key of secret through its environment
// without marking it optional: the pod cannot start without that Secret.
func needsSecretEnv(d *unstructured.Unstructured, secret string) bool {
	for _, field := range []string{"containers", "initContainers"} {
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", field)
		for _, ct := range containers {
			cm, _ := ct.(map[string]any)
			envs, _, _ := unstructured.NestedSlice(cm, "env")
			for _, e := range envs {
				em, _ := e.(map[string]any)
				n, _, _ := unstructured.NestedString(em, "valueFrom", "secretKeyRef", "name")
				optional, _, _ := unstructured.NestedBool(em, "valueFrom", "secretKeyRef", "optional")
				if n == secret && !optional {
					return true
				}
			}
		}
	}
	return false
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
