package deploy

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret"
	"github.com/registry-kit/registry-kit/manifests"
)

// DefaultPullSecretName is the name of the pull Secrets Deploy creates with Options.PullSecretNamespaces.
const DefaultPullSecretName = "registry-kit-pull"

// Puller is the registry's pull-only user as deployed: its name, password and the Secret holding both.
type Puller struct {
	User      manifests.User
	Namespace string
	Secret    string
}

// findPuller picks the pull-only user's Secret (kubernetes.io/basic-auth, <name>-puller) out of the objects to
// apply, so the instructions and the pull Secrets use the credential that cannot push.
func findPuller(objs []*unstructured.Unstructured) *Puller {
	for _, u := range objs {
		if u.GetKind() != "Secret" || !strings.HasSuffix(u.GetName(), "-puller") || !isOurs(u) {
			continue
		}
		if t, _, _ := unstructured.NestedString(u.Object, "type"); t != string(corev1.SecretTypeBasicAuth) {
			continue
		}
		name := decodeField(u, corev1.BasicAuthUsernameKey)
		pw := decodeField(u, corev1.BasicAuthPasswordKey)
		if name == "" || pw == "" {
			continue
		}
		return &Puller{User: manifests.User{Name: name, Password: pw}, Namespace: u.GetNamespace(), Secret: u.GetName()}
	}
	return nil
}

// decodeField reads one key of a Secret given as data (base64) or stringData.
func decodeField(u *unstructured.Unstructured, key string) string {
	if s, ok, _ := unstructured.NestedString(u.Object, "stringData", key); ok {
		return s
	}
	s, _, _ := unstructured.NestedString(u.Object, "data", key)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	return string(b)
}

// createPullSecrets writes a pull Secret with the pull-only user's credentials for the pull prefix into each
// namespace.
func createPullSecrets(ctx context.Context, c Clients, res *Result, opts Options) error {
	if res.Puller == nil {
		return fmt.Errorf("creating pull secrets: the registry has no pull-only user (Secret <name>-puller); " +
			"an overlay that brings its own htpasswd Secret needs registry-kit pull-secret create instead")
	}
	if res.PullPrefix == "" {
		return fmt.Errorf("creating pull secrets: the Service is %s, which the nodes cannot pull from", res.ServiceType)
	}
	payload, err := dockerconfig.Build(dockerconfig.Entry{Server: res.PullPrefix, Username: res.Puller.User.Name, Password: res.Puller.User.Password})
	if err != nil {
		return fmt.Errorf("creating pull secrets: %w", err)
	}
	name := opts.PullSecretName
	if name == "" {
		name = DefaultPullSecretName
	}
	results, err := pullsecret.Apply(ctx, c.Kube, pullsecret.Options{
		Name: name, DockerConfigJSON: payload, Namespaces: opts.PullSecretNamespaces, Overwrite: true, Logger: opts.Logger,
	})
	if err != nil {
		return fmt.Errorf("creating pull secrets for user %q: %w", res.Puller.User.Name, err)
	}
	for _, r := range results {
		res.PullSecrets = append(res.PullSecrets, r.Namespace+"/"+name)
		fmt.Fprintf(opts.Progress, "pull secret %s/%s (user %s, pull only) %s\n", r.Namespace, name, res.Puller.User.Name, r.Secret)
	}
	return nil
}
