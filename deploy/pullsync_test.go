package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
	"github.com/registry-kit/registry-kit/manifests"
)

func generatedObjects(t *testing.T) ([]*unstructured.Unstructured, *manifests.User) {
	t.Helper()
	set, err := manifests.Generate(manifests.Options{Namespace: "docker-registry", NodePort: 30500, ServiceType: corev1.ServiceTypeNodePort, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := AllToUnstructured(set.Objects())
	if err != nil {
		t.Fatal(err)
	}
	return objs, set.GeneratedUser
}

// TestPullSyncObjects: with a generated admin credential deploy writes the source Secret for the node-local pull
// address next to the controller's objects; without one it keeps the Secret in the cluster, or says how to get one.
func TestPullSyncObjects(t *testing.T) {
	objs, user := generatedObjects(t)
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "docker-registry", Name: DefaultPullSyncSource}}
	tests := []struct {
		name      string
		generated *manifests.User
		cluster   []runtime.Object
		opts      Options
		wantKinds []string
		wantErr   string
	}{
		{name: "generated credential: source secret written", generated: user,
			wantKinds: []string{"Secret/registry-kit-pull", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"}},
		{name: "kept credential, source secret in the cluster", cluster: []runtime.Object{existing},
			wantKinds: []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"}},
		{name: "kept credential, no source secret", wantErr: "add --rotate-password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Clients{Kube: fake.NewClientset(tc.cluster...)}
			opts := tc.opts
			opts.PullSync = &PullSync{}
			got, err := pullSyncObjects(context.Background(), c, objs, tc.generated, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errPullSyncNoCredential) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, u := range got {
				k := u.GetKind()
				if k == "Secret" {
					k += "/" + u.GetName()
					payload, _, _ := unstructured.NestedString(u.Object, "data", corev1.DockerConfigJsonKey)
					checkSourcePayload(t, payload, user)
				}
				if k == "Deployment" {
					if img, _ := containerImage(u); img != manifests.DefaultImage {
						t.Errorf("controller image %q, want the registry's %q", img, manifests.DefaultImage)
					}
					if u.GetLabels()[manifests.LabelInstance] != "" || u.GetLabels()[manifests.LabelName] != syncer.AppName {
						t.Errorf("controller labels %v would be taken for the registry's", u.GetLabels())
					}
				}
				kinds = append(kinds, k)
			}
			if diff := cmp.Diff(tc.wantKinds, kinds); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func checkSourcePayload(t *testing.T, b64 string, user *manifests.User) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "data": map[string]any{corev1.DockerConfigJsonKey: b64}}}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		t.Fatal(err)
	}
	cfg, err := dockerconfig.Parse(s.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		t.Fatalf("source secret payload: %v", err)
	}
	entry, ok := cfg.Auths["localhost:30500"]
	if !ok || entry.Username != user.Name || entry.Password != user.Password {
		t.Errorf("source secret has no entry for localhost:30500 with the generated user (servers: %d)", len(cfg.Auths))
	}
}
